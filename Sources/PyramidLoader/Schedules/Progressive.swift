/// Progressive resizing: small images early, the full size late, the batch unchanged.
///
/// The size of epoch `e` ramps linearly from `from` (up to `startEpoch`) to `to` (from `endEpoch`
/// on) and is rounded to a multiple of `multiple`, as FFCV's ImageNet recipe does
/// (`np.interp` between `start_ramp` and `end_ramp`, rounded to a multiple of 32; docs/design.md, "Fixed and progressive").
/// Related: fast.ai's DAWNBench phases and Composer's `ProgressiveResizing`.
public struct Progressive: ResolutionSchedule {
    public var from: Int
    public var to: Int
    public var startEpoch: Int
    public var endEpoch: Int
    public var multiple: Int

    public init(from: Int, to: Int, startEpoch: Int, endEpoch: Int, multiple: Int = 4) {
        self.from = from; self.to = to; self.startEpoch = startEpoch; self.endEpoch = endEpoch
        self.multiple = max(1, multiple)
    }

    /// The size of `epoch`.
    public func size(epoch: Int) -> Int {
        let t: Double
        if epoch <= startEpoch { t = 0 } else if epoch >= endEpoch { t = 1 } else {
            t = Double(epoch - startEpoch) / Double(endEpoch - startEpoch)
        }
        let raw = Double(from) + t * Double(to - from)
        return max(multiple, Int((raw / Double(multiple)).rounded(.toNearestOrEven)) * multiple)
    }

    public var sizes: [Int] {
        Array(Set((0...max(endEpoch, startEpoch)).map { size(epoch: $0) })).sorted(by: >)
    }
    public var referenceSize: Int { to }
    public var description: String { "progressive:\(from),\(to),start=\(startEpoch),end=\(endEpoch),multiple=\(multiple)" }

    public func plan(_ context: PlanContext) -> EpochPlan {
        EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: [size(epoch: context.epoch)]), context: context)
    }
}
