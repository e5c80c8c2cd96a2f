import Foundation

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
