import Foundation
@testable import PyramidTrain
import Testing

/// The trainer's spin-then-sleep pool under load: every part of every region runs exactly once,
/// and its writes are visible to the caller when `parallelFor` returns — through regions in quick
/// succession (helpers spinning), after pauses long enough for the helpers to sleep (the wake-up
/// path), with part counts that change (helpers idle in some regions) and with regions opened from
/// two threads at once (the second falls back to Dispatch).
@Suite struct WorkerPoolTests {
    @Test func everyPartRunsOnceAndItsWritesAreSeen() {
        var slots = [Int](repeating: 0, count: 8)
        for region in 1...20_000 {
            let parts = 2 + region % 4  // 2…5 parts: more than the cores, and changing
            slots.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                parallelFor(parts) { part in base[part] = region * 10 + part }  // plain writes
            }
            let seen = Array(slots[0..<parts]), expected = (0..<parts).map { region * 10 + $0 }
            #expect(seen == expected, "region \(region)")
            if seen != expected { return }
            if region % 2_000 == 0 { usleep(20_000) }  // the helpers outlast their spin and sleep
        }
    }

    @Test func twoThreadsOpeningRegionsAtOnceBothComplete() {
        // One counter block per thread, its own allocation: the threads share nothing but the pool.
        let blocks = (0..<2).map { _ in UnsafeMutablePointer<Int>.allocate(capacity: 4) }
        defer { blocks.forEach { $0.deallocate() } }
        for b in blocks { b.initialize(repeating: 0, count: 4) }
        final class Blocks: @unchecked Sendable { let pointers: [UnsafeMutablePointer<Int>]; init(_ p: [UnsafeMutablePointer<Int>]) { pointers = p } }
        let shared = Blocks(blocks)
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            let base = shared.pointers[thread]
            for _ in 0..<5_000 { parallelFor(4) { part in base[part] += 1 } }
        }
        for b in blocks { #expect(Array(UnsafeBufferPointer(start: b, count: 4)) == [5_000, 5_000, 5_000, 5_000]) }
    }
}
