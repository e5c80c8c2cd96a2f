import Foundation
import PyramidCache
import PyramidTestSupport
import Synchronization
import Testing
@testable import PyramidLoader

/// The epoch run's hand-over under load: many short epochs, consumers that stop early, batches
/// released by other threads while the next epoch runs, async consumers that break out. Each
/// checks the batches against a one-worker reference, so a lost, doubled or reordered step fails.
@Suite struct EpochRunStressTests {
    /// A digest of a batch: step, indices and pixels.
    static func digest(_ b: Batch) -> [Int] {
        var h = 0
        for f in b.images().floatArray() { h = h &* 31 &+ Int(f.bitPattern) }
        return [b.step, h] + b.indices
    }

    static func reference(_ cache: SmoothCache, epochs: Int) throws -> [[[Int]]] {
        let loader = try cache.loader("trd:16,8,p=0.5", batch: 6, workers: 1, prefetch: 1)
        return try (0..<epochs).map { e in
            var it = try loader.batches(epoch: e)
            var out: [[Int]] = []
            while let b = try it.next() { out.append(digest(b)) }
            return out
        }
    }

    /// Keeps one core busy for the length of `body`: the workers and the consumer get preempted at
    /// every point of the hand-over.
    static func underLoad<T>(_ body: () throws -> T) rethrows -> T {
        let stop = Atomic<Bool>(false)
        let burner = Thread { var x = 0.0; while !stop.load(ordering: .relaxed) { x += sin(x) } ; _ = x }
        burner.start()
        defer { stop.store(true, ordering: .relaxed) }
        return try body()
    }

    @Test func manyEpochsServeEveryStepOnceInOrder() throws {
        let cache = try SmoothCache(count: 90, shards: 2)
        let epochs = 40
        let expected = try Self.reference(cache, epochs: epochs)
        let loader = try cache.loader("trd:16,8,p=0.5", batch: 6, workers: 3, prefetch: 2)
        try Self.underLoad {
            for e in 0..<epochs {
                var it = try loader.batches(epoch: e)
                var got: [[Int]] = []
                while let b = try it.next() { got.append(Self.digest(b)) }
                #expect(got == expected[e], "epoch \(e)")
                #expect(it.buffersAllocated <= 3, "epoch \(e) allocated \(it.buffersAllocated) buffers")
            }
        }
    }

    /// A consumer that drops its iterator after k steps (k = 0…6), sometimes keeping the last batch
    /// past the drop: the run stops, releases itself, and the next full epoch is still exact.
    @Test func consumersThatStopEarlyLeaveNothingBehind() throws {
        let cache = try SmoothCache(count: 90, shards: 2)
        let expected = try Self.reference(cache, epochs: 3)
        let loader = try cache.loader("trd:16,8,p=0.5", batch: 6, workers: 2, prefetch: 2)
        var runs: [() -> EpochRun?] = []
        try Self.underLoad {
            for trial in 0..<60 {
                var kept: Batch?
                do {
                    var it = try loader.batches(epoch: trial % 3)
                    weak let run = it.handle.run
                    runs.append { run }
                    for k in 0..<(trial % 7) {
                        guard let b = try it.next() else { break }
                        #expect(Self.digest(b) == expected[trial % 3][k], "trial \(trial) step \(k)")
                        if trial % 2 == 0 { kept = b }
                    }
                }
                kept = nil  // released after its run was dropped
                _ = kept
            }
        }
        // Every run ends once its workers finish the step they are rendering.
        for _ in 0..<600 where runs.contains(where: { $0() != nil }) { usleep(5000) }
        #expect(runs.filter { $0() != nil }.isEmpty, "\(runs.filter { $0() != nil }.count) stopped runs are still alive")
        var it = try loader.batches(epoch: 1)
        var got: [[Int]] = []
        while let b = try it.next() { got.append(Self.digest(b)) }
        #expect(got == expected[1])
    }

    /// The last batches of epoch e are released by other threads while epoch e+1 is consumed.
    @Test func releaseRacingTheNextEpoch() throws {
        let cache = try SmoothCache(count: 90, shards: 2)
        let epochs = 20
        let expected = try Self.reference(cache, epochs: epochs)
        let loader = try cache.loader("trd:16,8,p=0.5", batch: 6, workers: 2, prefetch: 3)
        try Self.underLoad {
            var carried: [Batch] = []
            for e in 0..<epochs {
                var it = try loader.batches(epoch: e)
                // Hand the previous epoch's kept batches to another thread, which drops them at once.
                let parcel = Parcel(carried)
                carried = []
                Thread { parcel.drop() }.start()
                var got: [[Int]] = []
                var all: [Batch] = []
                while let b = try it.next() {
                    got.append(Self.digest(b))
                    all.append(b)
                    if all.count > 2 { all.removeFirst() }
                }
                carried = all
                #expect(got == expected[e], "epoch \(e)")
            }
        }
    }

    /// Async consumers that break out of the loop, or whose task is cancelled while waiting.
    @Test func asyncConsumersThatBreakOrAreCancelled() async throws {
        let cache = try SmoothCache(count: 90, shards: 2)
        let expected = try Self.reference(cache, epochs: 2)
        let loader = try cache.loader("trd:16,8,p=0.5", batch: 6, workers: 2, prefetch: 2)
        for trial in 0..<30 {
            var k = 0
            for try await b in loader.epoch(trial % 2) {
                #expect(Self.digest(b) == expected[trial % 2][k], "trial \(trial) step \(k)")
                k += 1
                if k == trial % 5 + 1 { break }
            }
        }
        let task = Task {
            var n = 0
            for try await _ in loader.epoch(0) { n += 1; try await Task.sleep(nanoseconds: 1_000_000) }
            return n
        }
        task.cancel()
        _ = try? await task.value
        var got: [[Int]] = []
        for try await b in loader.epoch(1) { got.append(Self.digest(b)) }
        #expect(got == expected[1])
    }
}

/// Batches moved to another thread to be released there. `@unchecked Sendable`: the sending
/// thread gives up every reference before the receiving one drops them.
private final class Parcel: @unchecked Sendable {
    private var batches: [Batch]
    init(_ batches: [Batch]) { self.batches = batches }
    func drop() { batches = [] }
}

/// The channel-major output holds the float32 output's values, transposed from (N, C, H, W) to
/// (C, N, H, W), for every view of a parallel step, colour and grey.
@Suite struct ChannelMajorOutputTests {
    @Test(arguments: [1, 3])
    func channelMajorIsTheTransposeOfFloat32(channels: Int) throws {
        let cache = try SmoothCache(count: 40, channels: channels, shards: 1)
        let nchw = try cache.loader("parallel:16,12,8", batch: 5, output: .float32)
        let cnhw = try cache.loader("parallel:16,12,8", batch: 5, output: .float32ChannelMajor)
        var a = try nchw.batches(epoch: 1), b = try cnhw.batches(epoch: 1)
        var steps = 0
        while let x = try a.next() {
            let y = try #require(try b.next())
            for s in x.sizes {
                let p = x.images(size: s).floatArray(), q = y.images(size: s)
                #expect(q.shape == [channels, x.count, s, s])
                let plane = s * s, n = x.count
                var transposed = [Float](repeating: .nan, count: p.count)
                for i in 0..<n { for c in 0..<channels { for k in 0..<plane { transposed[(c * n + i) * plane + k] = p[(i * channels + c) * plane + k] } } }
                #expect(q.floatArray() == transposed, "step \(x.step) size \(s)")
            }
            steps += 1
        }
        #expect(try b.next() == nil && steps > 0)
    }
}
