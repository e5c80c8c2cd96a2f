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
