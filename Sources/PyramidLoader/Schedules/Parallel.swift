/// Every sample at every size in every step, from one crop: the data side of Resolution
/// Switchable Networks ("Resolution Switchable Networks for Runtime Efficient Image
/// Recognition", Wang et al., ECCV 2020; docs/design.md, "RS-Nets").
///
/// Sizes are served largest first, whatever order they were given in, so that teacher and student
/// of the top-down distillation cannot be swapped by accident. One crop box is drawn per sample and
/// rendered at each size (squashed to a square, as the reference code resizes); the horizontal flip
/// is shared by all sizes unless ``Augmentation/independentFlips`` asks for the PyTorch code's
/// per-size flips.
public struct Parallel: ResolutionSchedule {
    /// The sizes, largest first.
    public let sizes: [Int]

    public init(sizes: [Int]) { self.sizes = Array(Set(sizes)).sorted(by: >) }
    /// Every step serves each sample at all of ``sizes``.
    public var parallelSizes: [Int]? { sizes }

    public var referenceSize: Int { sizes.first ?? 0 }
    public var description: String { "parallel:" + sizes.map(String.init).joined(separator: ",") }

    public func plan(_ context: PlanContext) -> EpochPlan {
        EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: sizes), context: context)
    }
}
