import Dispatch
import Foundation
import Synchronization

/// Hands chunk numbers to workers (at most `window` ahead of the committer) and results back in order.
///
/// Workers block in ``take()`` while they are `window` chunks ahead; the committer blocks in
/// ``result(_:isCancelled:)`` until its chunk is in, checking `isCancelled` (a signal handler's
/// flag) every 50 ms meanwhile.
final class ChunkQueue: Sendable {
    private struct State: ~Copyable {
        var nextToTake = 0
        var nextToCommit = 0
        var stopped = false
        var results: [Int: Result<Builder.EncodedChunk, any Error>] = [:]
        /// Workers waiting for the committer to move on.
        var waiting: [DispatchSemaphore] = []

        mutating func wakeWaiting() -> [DispatchSemaphore] {
            defer { waiting = [] }
            return waiting
        }
    }

    private let count: Int
    private let window: Int
    private let state = Mutex(State())
    /// Signalled by every ``put(_:_:)``: the committer looks for its chunk.
    private let arrived = DispatchSemaphore(value: 0)

    init(count: Int, window: Int) { self.count = count; self.window = window }

    /// The next chunk to work on, or nil when there is none or the build stopped.
    func take() -> Int? {
        let wake = DispatchSemaphore(value: 0)
        while true {
            enum Next { case chunk(Int), wait, done }
            let next: Next = state.withLock { s in
                if s.stopped || s.nextToTake >= count { return .done }
                if s.nextToTake - s.nextToCommit >= window { s.waiting.append(wake); return .wait }
                s.nextToTake += 1
                return .chunk(s.nextToTake - 1)
            }
            switch next {
            case .chunk(let id): return id
            case .done: return nil
            case .wait: wake.wait()
            }
        }
    }

    func put(_ id: Int, _ result: sending Result<Builder.EncodedChunk, any Error>) {
        state.withLock { $0.results[id] = result }
        arrived.signal()
    }

    /// Waits for chunk `id`; nil if `isCancelled` turns true first.
    func result(_ id: Int, isCancelled: () -> Bool) -> Result<Builder.EncodedChunk, any Error>? {
        while true {
            if isCancelled() { return nil }
            let (result, waiting) = state.withLock { s -> (Result<Builder.EncodedChunk, any Error>?, [DispatchSemaphore]) in
                guard let r = s.results.removeValue(forKey: id) else { return (nil, []) }
                s.nextToCommit = id + 1
                return (r, s.wakeWaiting())
            }
            for w in waiting { w.signal() }
            if let result { return result }
            _ = arrived.wait(timeout: .now() + .milliseconds(50))
        }
    }

    func stop() {
        let waiting = state.withLock { s in s.stopped = true; return s.wakeWaiting() }
        for w in waiting { w.signal() }
    }
}
