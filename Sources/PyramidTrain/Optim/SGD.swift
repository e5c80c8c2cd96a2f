import Foundation

/// SGD with momentum (PyTorch semantics: no dampening; Nesterov optional) and weight decay added
/// to the gradient, over the whole parameter block.
public final class SGD {
    public struct Configuration: Codable, Equatable, Sendable {
        public var momentum: Float = 0.9
        public var nesterov = false
        public var weightDecay: Float = 1e-4
        /// Decay every parameter (RS-Nets: BN γ/β, biases and α too) or only conv/FC weights
        /// (MixSize and the usual CIFAR recipe).
        public var decayAll = false
        public init(momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 1e-4, decayAll: Bool = false) {
            self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay; self.decayAll = decayAll
        }
    }

    public let configuration: Configuration
    let store: ParameterStore
    /// The momentum buffer, one value per parameter (saved in checkpoints).
    public internal(set) var velocity: [Float]
    private let decay: [Float]

    public init(store: ParameterStore, configuration: Configuration) {
        self.store = store; self.configuration = configuration
        velocity = Array(repeating: 0, count: store.count)
        var d = [Float](repeating: 0, count: store.count)
        for s in store.slices where configuration.decayAll || s.kind == .weight {
            for i in s.offset..<(s.offset + s.count) { d[i] = configuration.weightDecay }
        }
        decay = d
    }

    /// One update with learning rate `lr` from the gradients in the store.
    public func step(lr: Float) {
        let p = store.values!, g = store.grads!
        let m = configuration.momentum, nesterov = configuration.nesterov
        let n = store.count, parts = min(Threads.count, max(1, n / 65536))
        velocity.withUnsafeMutableBufferPointer { vb in
            decay.withUnsafeBufferPointer { db in
                let v = vb.baseAddress!, d = db.baseAddress!
                parallelFor(parts) { part in
                    for i in partRange(part, of: parts, count: n) {
                        let gi = g[i] + d[i] * p[i]
                        let vi = m * v[i] + gi
                        v[i] = vi
                        p[i] -= lr * (nesterov ? gi + m * vi : vi)
                    }
                }
            }
        }
    }
}

/// MixSize's gradient smoothing (`utils/regularization.py` `GradSmooth`; docs/design.md, "MixSize"):
/// the step's gradient keeps its direction and takes the running average of recent norms.
public struct GradientSmoothing: Codable, Equatable, Sendable {
    public var momentum: Float = 0.9
    /// The running norm `r`, nil before the first step of a phase.
    public var runningNorm: Float?
    public init(momentum: Float = 0.9) { self.momentum = momentum }

    /// Rescales the gradients in `store`: `g ← g · r / (‖g‖ + 1e−6)`, `r ← m·r + (1−m)·‖g‖`.
    public mutating func apply(to store: ParameterStore) {
        var sq: Double = 0
        for i in 0..<store.count { sq += Double(store.grads[i]) * Double(store.grads[i]) }
        let norm = Float(sq.squareRoot())
        guard let r = runningNorm else { runningNorm = norm; return }
        let next = momentum * r + (1 - momentum) * norm
        runningNorm = next
        let scale = next / (norm + 1e-6)
        for i in 0..<store.count { store.grads[i] *= scale }
    }

    /// Starts a new phase (the reference resets at every LR milestone).
    public mutating func reset() { runningNorm = nil }
}

/// The learning rate at every iteration.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable { case cosine, multistep, constant }
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
