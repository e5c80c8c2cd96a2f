/// ReLU, `max(0, x)`, any layout.
public final class ReLU: Layer {
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    public init() {}

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let y = outputs(branch)
        y.reshape(x.shape)
        let xp = x.data, yp = y.data
        Kernels.elementwise(x.count) { i, count in
            var k = i
            while k + 8 <= i + count { Kernels.store(Kernels.relu(Kernels.load(xp + k)), yp + k); k += 8 }
            while k < i + count { yp[k] = max(0, xp[k]); k += 1 }
        }
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        let y = outputs(branch), g = gradInputs(branch)
        g.reshape(y.shape)
        Kernels.maskedGradient(gradOutput.data, mask: y.data, into: g.data, count: y.count)
        return g
    }
}

/// Global average pooling: `(C, N, H, W)` to `(N, C)` features.
public final class GlobalAveragePool: Layer {
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    private var shapes: [Int: [Int]] = [:]
    public init() {}

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        shapes[branch] = x.shape
        let y = outputs(branch)
        y.reshape([n, c])
        Kernels.averagePlanes(x.data, channels: c, batch: n, plane: h * w, into: y.data)
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        let shape = shapes[branch]!
        let (c, n, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let g = gradInputs(branch)
        g.reshape(shape)
        Kernels.spreadPlanes(gradOutput.data, channels: c, batch: n, plane: h * w, into: g.data)
        return g
    }
}

/// Max or average pooling, `k × k` windows with stride `k`, `(C, N, H, W)`.
public final class Pool2D: Layer {
    public enum Kind: Sendable { case max, average }
    public let kind: Kind, size: Int
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    private var argmax: [Int: [Int32]] = [:]
    private var shapes: [Int: [Int]] = [:]

    public init(_ kind: Kind, size: Int = 2) { self.kind = kind; self.size = size }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = h / size, wo = w / size
        shapes[branch] = x.shape
        let y = outputs(branch)
        y.reshape([c, n, ho, wo])
        var arg = [Int32](repeating: 0, count: kind == .max ? y.count : 0)
        arg.withUnsafeMutableBufferPointer { a in
            Kernels.pool(x.data, planes: c * n, height: h, width: w, size: size, max: kind == .max, into: y.data,
                         argmax: kind == .max ? a.baseAddress : nil)
        }
        argmax[branch] = arg
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        let shape = shapes[branch]!
        let (c, n, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let g = gradInputs(branch)
        g.reshape(shape)
        g.zero()
        let arg = argmax[branch]!
        arg.withUnsafeBufferPointer { a in
            Kernels.poolBackward(gradOutput.data, planes: c * n, height: h, width: w, size: size,
                                 argmax: kind == .max ? a.baseAddress : nil, into: g.data)
        }
        return g
    }
}

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
