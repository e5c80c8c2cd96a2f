import Foundation

/// BatchNorm over `(C, N, H, W)` with one bank of (γ, β, running mean, running variance) per
/// training resolution (RS-Nets' private BatchNorm; one bank for everything else).
///
/// Training mode normalizes with the batch's statistics (biased variance) and updates the bank's
/// running statistics with momentum 0.1 and the unbiased variance (PyTorch's convention).
/// Calibration (``ModelContext/calibrating``) replaces that update with a plain average over the
/// calibration batches. Evaluation uses the running statistics of one bank, or the linear
/// interpolation of two banks' γ, β, mean and variance.
public final class BatchNorm2D: Layer {
    public let channels: Int, banks: Int
    public let momentum: Float = 0.1, epsilon: Float = 1e-5
    let store: ParameterStore
    let context: ModelContext
    let gamma: [Int], beta: [Int], runningMean: [Int], runningVar: [Int]
    private var outputs = BranchTensors(), gradInputs = BranchTensors(), normalized = BranchTensors()
    private var inverseStd: [Int: [Float]] = [:]
    /// Apply ReLU to the output (and mask the gradient by it): one pass over memory instead of two.
    public var fusedReLU = false
    private var usedBank: [Int: Int] = [:]
    /// Branches whose last training forward used frozen (running) statistics.
    private var frozen: Set<Int> = []

    init(_ store: ParameterStore, _ context: ModelContext, channels: Int, banks: Int, zeroGamma: Bool = false, name: String) {
        self.store = store; self.context = context; self.channels = channels; self.banks = banks
        var g: [Int] = [], b: [Int] = [], m: [Int] = [], v: [Int] = []
        for k in 0..<banks {
            g.append(store.add(Array(repeating: zeroGamma ? 0 : 1, count: channels), kind: .scale, name: "\(name).bank\(k).gamma"))
            b.append(store.add(Array(repeating: 0, count: channels), kind: .shift, name: "\(name).bank\(k).beta"))
            m.append(store.addState(Array(repeating: 0, count: channels), name: "\(name).bank\(k).mean"))
            v.append(store.addState(Array(repeating: 1, count: channels), name: "\(name).bank\(k).var"))
        }
        gamma = g; beta = b; runningMean = m; runningVar = v
    }

    private func bankIndex() -> Int {
        guard case .bank(let k) = context.bank else {
            preconditionFailure("interpolated BatchNorm banks are for evaluation only")
        }
        precondition(k >= 0 && k < banks, "bank \(k) of \(banks)")
        return k
    }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        LayerProfile.time(context.profile, LayerProfile.normalizationRow, backward: false) { forwardPass(x, branch: branch) }
    }

    private func forwardPass(_ x: Tensor, branch: Int) -> Tensor {
        let c = x.shape[0], m = x.count / max(1, c)
        precondition(c == channels)
        let y = outputs(branch)
        y.reshape(x.shape)
        let parts = min(Threads.count, c)
        if context.training {
            let k = bankIndex()
            usedBank[branch] = k
            let xhat = normalized(branch)
            xhat.reshape(x.shape)
            var inv = [Float](repeating: 0, count: c)
            let g = store.values + gamma[k], b = store.values + beta[k]
            let rm = store.state + runningMean[k], rv = store.state + runningVar[k]
            let calibrating = context.calibrating, seen = Float(context.calibrationBatches)
            let freeze = context.frozenBatchNorm
            if freeze { frozen.insert(branch) } else { frozen.remove(branch) }
            let fused = fusedReLU
            inv.withUnsafeMutableBufferPointer { invp in
                let invb = invp.baseAddress!
                // Channels claimed one at a time (a core slowed by a neighbour takes fewer).
                parallelChunks(c, workers: parts) { _, ch in
                    let src = x.data + ch * m
                    let mean = freeze ? Double(rm[ch]) : Kernels.sum(src, m) / Double(m)
                    let sq = freeze ? 0 : Kernels.sumOfSquares(src, m, minus: Float(mean))
                    let variance = freeze ? Double(rv[ch]) : sq / Double(m)
                    let istd = Float(1 / (variance + Double(epsilon)).squareRoot())
                    invb[ch] = istd
                    let mu = Float(mean)
                    let xh = xhat.data + ch * m, out = y.data + ch * m
                    let gg = g[ch], bb = b[ch]
                    Kernels.k.normalize(src, m, mu, istd, gg, bb, fused ? 1 : 0, xh, out)
                    let unbiased = Float(m > 1 ? sq / Double(m - 1) : variance)
                    if freeze {
                        // running statistics stay as they are
                    } else if calibrating {
                        rm[ch] += (mu - rm[ch]) / (seen + 1)
                        rv[ch] += (unbiased - rv[ch]) / (seen + 1)
                    } else {
                        rm[ch] = (1 - momentum) * rm[ch] + momentum * mu
                        rv[ch] = (1 - momentum) * rv[ch] + momentum * unbiased
                    }
                }
            }
            inverseStd[branch] = inv
        } else {
            let (g, b, mean, variance) = evaluationParameters()
            let fused = fusedReLU
            parallelChunks(c, workers: parts) { _, ch in
                let scale = g[ch] / (variance[ch] + epsilon).squareRoot()
                let shift = b[ch] - mean[ch] * scale
                let src = x.data + ch * m, out = y.data + ch * m
                Kernels.k.affine(src, m, scale, shift, fused ? 1 : 0, out)
            }
        }
        return y
    }

    /// γ, β, mean and variance used in evaluation under the context's bank choice.
    func evaluationParameters() -> ([Float], [Float], [Float], [Float]) {
        func read(_ base: UnsafeMutablePointer<Float>, _ offset: Int) -> [Float] { Array(UnsafeBufferPointer(start: base + offset, count: channels)) }
        switch context.bank {
        case .bank(let k):
            return (read(store.values, gamma[k]), read(store.values, beta[k]), read(store.state, runningMean[k]), read(store.state, runningVar[k]))
        case .interpolate(let a, let b, let t):
            func mix(_ x: [Float], _ y: [Float]) -> [Float] { zip(x, y).map { (1 - t) * $0 + t * $1 } }
            return (mix(read(store.values, gamma[a]), read(store.values, gamma[b])), mix(read(store.values, beta[a]), read(store.values, beta[b])),
                    mix(read(store.state, runningMean[a]), read(store.state, runningMean[b])),
                    mix(read(store.state, runningVar[a]), read(store.state, runningVar[b])))
        }
    }

    /// Resets every bank's running statistics (mean 0, variance 1), before a calibration.
    func resetStatistics() {
        for k in 0..<banks {
            (store.state + runningMean[k]).update(repeating: 0, count: channels)
            (store.state + runningVar[k]).update(repeating: 1, count: channels)
        }
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        backward(gradOutput, branch: branch, mask: nil)
    }

    /// Backward through a ReLU applied after this layer (by a residual block, after its sum): the
    /// gradient flows where `mask > 0`, as if `gradOutput` had been masked first.
    func backward(_ gradOutput: Tensor, branch: Int, mask external: UnsafePointer<Float>?) -> Tensor {
        LayerProfile.time(context.profile, LayerProfile.normalizationRow, backward: true) { backwardPass(gradOutput, branch: branch, mask: external) }
    }

    private func backwardPass(_ gradOutput: Tensor, branch: Int, mask external: UnsafePointer<Float>?) -> Tensor {
        guard let inv = inverseStd[branch], let k = usedBank[branch] else { preconditionFailure("backward before a training forward") }
        let c = gradOutput.shape[0], m = gradOutput.count / max(1, c)
        let gx = gradInputs(branch)
        gx.reshape(gradOutput.shape)
        let xhat = normalized(branch)
        let g = store.values + gamma[k], gg = store.grads + gamma[k], gb = store.grads + beta[k]
        let parts = min(Threads.count, c)
        let maskAll: UnsafePointer<Float>? = fusedReLU ? UnsafePointer(outputs(branch).data) : external
        let dyAll = gradOutput.data, xhAll = xhat.data, dxAll = gx.data
        let isFrozen = frozen.contains(branch)
        parallelChunks(c, workers: parts) { _, ch in
            let dy = dyAll + ch * m, xh = xhAll + ch * m, dx = dxAll + ch * m
            // The ReLU's gradient mask, from the rectified output (this layer's own when fused).
            let (sumDy, sumDyX) = maskAll.map { Kernels.maskedSums(dy, xh, mask: $0 + ch * m, m) }
                ?? (Kernels.sum(dy, m), Kernels.dot(dy, xh, m))
            gg[ch] = Float(Double(gg[ch]) + sumDyX); gb[ch] = Float(Double(gb[ch]) + sumDy)
            if isFrozen {
                // An affine map: dx = γ·inv·dy (through the ReLU's mask when there is one).
                Kernels.k.scale_masked(dy, maskAll.map { $0 + ch * m }, g[ch] * inv[ch], m, dx)
                return
            }
            let scale = g[ch] * inv[ch] / Float(m)
            let a = Float(sumDy), bx = Float(sumDyX), fm = Float(m)
            Kernels.batchNormGradient(dy, xh, mask: maskAll.map { $0 + ch * m }, m, scale: scale, count: fm, sumDy: a, sumDyX: bx, into: dx)
        }
        return gx
    }
}
