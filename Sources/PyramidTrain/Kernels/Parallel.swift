import Dispatch

/// Runs `body(part)` for `parts` parts, on as many threads; inline when there is one part.
@inline(__always)
func parallelFor(_ parts: Int, _ body: (Int) -> Void) {
    if parts <= 1 { body(0); return }
    DispatchQueue.concurrentPerform(iterations: parts, execute: body)
}

/// The `part`-th of `parts` near-equal contiguous ranges of `0..<count`.
@inline(__always)
func partRange(_ part: Int, of parts: Int, count: Int) -> Range<Int> {
    (part * count / parts)..<((part + 1) * count / parts)
}
