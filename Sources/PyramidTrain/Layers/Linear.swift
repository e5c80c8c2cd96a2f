/// Fully connected: `(N, Cin)` to `(N, Cout)`, `y = x·Wᵀ + b`.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    let store: ParameterStore
    let weight: Int, bias: Int
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    private var inputs: [Int: Tensor] = [:]

    /// - Parameter std: weights N(0, std²) (0.01 in the MixSize reference), bias 0.
    init(_ store: ParameterStore, _ inFeatures: Int, _ outFeatures: Int, std: Float, initializer: inout Initializer, name: String) {
        self.store = store; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        weight = store.add(initializer.normal(count: inFeatures * outFeatures, std: std), kind: .weight, name: "\(name).weight")
        bias = store.add(Array(repeating: 0, count: outFeatures), kind: .bias, name: "\(name).bias")
    }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let n = x.shape[0]
        inputs[branch] = x
        let y = outputs(branch)
        y.reshape([n, outFeatures])
        for s in 0..<n { (y.data + s * outFeatures).update(from: store.values + bias, count: outFeatures) }
        gemm(transA: false, transB: true, m: n, n: outFeatures, k: inFeatures, a: x.data, lda: inFeatures,
             b: store.values + weight, ldb: inFeatures, beta: 1, c: y.data, ldc: outFeatures)
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        let x = inputs[branch]!
        let n = x.shape[0]
        gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: n, a: gradOutput.data, lda: outFeatures,
             b: x.data, ldb: inFeatures, beta: 1, c: store.grads + weight, ldc: inFeatures)
        let gb = store.grads + bias
        for s in 0..<n { for j in 0..<outFeatures { gb[j] += gradOutput.data[s * outFeatures + j] } }
        let g = gradInputs(branch)
        g.reshape(x.shape)
        gemm(transA: false, transB: false, m: n, n: inFeatures, k: outFeatures, a: gradOutput.data, lda: outFeatures,
             b: store.values + weight, ldb: inFeatures, beta: 0, c: g.data, ldc: inFeatures)
        return g
    }
}
