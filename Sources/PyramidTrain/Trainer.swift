import Foundation
import PyramidCache
import PyramidLoader

/// Trains a ``Network`` from a cache under a resolution schedule, with checkpoints and a log.
///
/// Run directory: `run.json` (the configuration), `log.jsonl` (one line per epoch),
/// `checkpoint.bin` (after every epoch, and on interruption with the loader position),
/// `checkpoint-best.bin` (best validation top-1 when a test cache is given).
public final class Trainer {
    /// One epoch's summary (also a line of `log.jsonl`).
    public struct EpochLog: Codable, Sendable {
        public var epoch: Int
        public var loss: Double
        public var trainTop1: Double
        public var learningRate: Double
        public var imagesPerSecond: Double
        public var seconds: Double
        /// Sizes trained this epoch, largest first.
        public var sizes: [Int]
        /// Forward multiply-adds of the epoch (all samples, all sizes) and of the run so far.
        public var macs: Double
        public var cumulativeMacs: Double
        public var validationTop1: Double?
        public var validationSize: Int?
        /// True when the epoch was resumed mid-way from a checkpoint without the epoch's sums (written by
        /// an older version): its loss and accuracy then cover only its rest. A resumed epoch's line is
        /// otherwise the uninterrupted run's (but for its wall-clock fields).
        public var partial: Bool?
        /// The learned ensemble weights softmax(α), largest size first (parallel schedules).
        public var alpha: [Double]?
        /// Corrupt records substituted so far (policy `substitute`).
        public var substitutions: Int?
        /// Data-parallel runs: wall seconds of this epoch spent in the per-step allreduce (rank 0's).
        public var allreduceSeconds: Double?
        /// Data-parallel runs: the number of processes that trained this epoch.
        public var processes: Int?
        /// An s3:// training cache: this process's transfers during the epoch (bytes fetched, cache
        /// hits and misses, retries, seconds the steps waited for shards, evictions).
        public var remote: RemoteStatistics?
        /// Record bytes this process read from the cache during the epoch (the levels it was
        /// served from; in a version 3 cache, what it read from disk or fetched files hold).
        public var bytesRead: Int?
    }

    /// What a progress display needs.
    public struct Progress: Sendable {
        public var epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, imagesPerSecond: Double, size: Int
    }

    public private(set) var configuration: RunConfiguration
    public let directory: URL
    public let network: Network
    public let loader: Loader
    public let schedule: any ResolutionSchedule
    let optimizer: SGD
    var smoothing: GradientSmoothing?
    var header: Checkpoint.Header
    let mred: MRED?
    /// Offset of α in the parameter block (parallel schedules).
    let alphaOffset: Int?
    var macsPerSize: [Int: Int] = [:]
    /// ∂L/∂logits of each branch, reused from step to step.
    let gradTensors: [Tensor]
    /// The processes training together (data-parallel); `SingleProcess` alone.
    public let group: ProcessGroup
    /// Where an `s3://` cache's files go (the training cache's and the test cache's).
    public let remote: RemoteOptions
    /// Seconds spent in the gradient allreduce since the trainer was made (0 alone).
    public internal(set) var allreduceSeconds = 0.0

    public static let configurationFile = "run.json", logFile = "log.jsonl"
    public static let checkpointFile = "checkpoint.bin", bestCheckpointFile = "checkpoint-best.bin"

    /// Starts a new run in `directory`, or continues the one there (`resume`).
    ///
    /// With a `group` of N processes, each takes `batch / N` images of every step (its rank's share
    /// of the loader's global stream), and every step sums the gradients, the BatchNorm running
    /// statistics and the step's loss over the ranks in one allreduce and averages them, so every
    /// rank holds the same model after every step; rank 0 alone writes the run directory. The
    /// recipe (batch, learning rate, steps per epoch) is the one-process recipe whatever N is, so
    /// a run resumes on any number of processes.
    /// - Throws: ``TrainError`` or a cache/loader error naming what is wrong, before any training.
    /// - Parameter remote: where an `s3://` cache's fetched files go and how much they may take.
    public init(configuration: RunConfiguration, directory: URL, resume: Bool, group: ProcessGroup = SingleProcess(),
                remote: RemoteOptions = RemoteOptions()) throws {
        self.remote = remote
        self.configuration = configuration
        self.directory = directory
        self.group = group
        guard configuration.batch % group.size == 0 else {
            throw TrainError.invalidSetting(setting: "batch", reason: "\(configuration.batch) images per step cannot be split evenly among \(group.size) processes")
        }
        let reader = try CacheReader.open(configuration.cache, remote: remote)
        let m = reader.manifest
        schedule = try configuration.validate(against: m)
        let parallel = schedule.parallelSizes != nil
        var modelConfiguration = configuration.model
        modelConfiguration.inputChannels = m.channels
        modelConfiguration.classes = m.classes.count
        modelConfiguration.banks = parallel && !configuration.sharedBatchNorm ? schedule.sizes.count : 1
        modelConfiguration.ensemble = parallel ? schedule.sizes.count : 0
        if resume && modelConfiguration != configuration.model {
            throw TrainError.incompatibleCache(path: configuration.cache, channels: m.channels, classes: m.classes.count,
                                               modelChannels: configuration.model.inputChannels, modelClasses: configuration.model.classes)
        }
        self.configuration.model = modelConfiguration
        network = try Network(modelConfiguration)
        alphaOffset = network.alphaOffset
        mred = parallel ? MRED(distillation: configuration.distillation, smoothing: configuration.labelSmoothing) : nil
        gradTensors = (0..<max(1, modelConfiguration.ensemble)).map { _ in Tensor(shape: [0]) }
        loader = try Loader(cache: reader, configuration: LoaderConfiguration(
            schedule: schedule, batchSize: configuration.batch / group.size, seed: configuration.seed,
            rank: group.rank, worldSize: group.size, epochs: configuration.epochs,
            augmentation: try configuration.augment.map(Augmentation.parse),
            output: .float32ChannelMajor,  // the network's own layout: no transpose per batch
            workers: configuration.workers, corruptRecords: configuration.corruptRecords, order: configuration.order))
        self.configuration.order = loader.configuration.order
        optimizer = SGD(store: network.store, configuration: configuration.optimizer)
        smoothing = configuration.gradientSmoothing ? GradientSmoothing() : nil
        header = Checkpoint.Header(epochsDone: 0, steps: 0, nextEpoch: 0, nextCursor: 0, gradientSmoothing: smoothing,
                                   parameterCount: network.store.count, stateCount: network.store.stateCount, trainingMacs: 0, wallSeconds: 0,
                                   runID: configuration.runID)
        if resume { try restore() }
    }

    func restore() throws {
        let url = directory.appendingPathComponent(Self.checkpointFile)
        // A run whose first checkpoint could not be written (a full disk) has run.json and no
        // checkpoint or log: its last good state is the beginning.
        let log = directory.appendingPathComponent(Self.logFile)
        if !FileManager.default.fileExists(atPath: url.path),
           ((try? FileManager.default.attributesOfItem(atPath: log.path))?[.size] as? Int ?? 0) == 0 {
            return
        }
        let c = try Checkpoint.read(from: url)
        let h = c.header, epochs = configuration.epochs
        guard h.nextEpoch >= 0, h.nextEpoch <= epochs, h.epochsDone >= 0, h.epochsDone <= epochs, h.nextCursor >= 0, h.steps >= 0 else {
            throw TrainError.checkpoint(path: url.path, reason: """
                it continues at epoch \(h.nextEpoch) (\(h.epochsDone) done), but \(Self.configurationFile) gives the run \(epochs) epochs: \
                the checkpoint belongs to another run, or \(Self.configurationFile) was edited
                """)
        }
        if let mine = configuration.runID, let theirs = h.runID, mine != theirs {
            throw TrainError.checkpoint(path: url.path, reason: "it belongs to run \(theirs), not to this run (\(mine)): it was copied in from another run directory")
        }
        try c.load(into: network.store, from: url)
        optimizer.velocity = c.velocity
        smoothing = c.header.gradientSmoothing
        header = c.header
    }
}
