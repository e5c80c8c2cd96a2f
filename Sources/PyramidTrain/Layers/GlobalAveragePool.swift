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
