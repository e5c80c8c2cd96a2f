import Foundation
import PyramidLoader

/// Everything that defines a training run; saved as `run.json` in the run directory so that
/// `--resume` and `pyramid eval` need nothing else.
public struct RunConfiguration: Codable, Equatable, Sendable {
    /// The training cache.
    public var cache: String
    /// A cache to validate on after every epoch (and `pyramid eval`'s default test set).
    public var testCache: String?
    public var model: Network.Configuration
    /// The loader's schedule string.
    public var schedule: String
    /// The loader's augmentation string (nil: the cache's default).
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
    /// RS-Nets distillation for `parallel:` schedules: full, vanilla or none.
    public var distillation: String
    public var seed: UInt64
    /// Loader worker threads.
    public var workers: Int
    /// Batch parts computed in parallel (one GEMM thread each).
    public var threads: Int
    /// What a corrupt training record does: `fail` (default) or `substitute`.
    public var corruptRecords: String?
    /// Parallel schedules: one BatchNorm shared by every size instead of a private bank per size
    /// (the RS-Nets paper's ablation). Nil in runs written before the option existed: false.
    public var sharedBatchNorm: Bool?

    public init(cache: String, testCache: String? = nil, model: Network.Configuration, schedule: String, augment: String? = nil,
                epochs: Int, batch: Int, learningRate: LearningRateSchedule, optimizer: SGD.Configuration = .init(),
                labelSmoothing: Float = 0, gradientSmoothing: Bool = false, resetSmoothingAtMilestones: Bool = true,
                distillation: String = "full", seed: UInt64 = 0, workers: Int = 2, threads: Int = 2) {
        self.cache = cache; self.testCache = testCache; self.model = model; self.schedule = schedule; self.augment = augment
        self.epochs = epochs; self.batch = batch; self.learningRate = learningRate; self.optimizer = optimizer
        self.labelSmoothing = labelSmoothing; self.gradientSmoothing = gradientSmoothing
        self.resetSmoothingAtMilestones = resetSmoothingAtMilestones; self.distillation = distillation; self.seed = seed
        self.workers = workers; self.threads = threads
    }

    /// The parsed schedule; TRD gets the LR milestones as its guard epochs.
    public func parsedSchedule(largestLevel: Int?) throws -> any ResolutionSchedule {
        let s = try ScheduleParser.parse(schedule, largestLevel: largestLevel)
        if var trd = s as? TemporalDecrement, trd.milestones.isEmpty, learningRate.kind == .multistep {
            trd.milestones = learningRate.milestones
            return trd
        }
        return s
    }
}
