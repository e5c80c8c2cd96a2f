/// Every step at one size: the ordinary baseline.
public struct Fixed: ResolutionSchedule {
    /// The size of every step.
    public var size: Int

    public init(size: Int) { self.size = size }

    public var sizes: [Int] { [size] }
    public var referenceSize: Int { size }
    public var description: String { "fixed:\(size)" }

    public func plan(_ context: PlanContext) -> EpochPlan {
        EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: [size]), context: context)
    }
}
