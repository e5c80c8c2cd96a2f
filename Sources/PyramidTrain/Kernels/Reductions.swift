/// Vectorized reductions over Float runs, blocked: within a block of 512 values eight Float
/// lanes (each sums at most 64 values), across blocks a Double. A BatchNorm channel of a batch of
/// 128 at 28 px is a run of 100,352 values; summed in eight Float lanes alone (12,544 values
/// each), `ParityTests`' ResNet-20 RS-Nets step run at that batch had running statistics up to
/// 4.6e-6 from float64's (PyTorch's float32: 3.7e-7); blocked, 9e-7. The loops themselves are C
/// (Sources/CPyramidKernels), one version per instruction set (``InstructionSet``).
enum Kernels {
    /// `Σ p[i]`.
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double { k.sum(p, n) }

    /// `Σ (p[i] − mean)²`.
    @inline(__always)
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int, minus mean: Float) -> Double { k.sum_squares(p, n, mean) }

    /// `Σ p[i]·q[i]`.
    @inline(__always)
    static func dot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Double { k.dot(p, q, n) }

    /// `(Σ dy·[mask>0], Σ dy·x·[mask>0])`: BatchNorm's backward sums through a fused ReLU.
    @inline(__always)
    static func maskedSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
        var s0 = 0.0, s1 = 0.0
        k.masked_sums(dy, x, mask, n, &s0, &s1)
        return (s0, s1)
    }

    /// `dx = scale · (m·dy' − Σdy' − x̂·Σdy'x̂)` with `dy' = dy·[mask>0]` (no mask: `dy' = dy`).
    @inline(__always)
    static func batchNormGradient(_ dy: UnsafePointer<Float>, _ xh: UnsafePointer<Float>, mask: UnsafePointer<Float>?, _ n: Int,
                                  scale: Float, count: Float, sumDy: Float, sumDyX: Float, into dx: UnsafeMutablePointer<Float>) {
        k.batch_norm_gradient(dy, xh, mask, n, scale, count, sumDy, sumDyX, dx)
    }

    /// `out = a + b`, split over the cores for large tensors.
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        elementwise(n) { i, count in k.add(a + i, b + i, out + i, count) }
    }

    /// `out = max(0, a + b)`: a residual block's sum and ReLU in one pass.
    static func addReLU(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        elementwise(n) { i, count in k.add_relu(a + i, b + i, out + i, count) }
    }

    /// `out = [mask > 0]·dy`, ReLU's gradient from its output; `out = a + [mask > 0]·dy` when `a` is given.
    static func maskedGradient(_ dy: UnsafePointer<Float>, mask: UnsafePointer<Float>, adding a: UnsafePointer<Float>? = nil,
                               into out: UnsafeMutablePointer<Float>, count n: Int) {
        elementwise(n) { i, count in k.masked_gradient(dy + i, mask + i, a.map { $0 + i }, out + i, count) }
    }

    /// Runs `body(start, count)` over `0..<n`: on the cores for large tensors, in pieces of at
    /// least 16k values that the cores claim as they go.
    @inline(__always)
    static func elementwise(_ n: Int, _ body: (Int, Int) -> Void) {
        let parts = min(Threads.count, max(1, n / 32768))
        if parts <= 1 { body(0, n); return }
        let chunks = max(parts, n / 16384)
        parallelChunks(chunks, workers: parts) { _, c in
            let r = partRange(c, of: chunks, count: n)
            body(r.lowerBound, r.count)
        }
    }
}
