import Foundation

/// Multi-resolution ensemble distillation (RS-Nets, Wang et al. ECCV 2020, Eqs. 2, 5–10;
/// docs/design.md, "RS-Nets"), over the logits of S sizes, largest first.
///
/// - `L_cls = Σ_s CE(z_s, y)` (a sum over sizes);
/// - ensemble: `z₀ = Σ_s softmax(α)_s · stopgrad(z_s)`, `L_ens = CE(z₀, y)`: only α gets its
///   gradient, and α gets gradient only from it;
/// - full distillation: `L_kd = Σ_s KL(p₀ ‖ p_s) + Σ_s Σ_{t<s} KL(p_t ‖ p_s)`, every teacher
///   detached, T = 1, times `2/(S+1)`; vanilla: `Σ_s KL(p₀ ‖ p_s)` without the factor; none:
///   parallel training (`L_ens` still trains α).
public struct MRED {
    public enum Distillation: String, Codable, Sendable, CaseIterable { case full, vanilla, none }
    public var distillation: Distillation
    public var smoothing: Float

    public init(distillation: Distillation = .full, smoothing: Float = 0) {
        self.distillation = distillation; self.smoothing = smoothing
    }

    /// The loss terms of one step.
    public struct Terms: Sendable { public var classification: Float, ensemble: Float, distillation: Float
        public var total: Float { classification + ensemble + distillation } }

    /// Computes the loss; writes `∂L/∂z_s` into `grads[s]` and adds `∂L/∂α` into `alphaGrad`.
    /// - Parameters:
    ///   - logits: `(N, K)` per size, largest size first.
    ///   - labels: the N class indices.
    ///   - alpha: the S ensemble weights (before softmax).
    ///   - alphaGrad: receives `∂L/∂α` (added).
    ///   - grads: receive `∂L/∂z_s`, one `(N, K)` tensor per size.
    public func loss(logits: [Tensor], labels: [Int32], alpha: UnsafePointer<Float>, alphaGrad: UnsafeMutablePointer<Float>,
                     grads: [Tensor]) -> Terms {
        let s = logits.count, n = logits[0].shape[0], k = logits[0].shape[1]
        var cls: Float = 0
        for i in 0..<s { cls += Losses.crossEntropy(logits: logits[i], labels: labels, smoothing: smoothing, grad: grads[i]) }
        // Ensemble logits from detached branch logits.
        let a = (0..<s).map { alpha[$0] }
        let am = a.max()!
        let ea = a.map { exp($0 - am) }
        let w = ea.map { $0 / ea.reduce(0, +) }
        let z0 = Tensor(shape: [n, k])
        for i in 0..<s { for j in 0..<(n * k) { z0.data[j] += w[i] * logits[i].data[j] } }
        let g0 = Tensor(shape: [n, k])
        let ens = Losses.crossEntropy(logits: z0, labels: labels, smoothing: smoothing, grad: g0)
        // ∂L_ens/∂α_j = Σ ⟨g0, w_j (z_j − z0)⟩.
        for jj in 0..<s {
            var d: Double = 0
            for e in 0..<(n * k) { d += Double(g0.data[e]) * Double(logits[jj].data[e] - z0.data[e]) }
            alphaGrad[jj] += Float(d) * w[jj]
        }
        var kd: Float = 0
        if distillation != .none {
            let p0 = Losses.softmax(z0.data, n: n, k: k)
            let factor: Float = distillation == .full ? 2 / Float(s + 1) : 1
            for i in 0..<s { kd += factor * Losses.distillation(student: logits[i], teacher: p0, weight: factor, grad: grads[i]) }
            if distillation == .full {
                let probs = (0..<s).map { Losses.softmax(logits[$0].data, n: n, k: k) }
                for i in 0..<s { for t in 0..<i {
                    kd += factor * Losses.distillation(student: logits[i], teacher: probs[t], weight: factor, grad: grads[i])
                } }
            }
        }
        return Terms(classification: cls, ensemble: ens, distillation: kd)
    }
}
