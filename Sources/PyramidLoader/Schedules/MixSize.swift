/// MixSize ("Mix & Match: training convnets with mixed image sizes", Hoffer et al., arXiv 1908.08986):
/// a size per step, with the batch (B+) or the duplicates (D+) following it.
///
/// As the reference code does it (`data.py` `SampledDataRegime`, `models/resnet.py` `mixsize_config`;
/// docs/design.md, "MixSize"):
/// - **partition** (default): the epoch's images are split into one group per size, `⌊p_s·N⌋`
///   images each (the last size takes the remainder), so `p_s` weighs *images*, not steps; group `s`
///   makes `⌊n_s / (B_s·W)⌋` steps (drop-last), and the steps of all groups are interleaved in an
///   order drawn from `(seed, epoch)`. With drop-last (training) each group's rest, fewer than
///   `B_s·W` images, is left out of the epoch (the plan's note says how many); without it
///   (evaluation, `drop_last=False`) the rest is a partial step, so every image is served
///   exactly once, in `D_s` copies.
///   Here the epoch's permutation already is random, so step `k` simply takes the next `B_s·W`
///   positions of the stream: the same distribution as the reference's explicit groups.
/// - **independent**: the paper's wording, a size drawn per step with probabilities `p_s`
///   (from `(seed, epoch, step)`), until the next step no longer fits the epoch (without
///   drop-last, the rest is a partial step of the size drawn last).
/// - **B+**: `B_s = round(B₀·(S₀/s)²)`, `D_s = D₀`, so `B·s²` stays about constant.
/// - **D+**: `D_s = max(1, round(D₀·(S₀/s)²))`, `B_s = B₀`; for a size with `(S₀/s)²·D₀ < 0.5`
///   it falls back to B+ (`B_s = round(B₀·(S₀/s)²)`, `D_s = 1`).
/// The learning rate is not scaled with the batch; the reference uses gradient smoothing instead.
public struct MixSize: ResolutionSchedule {
    /// How the batch follows the size.
    public enum Mode: String, Sendable, CaseIterable {
        /// Batch scaled by `(S₀/s)²` ("B+").
        case batch = "B+"
        /// Duplicates scaled by `(S₀/s)²`, falling back to B+ for large sizes ("D+").
        case duplicates = "D+"
    }

    /// How sizes are assigned to steps.
    public enum Sampling: String, Sendable, CaseIterable {
        /// The reference code's per-epoch partition of the images (default).
        case partition
        /// A size drawn independently for every step.
        case independent = "iid"
    }

    /// The sizes, in the order given (the last one takes the partition's remainder).
    public var sizeSet: [Int]
    /// The probability of each size (the fraction of images under `partition`).
    public var probabilities: [Double]
    /// B+ or D+.
    public var mode: Mode
    /// Partition (reference) or independent draws (paper).
    public var sampling: Sampling
    /// The base size `S₀` at which the batch is the loader's base batch `B₀`.
    public var baseSize: Int
    /// The base duplicates `D₀`.
    public var baseDuplicates: Int

    public init(sizes: [Int], probabilities: [Double], mode: Mode = .batch, sampling: Sampling = .partition,
                baseSize: Int, baseDuplicates: Int = 1) {
        self.sizeSet = sizes; self.probabilities = probabilities; self.mode = mode; self.sampling = sampling
        self.baseSize = baseSize; self.baseDuplicates = baseDuplicates
    }

    public var sizes: [Int] { sizeSet }
    /// The batch (B+) or the duplicates (D+) follow each step's size.
    public var varyingBatch: Bool { true }
    public var referenceSize: Int { baseSize }
    public var description: String {
        let p = probabilities.map { String($0) }.joined(separator: ",")
        return "mixsize:\(sizeSet.map(String.init).joined(separator: ","))@\(p),mode=\(mode.rawValue),sampling=\(sampling.rawValue),base=\(baseSize)"
    }

    /// The batch and duplicates of size `size` given the base batch `B₀`.
    public func setting(for size: Int, baseBatch: Int) -> (batch: Int, duplicates: Int) {
        let scale = Double(baseSize * baseSize) / Double(size * size)
        func round(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }
        switch mode {
        case .batch:
            return (max(1, round(scale * Double(baseBatch))), baseDuplicates)
        case .duplicates:
            if scale * Double(baseDuplicates) < 0.5 { return (max(1, round(scale * Double(baseBatch))), 1) }
            return (baseBatch, max(1, round(scale * Double(baseDuplicates))))
        }
    }

    /// `√E[s²]`: the size whose pixel count is the mean pixel count.
    public var rootMeanSquareSize: Double { Self.rootMeanSquare(sizes: sizeSet, probabilities: probabilities) }

    /// `√E[s²]` of `sizes` drawn with `probabilities`.
    static func rootMeanSquare(sizes: [Int], probabilities: [Double]) -> Double {
        zip(sizes, probabilities).reduce(0.0) { $0 + $1.1 * Double($1.0 * $1.0) }.squareRoot()
    }

    public func plan(_ context: PlanContext) -> EpochPlan {
        let settings = sizeSet.map { setting(for: $0, baseBatch: context.batchSize) }
        var rng = SplitMix64(seed: RandomKey.mix(context.seed, UInt64(context.epoch), UInt64(context.startCursor), RandomKey.mixSize))
        var steps: [StepPlan] = []
        switch sampling {
        case .partition:
            var assigned = 0
            for (i, size) in sizeSet.enumerated() {
                let n = i == sizeSet.count - 1 ? context.images - assigned : Int((probabilities[i] * Double(context.images)).rounded(.down))
                assigned += n
                let (b, d) = settings[i]
                let count = n / (b * context.worldSize)
                steps += Array(repeating: StepPlan(sizes: [size], batchSize: b, duplicates: d), count: count)
                // Without drop-last (evaluation, or drop_last=False), the group's rest is a partial step.
                let rest = n - count * b * context.worldSize
                if !context.dropLast && rest > 0 {
                    steps.append(StepPlan(sizes: [size], batchSize: b, duplicates: d, globalImages: rest))
                }
            }
            // The reference shuffles the list of step sizes with a generator seeded by the epoch.
            var i = steps.count - 1
            while i > 0 { steps.swapAt(i, rng.nextInt(below: i + 1)); i -= 1 }
        case .independent:
            let total = probabilities.reduce(0, +)
            var left = context.images
            while left > 0 {
                var u = rng.nextUnit() * total, k = 0
                while k < sizeSet.count - 1 && u >= probabilities[k] { u -= probabilities[k]; k += 1 }
                let (b, d) = settings[k]
                guard b * context.worldSize <= left else {
                    // Without drop-last, the rest is a partial step of the size drawn.
                    if !context.dropLast { steps.append(StepPlan(sizes: [sizeSet[k]], batchSize: b, duplicates: d, globalImages: left)) }
                    break
                }
                left -= b * context.worldSize
                steps.append(StepPlan(sizes: [sizeSet[k]], batchSize: b, duplicates: d))
            }
        }
        var plan = EpochPlan(epoch: context.epoch, steps: steps, context: context)
        let leftOut = context.images - plan.images
        if leftOut > 0 { plan.note = "\(leftOut) of \(context.images) images left out (each size's partial step; drop-last)" }
        return plan
    }
}
