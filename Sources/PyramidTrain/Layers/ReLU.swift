/// ReLU, `max(0, x)`, any layout.
public final class ReLU: Layer {
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    public init() {}

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let y = outputs(branch)
        y.reshape(x.shape)
        let xp = x.data, yp = y.data
        Kernels.elementwise(x.count) { i, count in Kernels.k.relu(xp + i, yp + i, count) }
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        let y = outputs(branch), g = gradInputs(branch)
        g.reshape(y.shape)
        Kernels.maskedGradient(gradOutput.data, mask: y.data, into: g.data, count: y.count)
        return g
    }
}
