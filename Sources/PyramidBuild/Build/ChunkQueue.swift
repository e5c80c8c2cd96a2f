import Foundation

/// Hands chunk numbers to workers (at most `window` ahead of the committer) and results back in order.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private let count: Int
    private let window: Int
    private var nextToTake = 0
    private var nextToCommit = 0
    private var stopped = false
    private var results: [Int: Result<Builder.EncodedChunk, Error>] = [:]

    init(count: Int, window: Int) { self.count = count; self.window = window }

    /// The next chunk to work on, or nil when there is none or the build stopped.
    func take() -> Int? {
        condition.lock(); defer { condition.unlock() }
        while !stopped && nextToTake < count && nextToTake - nextToCommit >= window { condition.wait() }
        guard !stopped, nextToTake < count else { return nil }
        nextToTake += 1
        return nextToTake - 1
    }

    func put(_ id: Int, _ result: Result<Builder.EncodedChunk, Error>) {
        condition.lock(); results[id] = result; condition.broadcast(); condition.unlock()
    }

    /// Waits for chunk `id`; nil if `isCancelled` turns true first.
    func result(_ id: Int, isCancelled: () -> Bool) -> Result<Builder.EncodedChunk, Error>? {
        condition.lock(); defer { condition.unlock() }
        while results[id] == nil {
            if isCancelled() { return nil }
            _ = condition.wait(until: Date().addingTimeInterval(0.05))
        }
        if isCancelled() { return nil }
        nextToCommit = id + 1
        condition.broadcast()
        return results.removeValue(forKey: id)
    }

    func stop() { condition.lock(); stopped = true; condition.broadcast(); condition.unlock() }
}
