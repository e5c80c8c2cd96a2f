/// 2-D convolution without bias (a BatchNorm follows it), as im2col plus one `gemm` per batch
/// part (darknet's `forward_convolutional_layer`, caffe's `base_conv_layer.cpp`).
///
/// Input `(Cin, N, H, W)`, weight `(Cout, Cin·k·k)`, output `(Cout, N, Ho, Wo)`. The batch is cut
/// into ``Threads/count`` parts; each runs its own single-threaded GEMMs. A 1×1 stride-1
/// convolution multiplies the input in place, without im2col. The backward pass recomputes
/// im2col instead of keeping the column matrices of every layer.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    let store: ParameterStore
    let weight: Int
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    private var inputs: [Int: Tensor] = [:]
    private var columns: [Tensor] = []
    private var partials: [Tensor] = []
    private var flippedWeights: [Tensor] = []
    private var gradColumns: [Tensor] = []
    private func scratch2(_ part: Int, _ count: Int) -> UnsafeMutablePointer<Float> { gradColumns[part].data }

    /// - Parameter init: He initialization N(0, √(2/(k²·Cout))) as the reference ResNets use.
    init(_ store: ParameterStore, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
         initializer: inout Initializer, name: String) {
        self.store = store
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        let std = (2 / Float(kernel * kernel * outChannels)).squareRoot()
        weight = store.add(initializer.normal(count: outChannels * inChannels * kernel * kernel, std: std), kind: .weight, name: name)
    }

    var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// Multiply-adds per sample of the last forward.
    private(set) var lastMacs = 0

    private func scratch(_ list: inout [Tensor], _ part: Int, _ count: Int) -> Tensor {
        while list.count <= part { list.append(Tensor(shape: [0])) }
        list[part].reshape([count])
        return list[part]
    }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(c == inChannels, "conv expects \(inChannels) channels, got \(c)")
        let ho = Im2col.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let wo = Im2col.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        inputs[branch] = x
        lastMacs = outChannels * inChannels * kernel * kernel * ho * wo
        let y = outputs(branch)
        y.reshape([outChannels, n, ho, wo])
        let parts = min(Threads.count, n), k = inChannels * kernel * kernel
        for p in 0..<parts where !isPointwise { _ = scratch(&columns, p, k * partRange(p, of: parts, count: n).count * ho * wo) }
        let wptr = store.values + weight
        parallelFor(parts) { p in
            let r = partRange(p, of: parts, count: n)
            let cols = r.count * ho * wo
            if isPointwise {
                gemm(transA: false, transB: false, m: outChannels, n: cols, k: k, a: wptr, lda: k,
                     b: x.data + r.lowerBound * h * w, ldb: n * h * w, beta: 0, c: y.data + r.lowerBound * ho * wo, ldc: n * ho * wo)
            } else {
                let col = columns[p].data
                Im2col.im2col(x.data, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                              kernel: kernel, stride: stride, padding: padding, col: col)
                gemm(transA: false, transB: false, m: outChannels, n: cols, k: k, a: wptr, lda: k,
                     b: col, ldb: cols, beta: 0, c: y.data + r.lowerBound * ho * wo, ldc: n * ho * wo)
            }
        }
        return y
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        guard let x = inputs[branch] else { preconditionFailure("backward before forward") }
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let ho = gradOutput.shape[2], wo = gradOutput.shape[3]
        let gx = gradInputs(branch)
        gx.reshape(x.shape)
        let transposed = !isPointwise && stride == 1 && ho == h && wo == w
        if !isPointwise && !transposed { gx.zero() }
        // The flipped, transposed kernel: W'[cin][cout][k−1−ky][k−1−kx] = W[cout][cin][ky][kx].
        var flipped: UnsafeMutablePointer<Float>? = nil
        if transposed {
            let t = scratch(&flippedWeights, 0, outChannels * inChannels * kernel * kernel)
            let src = store.values + weight, kk = kernel * kernel
            for o in 0..<outChannels { for i in 0..<inChannels { for q in 0..<kk {
                t.data[(i * outChannels + o) * kk + (kk - 1 - q)] = src[(o * inChannels + i) * kk + q]
            } } }
            flipped = t.data
            for p in 0..<min(Threads.count, n) { _ = scratch(&gradColumns, p, outChannels * kk * partRange(p, of: min(Threads.count, n), count: n).count * ho * wo) }
        }
        let parts = min(Threads.count, n), k = inChannels * kernel * kernel
        let wcount = outChannels * k
        for p in 0..<parts {
            if !isPointwise { _ = scratch(&columns, p, k * partRange(p, of: parts, count: n).count * ho * wo) }
            if p > 0 { _ = scratch(&partials, p, wcount) }
        }
        let wptr = store.values + weight, gw = store.grads + weight
        let gy = gradOutput.data
        parallelFor(parts) { p in
            let r = partRange(p, of: parts, count: n)
            let cols = r.count * ho * wo
            let gyPart = gy + r.lowerBound * ho * wo
            let target = p == 0 ? gw : partials[p].data
            if isPointwise {
                let xPart = x.data + r.lowerBound * h * w
                gemm(transA: false, transB: true, m: outChannels, n: k, k: cols, a: gyPart, lda: n * ho * wo,
                     b: xPart, ldb: n * h * w, beta: p == 0 ? 1 : 0, c: target, ldc: k)
                gemm(transA: true, transB: false, m: k, n: cols, k: outChannels, a: wptr, lda: k,
                     b: gyPart, ldb: n * ho * wo, beta: 0, c: gx.data + r.lowerBound * h * w, ldc: n * h * w)
            } else {
                let col = columns[p].data
                Im2col.im2col(x.data, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                              kernel: kernel, stride: stride, padding: padding, col: col)
                gemm(transA: false, transB: true, m: outChannels, n: k, k: cols, a: gyPart, lda: n * ho * wo,
                     b: col, ldb: cols, beta: p == 0 ? 1 : 0, c: target, ldc: k)
                if stride == 1 && ho == h && wo == w {
                    // gradX = conv(gradY, flipped Wᵀ, padding k−1−p): im2col of gradY and one GEMM
                    // writing gradX directly, instead of a GEMM into columns and a col2im scatter-add.
                    let kt = outChannels * kernel * kernel
                    let colY = scratch2(p, kt * cols)
                    Im2col.im2col(gy, channels: outChannels, batch: n, height: ho, width: wo, n0: r.lowerBound, n1: r.upperBound,
                                  kernel: kernel, stride: 1, padding: kernel - 1 - padding, col: colY)
                    gemm(transA: false, transB: false, m: inChannels, n: cols, k: kt, a: flipped!, lda: kt,
                         b: colY, ldb: cols, beta: 0, c: gx.data + r.lowerBound * h * w, ldc: n * h * w)
                } else {
                    gemm(transA: true, transB: false, m: k, n: cols, k: outChannels, a: wptr, lda: k,
                         b: gyPart, ldb: n * ho * wo, beta: 0, c: col, ldc: cols)
                    Im2col.col2im(col, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                                  kernel: kernel, stride: stride, padding: padding, gradX: gx.data)
                }
            }
        }
        for p in 1..<max(1, parts) {
            let src = partials[p].data
            for i in 0..<wcount { gw[i] += src[i] }
        }
        return gx
    }
}
