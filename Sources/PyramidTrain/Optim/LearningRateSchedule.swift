import Foundation

/// The learning rate at every iteration.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case cosine, multistep, constant }
    public var kind: Kind
    public var base: Float
    /// Multistep: the first epoch at each decayed rate.
    public var milestones: [Int]
    public var gamma: Float
    /// Linear warmup over this many epochs, per iteration.
    public var warmupEpochs: Int

    public init(kind: Kind, base: Float, milestones: [Int] = [], gamma: Float = 0.1, warmupEpochs: Int = 0) {
        self.kind = kind; self.base = base; self.milestones = milestones; self.gamma = gamma; self.warmupEpochs = warmupEpochs
    }

    /// The rate of iteration `step` of `stepsInEpoch` in `epoch` of `epochs`.
    public func rate(epoch: Int, step: Int, stepsInEpoch: Int, epochs: Int) -> Float {
        let steps = max(1, stepsInEpoch)
        let t = Double(epoch) + Double(step) / Double(steps)
        var lr: Double
        switch kind {
        case .constant: lr = Double(base)
        case .cosine: lr = Double(base) * (1 + cos(Double.pi * t / Double(max(1, epochs)))) / 2
        case .multistep: lr = Double(base) * pow(Double(gamma), Double(milestones.filter { $0 <= epoch }.count))
        }
        if warmupEpochs > 0 && t < Double(warmupEpochs) { lr *= (t * Double(steps) + 1) / (Double(warmupEpochs) * Double(steps)) }
        return Float(lr)
    }
}
