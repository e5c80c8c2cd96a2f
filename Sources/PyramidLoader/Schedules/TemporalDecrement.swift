/// Temporally Resolution Decrement: whole epochs at a reduced size, drawn per epoch.
///
/// Implements "Temporally Resolution Decrement: Utilizing the Shape Consistency for Higher
/// Computational Efficiency" (arXiv 2112.00954), §3 and App. A, as docs/design.md, "TRD" specifies:
/// - at epoch `e` draw `u_e ~ U(0,1)` from `(seed, e)`; the epoch is reduced iff `u_e < p`
///   (an independent Bernoulli draw per epoch, not a quota of `p·E` epochs);
/// - every step of a reduced epoch is at `reduced`, every step of any other epoch at `full`;
///   the size never changes inside an epoch, and the batch size never changes;
/// - guard: with step-decay milestones `m` (the first epoch at the decayed rate), the epochs
///   `m−guard … m+guard−1` stay at full size ("the two epochs before and after", App. A);
/// - deviation, on by default: the last `finalFullEpochs` epochs stay at full size, so the running
///   BatchNorm statistics of the final model describe the full size (docs/design.md, "TRD").
///
/// `u_e` is drawn for every epoch whatever the guards say, so the guards do not shift the random
/// stream; ``realizedFraction(epochs:seed:)`` reports how many epochs were actually reduced, next to
/// the nominal `p` that the paper's mFLOPs uses: `mFLOPs = (1−p)·F(R) + p·F(r)`.
public struct TemporalDecrement: ResolutionSchedule {
    /// The full size `R`.
    public var full: Int
    /// The reduced size `r < R`.
    public var reduced: Int
    /// The participation rate `p`: the probability that an epoch is reduced.
    public var participation: Double
    /// Step-LR milestones (0-based first epoch at the decayed rate); empty for cosine schedules.
    public var milestones: [Int]
    /// Epochs kept at full size on each side of a milestone (2 in the paper).
    public var guardWidth: Int
    /// Final epochs kept at full size (needs the run's epoch count; 0 turns it off).
    public var finalFullEpochs: Int

    public init(full: Int, reduced: Int, participation: Double, milestones: [Int] = [], guardWidth: Int = 2,
                finalFullEpochs: Int = 2) {
        self.full = full; self.reduced = reduced; self.participation = participation
        self.milestones = milestones; self.guardWidth = guardWidth; self.finalFullEpochs = finalFullEpochs
    }

    public var sizes: [Int] { [full, reduced] }
    /// With no milestones of its own, TRD guards the epochs where a step LR schedule drops.
    public func aligned(withMilestones milestones: [Int]) -> any ResolutionSchedule {
        guard self.milestones.isEmpty else { return self }
        var aligned = self
        aligned.milestones = milestones
        return aligned
    }
    public var referenceSize: Int { full }
    public var description: String {
        var s = "trd:\(full),\(reduced),p=\(participation)"
        if !milestones.isEmpty { s += ",milestones=" + milestones.map(String.init).joined(separator: "+") }
        if guardWidth != 2 { s += ",guard=\(guardWidth)" }
        if finalFullEpochs != 2 { s += ",final=\(finalFullEpochs)" }
        return s
    }

    /// What happens to one epoch.
    public enum Decision: String, Sendable {
        /// The draw said full size.
        case full
        /// The draw said reduced, and the epoch is reduced.
        case reduced
        /// The draw said reduced, but a milestone guard keeps it at full size.
        case guarded
        /// The draw said reduced, but it is one of the final full-size epochs.
        case final
    }

    /// The Bernoulli draw `u_e` of an epoch.
    public func draw(epoch: Int, seed: UInt64) -> Double {
        var rng = SplitMix64(seed: RandomKey.mix(seed, UInt64(epoch), RandomKey.temporalDecrement))
        return rng.nextUnit()
    }

    /// The decision for `epoch` of a run of `epochs` epochs (nil: unknown length, no final guard).
    public func decision(epoch: Int, epochs: Int?, seed: UInt64) -> Decision {
        guard draw(epoch: epoch, seed: seed) < participation else { return .full }
        if milestones.contains(where: { epoch >= $0 - guardWidth && epoch < $0 + guardWidth }) { return .guarded }
        if let epochs, epoch >= epochs - finalFullEpochs { return .final }
        return .reduced
    }

    /// The fraction of `epochs` epochs that are reduced (compare with the nominal ``participation``).
    public func realizedFraction(epochs: Int, seed: UInt64) -> Double {
        guard epochs > 0 else { return 0 }
        let n = (0..<epochs).filter { decision(epoch: $0, epochs: epochs, seed: seed) == .reduced }.count
        return Double(n) / Double(epochs)
    }

    /// The paper's time-averaged compute relative to full size: `(1−p) + p·(r/R)²`.
    public var nominalRelativeCost: Double {
        (1 - participation) + participation * Double(reduced * reduced) / Double(full * full)
    }

    public func plan(_ context: PlanContext) -> EpochPlan {
        let d = decision(epoch: context.epoch, epochs: context.epochs, seed: context.seed)
        let size = d == .reduced ? reduced : full
        let note: String? = switch d {
        case .full: nil
        case .reduced: "reduced"
        case .guarded: "guarded (milestone)"
        case .final: "kept full (final epochs)"
        }
        return EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: [size]), note: note, context: context)
    }
}
