import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Synchronization
import PyramidCache

/// Streams training or evaluation batches from a Pyramid cache under a resolution schedule.
///
/// ```swift
/// let cache = try CacheReader(url: URL(fileURLWithPath: "fmnist.pyr"))
/// let loader = try Loader(cache: cache, configuration: .init(schedule: try ScheduleParser.parse("trd:28,14,p=0.5"), epochs: 10))
/// for epoch in 0..<10 {
///     for try await batch in loader.epoch(epoch) {
///         let x = batch.images()          // Float32 (N, C, s, s), normalized
///         train(x.floats, batch.labels, size: batch.size)
///     }
/// }
/// ```
///
/// - Determinism: a batch is a pure function of (cache, configuration, epoch, step): the epoch's
///   permutation comes from (seed, epoch), each sample's crop and flip from (seed, epoch, stream
///   position, duplicate), and the schedule from its own plan. Workers, prefetch and timing change
///   nothing, and ``batches(epoch:from:)`` starts at any step boundary with the same results.
/// - Views: a view of size `s` is rendered from the smallest stored level at least `s` (the largest
///   level when `s` is larger: upsampling, up to 2×), so reading cost follows the output size.
/// - Memory: `prefetch` batch buffers at most (the one you hold included), each as large as the
///   largest batch seen.
public final class Loader: Sendable {
    /// The cache read from.
    public let cache: CacheReader
    /// The configuration, with the augmentation resolved.
    public let configuration: LoaderConfiguration
    /// The augmentation in use.
    public let augmentation: Augmentation
    /// All labels, by sample index.
    public let labels: [Int32]
    let sampler: Sampler
    let normalizeScale: [Float]
    let normalizeOffset: [Float]
    private let substitutionLog = Mutex<[Substitution]>([])
    /// Buffers kept from earlier epochs (at most `prefetch`), for the next epoch to reuse.
    private let spareBuffers = Mutex<[BatchStorage]>([])

    /// - Throws: ``LoaderError/invalidConfiguration(key:reason:)`` for a bad value,
    ///   ``LoaderError/unservableSize(size:levels:reason:)`` for a size the cache cannot serve,
    ///   ``LoaderError/invalidLabel(shard:index:label:classes:)`` for a label outside the manifest's classes.
    public init(cache: CacheReader, configuration: LoaderConfiguration) throws {
        let m = cache.manifest
        func bad(_ key: LoaderConfiguration.Key, _ reason: String) -> LoaderError { .invalidConfiguration(key: key, reason: reason) }
        let c = configuration
        if let why = Bounds.check(c.batchSize, atMost: Bounds.batchSize) { throw bad(.batchSize, why) }
        if let why = Bounds.check(c.worldSize, atMost: Bounds.worldSize) { throw bad(.worldSize, why) }
        if let epochs = c.epochs, let why = Bounds.check(epochs, atMost: Bounds.epochs) { throw bad(.epochs, why) }
        guard c.rank >= 0 && c.rank < c.worldSize else { throw bad(.rank, "\(c.rank) is not in 0..<\(c.worldSize)") }
        guard c.workers >= 1 else { throw bad(.workers, "must be at least 1, not \(c.workers)") }
        guard c.prefetch >= 1 else { throw bad(.prefetch, "must be at least 1, not \(c.prefetch)") }
        guard m.sampleCount > 0 else {
            throw LoaderError.cache(.invalidManifest(path: cache.url.appendingPathComponent(Manifest.fileName).path, reason: "it holds no samples"))
        }
        for s in c.schedule.sizes { try Loader.checkServable(size: s, manifest: m) }
        if m.sampleCount / c.batchSize > Bounds.stepsPerEpoch {
            throw bad(.batchSize, "\(c.batchSize) makes \(m.sampleCount / c.batchSize) steps per epoch of \(m.sampleCount) samples, more than the \(Bounds.stepsPerEpoch) a plan holds")
        }
        self.cache = cache
        var config = c
        config.prefetch = max(c.prefetch, c.workers)
        let augmentation = c.augmentation ?? (c.shuffle ? Augmentation.training(for: m) : .evaluation(for: m))
        config.augmentation = augmentation
        config.order = c.order ?? (cache.isRemote ? .shards(window: SampleOrder.defaultWindow) : .global)
        self.augmentation = augmentation
        self.configuration = config
        sampler = Sampler(sampleCount: m.sampleCount, seed: c.seed, shuffle: c.shuffle, order: config.order ?? .global,
                          shardRanges: m.shards.map { $0.firstIndex..<($0.firstIndex + $0.count) })
        labels = try cache.labels()
        // A label outside the classes would index past a logit row in every consumer.
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= m.classes.count }) {
            let shard = m.shardNumber(of: bad) ?? 0
            throw LoaderError.invalidLabel(shard: shard, index: bad, label: Int(labels[bad]), classes: m.classes.count)
        }
        normalizeScale = (0..<m.channels).map { Float(1 / (255 * max(m.std[$0], 1e-6))) }
        normalizeOffset = (0..<m.channels).map { Float(-m.mean[$0] / max(m.std[$0], 1e-6)) }
    }

    /// Opens the cache at `path` (a directory or `s3://bucket/prefix`) and makes a loader.
    public convenience init(path: String, configuration: LoaderConfiguration) throws {
        try self.init(cache: try CacheReader.open(path), configuration: configuration)
    }

    /// The largest factor by which a view may be upsampled from the largest level.
    public static let maximumUpsampling = 2.0

    /// Checks that `size` can be served from `manifest`'s levels.
    /// - Throws: ``LoaderError/unservableSize(size:levels:reason:)``.
    public static func checkServable(size: Int, manifest: Manifest) throws {
        let largest = manifest.levelSizes.max() ?? 0
        if size < 1 {
            throw LoaderError.unservableSize(size: size, levels: manifest.levelSizes, reason: "sizes must be positive")
        }
        if Double(size) > maximumUpsampling * Double(largest) {
            throw LoaderError.unservableSize(
                size: size, levels: manifest.levelSizes,
                reason: "it would upsample the largest level \(largest) by more than \(maximumUpsampling)x; build the cache with a larger level")
        }
        // A publication of some levels only (push --levels): a size is served from the level the
        // whole cache would use, so its batches are the whole cache's, or refused.
        let source = manifest.levelSizes.filter { $0 >= size }.min() ?? largest
        let held = manifest.heldLevels
        if !held.contains(source) {
            throw LoaderError.unservableSize(
                size: size, levels: held,
                reason: "it is rendered from level \(source), which this copy does not hold (published with push --levels); publish level \(source) too, or use sizes its levels serve")
        }
    }

    /// The stored level a view of `size` is rendered from: the smallest level at least `size`, or
    /// the largest level.
    public func sourceLevel(for size: Int) -> Int {
        let levels = cache.manifest.levelSizes
        return levels.filter { $0 >= size }.min() ?? levels.max()!
    }

    /// The context a schedule plans `epoch` with, from stream position `cursor`.
    func context(epoch: Int, cursor: Int) -> PlanContext {
        let c = configuration
        return PlanContext(epoch: epoch, epochs: c.epochs, startCursor: cursor, images: cache.manifest.sampleCount - cursor,
                           batchSize: c.batchSize, worldSize: c.worldSize, seed: c.seed, dropLast: c.dropLast)
    }

    /// Every step of `epoch` (all ranks together), without reading a pixel.
    public func plan(epoch: Int) -> EpochPlan {
        configuration.schedule.plan(context(epoch: epoch, cursor: 0))
    }

    /// The steps of `epoch` from stream position `cursor` on. At a step boundary of the full plan
    /// (the normal resume point, ``Batch/nextCursor``) this is the rest of that plan, so a resumed
    /// run is identical to an uninterrupted one. At another position (after a change of batch size
    /// or world size) the schedule plans the remaining positions afresh: every remaining sample is
    /// still served once.
    /// - Throws: ``LoaderError/invalidCursor(cursor:sampleCount:)``.
    public func plan(epoch: Int, from cursor: Int) throws -> (plan: EpochPlan, firstStep: Int) {
        let n = cache.manifest.sampleCount
        guard cursor >= 0 && cursor <= n else { throw LoaderError.invalidCursor(cursor: cursor, sampleCount: n) }
        let full = plan(epoch: epoch)
        if cursor == 0 { return (full, 0) }
        if let k = full.steps.firstIndex(where: { $0.cursor == cursor }) { return (full, k) }
        if cursor >= full.endCursor { return (full, full.steps.count) }
        let rest = configuration.schedule.plan(context(epoch: epoch, cursor: cursor))
        return (rest, 0)
    }

    /// The shards each step of `plan` from step `first` on reads, for this rank (sorted).
    /// The cache files each step from `first` on reads (ids into ``Manifest/files``): the shards
    /// of its samples, and in a version 3 cache only the files of the levels its sizes are
    /// rendered from.
    func fileUses(plan: EpochPlan, order: [Int32], from first: Int) -> [[Int]] {
        let m = cache.manifest, c = configuration
        return plan.steps[min(first, plan.steps.count)...].map { step in
            let positions = Sampler.positions(cursor: step.cursor, batchSize: step.batchSize, rank: c.rank,
                                              worldSize: c.worldSize, available: step.globalImages)
            var shards = Set<Int>()
            for p in positions { if let s = m.shardNumber(of: Int(order[p])) { shards.insert(s) } }
            return cache.files(shards: shards, levels: Set(step.sizes.map(sourceLevel)))
        }
    }

    /// The batches of `epoch` for this rank, as an `AsyncSequence`. Workers start when iteration
    /// starts and stop when it ends or the iterator is dropped.
    /// - Parameters:
    ///   - epoch: the epoch, from 0.
    ///   - cursor: a stream position to resume from (``Batch/nextCursor`` of the last batch done).
    public func epoch(_ epoch: Int, from cursor: Int = 0) -> EpochBatches {
        EpochBatches(loader: self, epoch: epoch, cursor: cursor)
    }

    /// The batches of `epoch` for this rank, synchronously: `while let batch = try it.next() { … }`.
    /// - Throws: ``LoaderError/invalidCursor(cursor:sampleCount:)``.
    public func batches(epoch: Int, from cursor: Int = 0) throws -> EpochIterator {
        EpochIterator(handle: try RunHandle(run: EpochRun(loader: self, epoch: epoch, cursor: cursor)))
    }

    /// Every substitution made so far under ``CorruptRecordPolicy/substitute``.
    public var substitutions: [Substitution] { substitutionLog.withLock { $0 } }

    func record(_ s: Substitution) { substitutionLog.withLock { $0.append(s) } }

    /// Buffers kept from earlier epochs (at most `prefetch`).
    func takeBuffers() -> [BatchStorage] {
        spareBuffers.withLock { b in defer { b = [] }; return b }
    }

    func returnBuffers(_ buffers: [BatchStorage]) {
        let limit = configuration.prefetch
        spareBuffers.withLock { b in
            b += buffers
            if b.count > limit { b.removeLast(b.count - limit) }
        }
    }
}

/// A synchronous iterator over one epoch's batches.
public struct EpochIterator: Sendable {
    let handle: RunHandle
    /// The plan being served.
    public var plan: EpochPlan { handle.run.plan }
    /// The next batch, or nil at the end of the epoch.
    /// - Throws: ``LoaderError/cache(_:)`` for a corrupt record under the `fail` policy.
    public mutating func next() throws -> Batch? { try handle.run.next() }
    /// Buffers allocated so far (at most `prefetch`, unless batches are kept past the next step).
    public var buffersAllocated: Int { handle.run.buffersAllocated }

    /// What ``next(waitingAtMost:)`` found.
    public enum Poll {
        /// The next batch.
        case batch(Batch)
        /// The epoch is over (or was stopped).
        case end
        /// The next batch was not ready in time; ask again.
        case timedOut
    }

    /// The next batch, waiting `seconds` at most: a caller that must stay responsive (to a Ctrl-C
    /// in an interpreter, say) asks again after a timeout.
    /// - Throws: ``LoaderError/cache(_:)`` for a corrupt record under the `fail` policy.
    public mutating func next(waitingAtMost seconds: Double) throws -> Poll {
        let nanoseconds = UInt64(max(0, min(seconds, 86_400)) * 1e9)
        return try handle.run.next(deadline: .now() + .nanoseconds(Int(nanoseconds)))
    }

    /// Stops the workers after the step each is rendering; ``next()`` then returns nil. Dropping the
    /// iterator does the same.
    public func stop() { handle.run.cancel() }
}

/// An `AsyncSequence` over one epoch's batches.
public struct EpochBatches: AsyncSequence {
    public typealias Element = Batch
    let loader: Loader
    let epoch: Int
    let cursor: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        var handle: RunHandle?
        var error: Error?
        public mutating func next() async throws -> Batch? {
            if let error { self.error = nil; handle = nil; throw error }
            guard let handle else { return nil }
            let batch = try await handle.run.nextAsync()
            if batch == nil { self.handle = nil }
            return batch
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        do {
            return AsyncIterator(handle: try RunHandle(run: EpochRun(loader: loader, epoch: epoch, cursor: cursor)))
        } catch {
            return AsyncIterator(handle: nil, error: error)
        }
    }
}

/// Owns a run on behalf of an iterator; stops its workers when released.
final class RunHandle: Sendable {
    let run: EpochRun
    init(run: EpochRun) { self.run = run; run.start() }
    deinit { run.cancel() }
}
