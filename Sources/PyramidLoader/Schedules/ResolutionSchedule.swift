/// Decides, for every step of an epoch, the resolution(s) served and how many images each rank gets.
///
/// A schedule sees no pixels: its plan is a pure function of the ``PlanContext`` (epoch, images to
/// plan, batch size, ranks, seed), so ``Loader/plan(epoch:)`` can list a whole run ahead of time and
/// a resumed run gets the same plan. Pyramid ships ``Fixed``, ``TemporalDecrement`` (TRD),
/// ``MixSize``, ``Parallel`` (RS-Nets) and ``Progressive``; a user can write their own.
public protocol ResolutionSchedule: Sendable, CustomStringConvertible {
    /// Every size this schedule may request; the loader checks the cache can serve them.
    var sizes: [Int] { get }
    /// The full training size a fixed-size baseline would use; compute is reported relative to it.
    var referenceSize: Int { get }
    /// The steps of one epoch.
    func plan(_ context: PlanContext) -> EpochPlan
    /// The sizes every step serves each of its samples at, largest first (RS-Nets: the trainer
    /// keeps a BatchNorm per size and distils the smaller sizes from the ensemble); nil when a
    /// step serves one size. Default: nil.
    var parallelSizes: [Int]? { get }
    /// True when the images per step change from step to step within an epoch (MixSize's B+ and
    /// D+): the trainer's recipe then smooths gradients and starts residual branches at zero, as
    /// the MixSize reference does. Default: false.
    var varyingBatch: Bool { get }
    /// This schedule fitted to a step learning-rate schedule's milestones (TRD takes them as its
    /// guard epochs when it was given none). Default: itself.
    func aligned(withMilestones milestones: [Int]) -> any ResolutionSchedule
}

extension ResolutionSchedule {
    public var parallelSizes: [Int]? { nil }
    public var varyingBatch: Bool { false }
    public func aligned(withMilestones milestones: [Int]) -> any ResolutionSchedule { self }
}

/// What a schedule knows when it plans an epoch.
public struct PlanContext: Sendable, Equatable {
    /// The epoch (0-based).
    public var epoch: Int
    /// Total epochs of the run, when known (TRD's final full-size epochs need it).
    public var epochs: Int?
    /// The stream position the plan starts at: 0, or a resume cursor that is not a step boundary.
    public var startCursor: Int
    /// Stream positions to plan: the epoch's samples from `startCursor` on.
    public var images: Int
    /// The base batch: images per rank per step (MixSize scales it per size).
    public var batchSize: Int
    /// Number of ranks reading the same stream.
    public var worldSize: Int
    /// The run's seed.
    public var seed: UInt64
    /// Whether a partial last step is dropped (training) or kept (evaluation).
    public var dropLast: Bool

    public init(epoch: Int, epochs: Int? = nil, startCursor: Int = 0, images: Int, batchSize: Int,
                worldSize: Int = 1, seed: UInt64 = 0, dropLast: Bool = true) {
        self.epoch = epoch; self.epochs = epochs; self.startCursor = startCursor; self.images = images
        self.batchSize = batchSize; self.worldSize = worldSize; self.seed = seed; self.dropLast = dropLast
    }

    /// Steps of `batch` images per rank, as many as fit, all with the same `sizes`.
    public func uniformSteps(sizes: [Int], batch: Int? = nil, duplicates: Int = 1) -> [StepPlan] {
        let b = batch ?? batchSize
        let global = b * worldSize
        let full = images / global
        var steps = Array(repeating: StepPlan(sizes: sizes, batchSize: b, duplicates: duplicates), count: full)
        let rest = images - full * global
        if !dropLast && rest > 0 {
            steps.append(StepPlan(sizes: sizes, batchSize: b, duplicates: duplicates, globalImages: rest))
        }
        return steps
    }
}

/// One step: the size(s) it serves and its batch.
public struct StepPlan: Sendable, Equatable, Codable {
    /// The output size(s): one for most schedules, every size for ``Parallel`` (largest first).
    public var sizes: [Int]
    /// Images per rank (before duplicates).
    public var batchSize: Int
    /// Augmented copies of each image (MixSize D+; 1 otherwise).
    public var duplicates: Int
    /// Stream positions this step consumes over all ranks: `batchSize × worldSize`, or fewer for
    /// the partial last step of an evaluation. Set by the planner.
    public var globalImages: Int
    /// The stream position the step starts at. Set by ``EpochPlan``.
    public var cursor: Int

    public init(sizes: [Int], batchSize: Int, duplicates: Int = 1, globalImages: Int = 0, cursor: Int = 0) {
        self.sizes = sizes; self.batchSize = batchSize; self.duplicates = duplicates
        self.globalImages = globalImages; self.cursor = cursor
    }

    /// Pixels per channel this step renders on one rank, over all its sizes (a proxy for compute:
    /// a convolutional network's MACs scale with it).
    public var pixelWork: Int { sizes.reduce(0) { $0 + $1 * $1 } * batchSize * duplicates }
}

/// The steps of one epoch, with their stream positions.
public struct EpochPlan: Sendable, Equatable {
    /// The epoch.
    public var epoch: Int
    /// The steps, in order.
    public var steps: [StepPlan]
    /// A short remark on the epoch ("reduced", "guarded", …), for people.
    public var note: String?

    /// Makes a plan, filling in each step's `globalImages` (when zero) and `cursor` from `context`.
    public init(epoch: Int, steps: [StepPlan], note: String? = nil, context: PlanContext) {
        self.epoch = epoch
        self.note = note
        var cursor = context.startCursor
        self.steps = steps.map { step in
            var s = step
            if s.globalImages == 0 { s.globalImages = s.batchSize * context.worldSize }
            s.cursor = cursor
            cursor += s.globalImages
            return s
        }
    }

    /// Stream positions consumed by the whole plan.
    public var images: Int { steps.reduce(0) { $0 + $1.globalImages } }
    /// The stream position after the last step.
    public var endCursor: Int { (steps.last.map { $0.cursor + $0.globalImages }) ?? 0 }
    /// Distinct sizes served, largest first.
    public var sizes: [Int] { Array(Set(steps.flatMap(\.sizes))).sorted(by: >) }
    /// Samples rendered per unit of `s²`, summed over all ranks: `Σ globalImages × duplicates × Σ s²`.
    public var pixelWork: Double {
        steps.reduce(0.0) { $0 + Double($1.globalImages * $1.duplicates) * Double($1.sizes.reduce(0) { $0 + $1 * $1 }) }
    }
}
