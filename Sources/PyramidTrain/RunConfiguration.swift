import Foundation
import PyramidCache
import PyramidLoader

/// Everything that defines a training run; saved as `run.json` in the run directory so that
/// resuming and evaluating need nothing else.
///
/// The file is versioned: ``load(from:)`` reads `formatVersion` first and refuses a newer one.
/// Version 1 files (written before the field existed) stored the distillation and the corrupt-record
/// policy as optional strings; they read as version 2 with the same values.
public struct RunConfiguration: Codable, Equatable, Sendable {
    /// The `run.json` layout this trainer writes and the newest it reads.
    public static let currentFormatVersion = 2
    /// The layout of this configuration's file.
    public var formatVersion = RunConfiguration.currentFormatVersion
    /// The training cache.
    public var cache: String
    /// A cache to validate on after every epoch (and evaluation's default test set).
    public var testCache: String?
    public var model: Network.Configuration
    /// The loader's schedule string (`ScheduleParser`'s grammar; parsed by ``parsedSchedule(largestLevel:)``).
    public var schedule: String
    /// The loader's augmentation string (`Augmentation`'s grammar; nil: the cache's default).
    public var augment: String?
    public var epochs: Int
    /// Base batch per step.
    public var batch: Int
    public var learningRate: LearningRateSchedule
    public var optimizer: SGD.Configuration
    public var labelSmoothing: Float
    /// MixSize's gradient smoothing (on by default for `mixsize:` schedules).
    public var gradientSmoothing: Bool
    /// Reset the smoothing's running norm at every LR milestone (the reference's behaviour).
    public var resetSmoothingAtMilestones: Bool
    /// RS-Nets distillation for `parallel:` schedules.
    public var distillation: MRED.Distillation
    public var seed: UInt64
    /// Loader worker threads.
    public var workers: Int
    /// Batch parts computed in parallel (one GEMM thread each).
    public var threads: Int
    /// What a corrupt training record does.
    public var corruptRecords: CorruptRecordPolicy
    /// Parallel schedules: one BatchNorm shared by every size instead of a private bank per size
    /// (the RS-Nets paper's ablation).
    public var sharedBatchNorm: Bool
    /// How epochs are shuffled; nil: the loader's default for the cache (global for a local
    /// cache, `shards:4` for a remote one). Run directories record the value used.
    public var order: SampleOrder?
    /// The build id (``Manifest/buildID``) of the training cache and of the test cache when the
    /// run began: a resume or an evaluation on another cache at the same path is refused. Nil in
    /// runs made before they were recorded.
    public var cacheBuildID: String?
    public var testCacheBuildID: String?
    /// A random id drawn when the run is made; its checkpoints carry it (nil in older runs).
    public var runID: String?

    public init(cache: String, testCache: String? = nil, model: Network.Configuration, schedule: String, augment: String? = nil,
                epochs: Int, batch: Int, learningRate: LearningRateSchedule, optimizer: SGD.Configuration = .init(),
                labelSmoothing: Float = 0, gradientSmoothing: Bool = false, resetSmoothingAtMilestones: Bool = true,
                distillation: MRED.Distillation = .full, seed: UInt64 = 0, workers: Int = 2, threads: Int = 2,
                corruptRecords: CorruptRecordPolicy = .fail, sharedBatchNorm: Bool = false, order: SampleOrder? = nil) {
        self.cache = cache; self.testCache = testCache; self.model = model; self.schedule = schedule; self.augment = augment
        self.epochs = epochs; self.batch = batch; self.learningRate = learningRate; self.optimizer = optimizer
        self.labelSmoothing = labelSmoothing; self.gradientSmoothing = gradientSmoothing
        self.resetSmoothingAtMilestones = resetSmoothingAtMilestones; self.distillation = distillation; self.seed = seed
        self.workers = workers; self.threads = threads; self.corruptRecords = corruptRecords; self.sharedBatchNorm = sharedBatchNorm
        self.order = order
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion, cache, testCache, model, schedule, augment, epochs, batch, learningRate, optimizer, labelSmoothing,
             gradientSmoothing, resetSmoothingAtMilestones, distillation, seed, workers, threads, corruptRecords, sharedBatchNorm, order,
             cacheBuildID, testCacheBuildID, runID
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decodeIfPresent(Int.self, forKey: .formatVersion) ?? 1
        cache = try c.decode(String.self, forKey: .cache)
        testCache = try c.decodeIfPresent(String.self, forKey: .testCache)
        model = try c.decode(Network.Configuration.self, forKey: .model)
        schedule = try c.decode(String.self, forKey: .schedule)
        augment = try c.decodeIfPresent(String.self, forKey: .augment)
        epochs = try c.decode(Int.self, forKey: .epochs)
        batch = try c.decode(Int.self, forKey: .batch)
        learningRate = try c.decode(LearningRateSchedule.self, forKey: .learningRate)
        optimizer = try c.decode(SGD.Configuration.self, forKey: .optimizer)
        labelSmoothing = try c.decode(Float.self, forKey: .labelSmoothing)
        gradientSmoothing = try c.decode(Bool.self, forKey: .gradientSmoothing)
        resetSmoothingAtMilestones = try c.decode(Bool.self, forKey: .resetSmoothingAtMilestones)
        distillation = try c.decode(MRED.Distillation.self, forKey: .distillation)
        seed = try c.decode(UInt64.self, forKey: .seed)
        workers = try c.decode(Int.self, forKey: .workers)
        threads = try c.decode(Int.self, forKey: .threads)
        // Version 1 left these out when they had their default.
        corruptRecords = try c.decodeIfPresent(CorruptRecordPolicy.self, forKey: .corruptRecords) ?? .fail
        sharedBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .sharedBatchNorm) ?? false
        order = try c.decodeIfPresent(SampleOrder.self, forKey: .order)  // runs before 0.9: global
        cacheBuildID = try c.decodeIfPresent(String.self, forKey: .cacheBuildID)  // runs before 0.12: not recorded
        testCacheBuildID = try c.decodeIfPresent(String.self, forKey: .testCacheBuildID)
        runID = try c.decodeIfPresent(String.self, forKey: .runID)
    }

    /// The parsed schedule; TRD gets the LR milestones as its guard epochs.
    public func parsedSchedule(largestLevel: Int?) throws -> any ResolutionSchedule {
        let s = try ScheduleParser.parse(schedule, largestLevel: largestLevel)
        return learningRate.kind == .multistep ? s.aligned(withMilestones: learningRate.milestones) : s
    }

    /// Checks the settings against the training cache (and the test cache, when given): the
    /// schedule parses and every size is servable and at least 8 px, the augmentation parses, a
    /// multistep rate has milestones, shared BatchNorm goes with a parallel schedule, the test cache
    /// has the training cache's channels and classes.
    /// - Returns: the parsed schedule.
    /// - Throws: ``TrainError/invalidSetting(setting:reason:)``, ``TrainError/incompatibleCache(path:channels:classes:modelChannels:modelClasses:)``,
    ///   `LoaderError` for a schedule or augmentation that does not parse or a size the cache cannot serve.
    @discardableResult
    public func validate(against manifest: Manifest, testManifest: Manifest? = nil) throws -> any ResolutionSchedule {
        guard epochs >= 1 else { throw TrainError.invalidSetting(setting: "epochs", reason: "\(epochs): must be at least 1") }
        guard batch >= 1 else { throw TrainError.invalidSetting(setting: "batch", reason: "\(batch): must be at least 1") }
        try Self.checkSameCache(cache, recorded: cacheBuildID, found: manifest)
        if let testCache, let testManifest { try Self.checkSameCache(testCache, recorded: testCacheBuildID, found: testManifest) }
        let parsed = try parsedSchedule(largestLevel: manifest.levelSizes.max())
        for s in parsed.sizes { try Loader.checkServable(size: s, manifest: manifest) }
        for s in parsed.sizes where s < 8 {
            throw TrainError.invalidSetting(setting: "schedule", reason: "size \(s) is too small for \(model.architecture) (at least 8)")
        }
        _ = try augment.map(Augmentation.parse)
        if learningRate.kind == .multistep && learningRate.milestones.isEmpty {
            throw TrainError.invalidSetting(setting: "milestones", reason: "a multistep schedule needs them, e.g. 5,8")
        }
        if let bad = learningRate.milestones.first(where: { $0 < 1 || $0 >= epochs }) {
            throw TrainError.invalidSetting(setting: "milestones", reason: "\(bad) is not an epoch where the rate can change (1...\(epochs - 1) for \(epochs) epochs)")
        }
        if sharedBatchNorm && parsed.parallelSizes == nil {
            throw TrainError.invalidSetting(setting: "sharedBatchNorm", reason: "only for parallel schedules (the others have one BatchNorm already)")
        }
        if let testManifest, let testCache, testManifest.channels != manifest.channels || testManifest.classes.count != manifest.classes.count {
            throw TrainError.incompatibleCache(path: testCache, channels: testManifest.channels, classes: testManifest.classes.count,
                                               modelChannels: manifest.channels, modelClasses: manifest.classes.count)
        }
        if batch > manifest.sampleCount {
            throw TrainError.invalidSetting(setting: "batch", reason: "\(batch) is more than the cache's \(manifest.sampleCount) samples: an epoch would have no step")
        }
        return parsed
    }

    /// Throws ``TrainError/otherCache(path:recorded:found:)`` when `manifest` is not the build
    /// `recorded` (nil: nothing recorded, nothing to check).
    static func checkSameCache(_ path: String, recorded: String?, found manifest: Manifest) throws {
        guard let recorded, manifest.buildID != recorded else { return }
        throw TrainError.otherCache(path: path, recorded: recorded, found: manifest.buildID ?? "none")
    }

    /// `location` as it should be recorded: an `s3://` location as it is, a directory as an
    /// absolute path (so a resume from another working directory opens the same cache).
    public static func absoluteLocation(_ location: String) -> String {
        S3Location.isRemote(location) ? location : URL(fileURLWithPath: location).standardizedFileURL.path
    }

    /// Reads `run.json` from a run directory, version first.
    /// - Throws: ``TrainError/noRun(directory:)`` when it is missing or unreadable,
    ///   ``TrainError/unsupportedVersion(path:found:supported:)`` when it is newer than this trainer.
    public static func load(from directory: URL) throws -> RunConfiguration {
        struct Version: Decodable { var formatVersion: Int? }
        let url = directory.appendingPathComponent(Trainer.configurationFile)
        guard let data = try? Data(contentsOf: url), let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw TrainError.noRun(directory: directory.path)
        }
        let found = version.formatVersion ?? 1
        guard found <= currentFormatVersion else {
            throw TrainError.unsupportedVersion(path: url.path, found: found, supported: currentFormatVersion)
        }
        do {
            return try JSONDecoder().decode(RunConfiguration.self, from: data)
        } catch let DecodingError.dataCorrupted(context), let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            if key.isEmpty, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                // Valid JSON whose number does not fit its field (Foundation does not name it).
                if let seed = object["seed"] as? NSNumber, seed.doubleValue < 0 || seed.doubleValue != seed.doubleValue.rounded() {
                    throw TrainError.checkpoint(path: url.path, reason: "seed \(seed) is not a whole number in 0...\(UInt64.max)")
                }
                throw TrainError.checkpoint(path: url.path, reason: "a value is out of range or of the wrong type (\(context.debugDescription))")
            }
            throw TrainError.checkpoint(path: url.path, reason: "\(key.isEmpty ? "the file" : key) cannot be read: \(context.debugDescription)")
        } catch DecodingError.keyNotFound(let key, _) {
            throw TrainError.checkpoint(path: url.path, reason: "\(key.stringValue) is missing")
        } catch {
            throw TrainError.checkpoint(path: url.path, reason: "cannot be read: \(error)")
        }
    }

    /// Writes `run.json` into `directory` (created if needed), atomically.
    public func save(in directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try encoder.encode(self), to: directory.appendingPathComponent(Trainer.configurationFile))
    }
}

extension RunConfiguration {
    /// What a person chooses for a new run; the model's channels and classes come from the cache,
    /// and what is nil here follows the method (``RunConfiguration/recipe(cache:_:)``).
    public struct Recipe: Sendable {
        /// The validation cache, if any.
        public var testCache: String?
        /// ``Network/Configuration/architecture`` (`resnet20`, …, `plain`).
        public var architecture = Network.Architecture.resnet(depth: 20)
        /// The shortcut of shape-changing residual blocks.
        public var shortcut = BasicBlock.Shortcut.projection
        /// The schedule string (nil: fixed at the cache's largest level).
        public var schedule: String?
        /// The augmentation string (nil: the cache's default).
        public var augment: String?
        public var epochs = 10
        /// The base batch per step (over all processes).
        public var batch = 128
        public var learningRate = LearningRateSchedule(kind: .cosine, base: 0.1)
        /// SGD's settings (`decayAll` is forced on for parallel schedules).
        public var optimizer = SGD.Configuration()
        /// Label smoothing ε.
        public var labelSmoothing: Float = 0
        /// MixSize's gradient smoothing; nil: on for MixSize schedules, off otherwise.
        public var gradientSmoothing: Bool?
        /// Start the last BatchNorm γ of every residual block at 0; nil: on for MixSize schedules (its
        /// reference code does), off otherwise (the ResNet paper, PyTorch's default, and RS-Nets').
        public var zeroInitResidual: Bool?
        /// RS-Nets' distillation (parallel schedules).
        public var distillation = MRED.Distillation.full
        /// One BatchNorm for every size (parallel schedules only).
        public var sharedBatchNorm = false
        /// What a corrupt training record does.
        public var corruptRecords = CorruptRecordPolicy.fail
        /// Seed of initialization, order and augmentation.
        public var seed: UInt64 = 0
        /// How epochs are shuffled (nil: the loader's default for the cache).
        public var order: SampleOrder?
        /// Loader threads.
        public var workers = 1
        /// Batch parts computed in parallel.
        public var threads = 1
        public init() {}
    }

    /// A run of `recipe` on `cache`, with the defaults of its method (`docs/design.md`), checked
    /// against its caches before anything is written:
    /// - the schedule defaults to fixed at the cache's largest level;
    /// - parallel (RS-Nets) runs decay every parameter;
    /// - gradient smoothing and the zero-initialized last γ of residual blocks default to on for
    ///   MixSize schedules and off otherwise;
    /// - the model's channels and classes are the cache's.
    /// - Throws: `CacheError` for a cache that cannot be opened, and what ``validate(against:testManifest:)`` throws.
    public static func recipe(cache: String, _ recipe: Recipe, remote: RemoteOptions = RemoteOptions()) throws -> RunConfiguration {
        let manifest = try Manifest.load(location: cache, remote: remote)
        let testManifest = try recipe.testCache.map { try Manifest.load(location: $0, remote: remote) }
        let spec = recipe.schedule ?? "fixed:\(manifest.levelSizes.max()!)"
        // A schedule that does not parse is reported by validate() below.
        let parsed = try? ScheduleParser.parse(spec, largestLevel: manifest.levelSizes.max())
        let isParallel = parsed?.parallelSizes != nil, varyingBatch = parsed?.varyingBatch == true
        var optimizer = recipe.optimizer
        optimizer.decayAll = optimizer.decayAll || isParallel
        var configuration = RunConfiguration(
            cache: absoluteLocation(cache), testCache: recipe.testCache.map(absoluteLocation),
            model: .init(architecture: recipe.architecture.description, inputChannels: manifest.channels, classes: manifest.classes.count,
                         shortcut: recipe.shortcut, zeroInitResidual: recipe.zeroInitResidual ?? varyingBatch, seed: recipe.seed),
            schedule: spec, augment: recipe.augment, epochs: recipe.epochs, batch: recipe.batch, learningRate: recipe.learningRate,
            optimizer: optimizer, labelSmoothing: recipe.labelSmoothing, gradientSmoothing: recipe.gradientSmoothing ?? varyingBatch,
            distillation: recipe.distillation, seed: recipe.seed, workers: recipe.workers, threads: recipe.threads,
            corruptRecords: recipe.corruptRecords, sharedBatchNorm: recipe.sharedBatchNorm, order: recipe.order)
        configuration.cacheBuildID = manifest.buildID
        configuration.testCacheBuildID = testManifest?.buildID
        configuration.runID = UUID().uuidString
        try configuration.validate(against: manifest, testManifest: testManifest)
        return configuration
    }
}
