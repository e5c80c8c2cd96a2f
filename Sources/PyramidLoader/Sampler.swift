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
    /// How a shuffled epoch is permuted.
    public let sampleOrder: SampleOrder
    /// The index range of each shard (used by ``SampleOrder/shards(window:)``).
    public let shardRanges: [Range<Int>]

    public init(sampleCount: Int, seed: UInt64, shuffle: Bool = true, order: SampleOrder = .global, shardRanges: [Range<Int>] = []) {
        self.sampleCount = sampleCount; self.seed = seed; self.shuffle = shuffle
        self.sampleOrder = order
        self.shardRanges = shardRanges.isEmpty ? [0..<sampleCount] : shardRanges
    }

    /// The order of epoch `epoch`: `order[position] = sample index`.
    /// - Complexity: O(sampleCount).
    public func order(epoch: Int) -> [Int32] {
        guard shuffle, sampleCount > 1 else {
            return [Int32](unsafeUninitializedCapacity: sampleCount) { buf, n in
                for i in 0..<sampleCount { buf[i] = Int32(i) }
                n = sampleCount
            }
        }
        var rng = SplitMix64(seed: RandomKey.mix(seed, UInt64(epoch), RandomKey.permutation))
        switch sampleOrder {
        case .global:
            var order = (0..<sampleCount).map { Int32($0) }
            Self.permute(&order[...], &rng)
            return order
        case .shards(let window):
            // The shards in a random order; then the samples of each run of `window` shards permuted together.
            var shards = Array(shardRanges.indices)
            var slice = shards[...]
            Self.permute(&slice, &rng)
            shards = Array(slice)
            var order: [Int32] = []
            order.reserveCapacity(sampleCount)
            for start in stride(from: 0, to: shards.count, by: max(1, window)) {
                let begin = order.count
                for s in shards[start..<min(shards.count, start + max(1, window))] { order += shardRanges[s].map { Int32($0) } }
                Self.permute(&order[begin...], &rng)
            }
            return order
        }
    }

    /// Fisher–Yates over `items`, from its end.
    private static func permute<T>(_ items: inout ArraySlice<T>, _ rng: inout SplitMix64) {
        guard items.count > 1 else { return }
        let base = items.startIndex
        var i = items.count - 1
        while i > 0 {
            let j = rng.nextInt(below: i + 1)
            items.swapAt(base + i, base + j)
            i -= 1
        }
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

/// How a shuffled epoch orders the samples.
public enum SampleOrder: Sendable, Equatable, Hashable, Codable, LosslessStringConvertible {
    /// One permutation of every sample: each step reads from every shard.
    case global
    /// The shards in a random order, then the samples of each run of `window` consecutive shards
    /// permuted together: a step reads from at most `2 × window` shards, so a remote cache streams
    /// through a bounded local cache. Still a pure function of (seed, epoch), for any world size.
    case shards(window: Int)

    /// The window of `shards` when none is given.
    public static let defaultWindow = 4

    /// `global`, `shards` or `shards:W`.
    public init?(_ text: String) {
        if text == "global" { self = .global; return }
        if text == "shards" { self = .shards(window: Self.defaultWindow); return }
        guard text.hasPrefix("shards:"), let w = Int(text.dropFirst("shards:".count)), w >= 1, w <= 1_000_000 else { return nil }
        self = .shards(window: w)
    }

    public var description: String {
        switch self { case .global: "global"; case .shards(let w): "shards:\(w)" }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = SampleOrder(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(text) is not global, shards or shards:W"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
