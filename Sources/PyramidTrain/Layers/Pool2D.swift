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
