#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// What to do with a record that fails its checksum or header check, or is missing.
public enum CorruptRecordPolicy: String, Codable, Sendable, CaseIterable {
    /// Stop: the epoch's iterator throws an error naming shard, index and level.
    case fail
    /// Serve the next readable sample instead (`(index + 1) mod N`, then onwards) with its own
    /// label, so shapes, determinism and resume survive; every substitution is counted in the
    /// batch and listed by ``Loader/substitutions``.
    case substitute
}

/// Everything a ``Loader`` needs besides the cache.
public struct LoaderConfiguration: Sendable {
    /// The settings a ``LoaderError/invalidConfiguration(key:reason:)`` can name: raw values are
    /// the property names.
    public enum Key: String, Sendable, CaseIterable {
        case batchSize, worldSize, rank, workers, prefetch, epochs
        /// Words for a message: `batch size`.
        public var label: String {
            rawValue.reduce(into: "") { out, c in out += c.isUppercase ? " " + c.lowercased() : String(c) }
        }
    }

    /// Which size(s) each step serves, and its batch.
    public var schedule: any ResolutionSchedule
    /// Base images per rank per step (MixSize scales it per size; D+ adds duplicates).
    public var batchSize: Int
    /// Seed of every random choice (permutation, crops, flips, schedule draws).
    public var seed: UInt64
    /// This process's rank, `0..<worldSize`.
    public var rank: Int
    /// Number of ranks sharing the epoch; each reads a disjoint, equal share of every step.
    public var worldSize: Int
    /// Total epochs of the run, if known (TRD keeps the last ones at full size).
    public var epochs: Int?
    /// How views are cut; nil: the cache's default (``Augmentation/training(for:)`` when shuffling,
    /// ``Augmentation/evaluation(for:)`` otherwise).
    public var augmentation: Augmentation?
    /// Float32 NCHW (normalized) or UInt8 NHWC.
    public var output: OutputFormat
    /// Batch buffers in use at once: being filled, filled and waiting, and the one you hold (at
    /// least `workers`). Peak image memory is `prefetch ×` the largest batch's bytes, as long as
    /// you release each batch before asking for the next (a `for` loop does).
    public var prefetch: Int
    /// Worker threads; each fills whole batches.
    public var workers: Int
    /// What a corrupt record does.
    public var corruptRecords: CorruptRecordPolicy
    /// Permute every epoch (training) or read in index order (evaluation).
    public var shuffle: Bool
    /// Drop the partial last global step (training) or serve it split across ranks (evaluation).
    public var dropLast: Bool
    /// How a shuffled epoch is ordered; nil: ``SampleOrder/global`` for a local cache,
    /// ``SampleOrder/shards(window:)`` (window 4) for a remote one, whose limit may be below the
    /// cache's size. The loader's ``Loader/configuration`` holds the value resolved.
    public var order: SampleOrder?

    public init(schedule: any ResolutionSchedule, batchSize: Int = 128, seed: UInt64 = 0, rank: Int = 0,
                worldSize: Int = 1, epochs: Int? = nil, augmentation: Augmentation? = nil,
                output: OutputFormat = .float32, prefetch: Int? = nil, workers: Int? = nil,
                corruptRecords: CorruptRecordPolicy = .fail, shuffle: Bool = true, dropLast: Bool? = nil,
                order: SampleOrder? = nil) {
        let w = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
        self.schedule = schedule; self.batchSize = batchSize; self.seed = seed; self.rank = rank
        self.worldSize = worldSize; self.epochs = epochs; self.augmentation = augmentation; self.output = output
        self.workers = w; self.prefetch = prefetch ?? max(4, 2 * w); self.corruptRecords = corruptRecords
        self.shuffle = shuffle; self.dropLast = dropLast ?? shuffle; self.order = order
    }

    /// An evaluation configuration: index order, every sample once, the cache's evaluation view.
    public static func evaluation(size: Int, batchSize: Int = 256, augmentation: Augmentation? = nil) -> LoaderConfiguration {
        LoaderConfiguration(schedule: Fixed(size: size), batchSize: batchSize, augmentation: augmentation,
                            shuffle: false, dropLast: false)
    }
}

/// A corrupt record that was replaced under ``CorruptRecordPolicy/substitute``.
public struct Substitution: Sendable, Equatable {
    /// The sample whose record failed.
    public var index: Int
    /// The level that failed.
    public var level: Int
    /// The shard holding it.
    public var shard: Int
    /// Why.
    public var reason: String
    /// The sample served instead.
    public var replacement: Int
}

/// The largest values the loader and the planner take: beyond them a product (batch × world
/// size, steps × epochs) or an allocation (a plan's steps) would overflow or exhaust memory, so
/// they are refused with a message instead of trapping.
public enum Bounds {
    /// Processes sharing a run.
    public static let worldSize = 1 << 20
    /// Images per rank per step.
    public static let batchSize = 1 << 24
    /// Epochs of a run.
    public static let epochs = 100_000
    /// Samples of a cache (or of `pyramid plan --samples`).
    public static let samples = 1 << 40
    /// Steps in one epoch's plan (each is held in memory while the epoch runs).
    public static let stepsPerEpoch = 1 << 26
    /// Steps over all epochs that `pyramid plan` lays out.
    public static let plannedSteps = 1 << 27

    /// Nil when `value` is within `1...maximum`, else why not.
    public static func check(_ value: Int, atMost maximum: Int) -> String? {
        value < 1 ? "must be at least 1, not \(value)" : value > maximum ? "\(value) is more than the \(maximum) this tool takes" : nil
    }
}
