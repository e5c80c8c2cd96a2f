/// The order in which an epoch visits the samples, and which part of it a rank reads.
///
/// The order of epoch `e` is a permutation of `0..<sampleCount` that is a pure function of
/// `(seed, e)` (Fisher–Yates driven by ``SplitMix64``), or the identity when shuffling is off.
/// A *global stream position* (the cursor) indexes that permutation. Step `k` of an epoch consumes
/// `batch_k × worldSize` consecutive positions; rank `r` reads the `r`-th block of `batch_k` of them.
/// So ranks read disjoint, equal shares, and a run resumes at any cursor — with any number of ranks.
///
/// Remainder rule: when shuffling with `dropLast` (training), positions that do not fill a whole
/// global step are left out of that epoch; they differ from epoch to epoch because the permutation
/// does. Without `dropLast` (evaluation), the last, partial global step is split into `worldSize`
/// contiguous parts whose sizes differ by at most one (rank `r` gets the `r`-th part).
public struct Sampler: Sendable {
    /// Number of samples in the dataset.
    public let sampleCount: Int
    /// The run's seed.
    public let seed: UInt64
    /// Whether epochs are permuted (training) or read in index order (evaluation).
    public let shuffle: Bool

    public init(sampleCount: Int, seed: UInt64, shuffle: Bool = true) {
        self.sampleCount = sampleCount; self.seed = seed; self.shuffle = shuffle
    }

    /// The order of epoch `epoch`: `order[position] = sample index`.
    /// - Complexity: O(sampleCount).
    public func order(epoch: Int) -> [Int32] {
        var order = [Int32](unsafeUninitializedCapacity: sampleCount) { buf, n in
            for i in 0..<sampleCount { buf[i] = Int32(i) }
            n = sampleCount
        }
        guard shuffle, sampleCount > 1 else { return order }
        var rng = SplitMix64(seed: RandomKey.mix(seed, UInt64(epoch), RandomKey.permutation))
        order.withUnsafeMutableBufferPointer { o in
            var i = o.count - 1
            while i > 0 {
                let j = rng.nextInt(below: i + 1)
                o.swapAt(i, j)
                i -= 1
            }
        }
        return order
    }

    /// The stream positions rank `rank` reads in a global step that starts at `cursor` and gives
    /// each of `worldSize` ranks `batchSize` images; `available` positions remain in the epoch
    /// (only smaller than `batchSize × worldSize` for the partial last step of an evaluation).
    public static func positions(cursor: Int, batchSize: Int, rank: Int, worldSize: Int, available: Int) -> Range<Int> {
        let global = batchSize * worldSize
        if available >= global {
            return (cursor + rank * batchSize)..<(cursor + (rank + 1) * batchSize)
        }
        let lo = rank * available / worldSize, hi = (rank + 1) * available / worldSize
        return (cursor + lo)..<(cursor + hi)
    }
}
