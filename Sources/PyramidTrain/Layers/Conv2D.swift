/// 2-D convolution without bias (a BatchNorm follows it), as im2col plus `gemm`
/// (darknet's `forward_convolutional_layer`, caffe's `base_conv_layer.cpp`).
///
/// Input `(Cin, N, H, W)`, weight `(Cout, Cin·k·k)`, output `(Cout, N, Ho, Wo)`. The batch is cut
/// into chunks of samples whose columns are about ``Tuning/chunkBytes`` (at least one per thread), which
/// the ``Threads/count`` threads take in turn, each with single-threaded GEMMs
/// (`parallelChunks`). When there is one chunk per thread, the training forward keeps the column
/// matrices for the weight gradient. A 1×1 stride-1 convolution multiplies the input in place,
/// one part per thread. Backward: `gradW += gradY · colᵀ` (a buffer per chunk, summed in chunk
/// order, so the result does not depend on which thread took which chunk); for stride-1 "same"
/// convolutions `gradX` is the convolution of `gradY` with the flipped, transposed kernel (im2col +
/// GEMM again), otherwise `Wᵀ · gradY` scattered back by col2im.
///
/// 3×3 "same" convolutions on even planes of 8×8 and more (8+ channels) use Winograd
/// F(2×2, 3×3) instead (``Conv2D/tuning``, ``Conv2D/automaticAlgorithm(inChannels:outChannels:kernel:stride:height:width:)``), chunked
/// the same way, in both directions.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    let store: ParameterStore
    let weight: Int
    private var outputs = BranchTensors(), gradInputs = BranchTensors()
    private var inputs: [Int: Tensor] = [:]
    private var columns: [Tensor] = []
    private var gradColumns: [Tensor] = []
    private var partials: [Tensor] = []
    private let flippedWeights = Tensor(shape: [0])
    /// Column matrices kept from a training forward, per branch and part.
    private var keptColumns: [Int: [Tensor]] = [:]
    private var keptValid: [Int: Bool] = [:]
    /// The model's context (train or eval), set by ``Network``; nil: evaluation-like (no kept columns).
    weak var context: ModelContext?
    /// The algorithm and chunk sizes this layer computes with.
    public var tuning = Tuning()

    private func kept(_ branch: Int, _ part: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        scratch(&keptColumns[branch, default: []], part, count)
    }
    /// Multiply-adds per sample of the last forward.
    private(set) var lastMacs = 0
    /// Whether ``backward(_:branch:)`` computes the input gradient. The network's first layer does
    /// not need it (its input is the data), and at full resolution it is one of the costliest
    /// products of the step. When false, backward returns an undefined tensor of the input's shape.
    var computesInputGradient = true

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
    var winogradA: [Tensor] = [], winogradB: [Tensor] = [], winogradDU: [Tensor] = []
    let transformed = Tensor(shape: [0]), transformedFlipped = Tensor(shape: [0])

    func scratch(_ list: inout [Tensor], _ part: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        while list.count <= part { list.append(Tensor(shape: [0])) }
        list[part].reshape([max(1, count)])
        return list[part].data
    }

    public func forward(_ x: Tensor, branch: Int) -> Tensor {
        LayerProfile.time(context?.profile, row(x.shape[2], x.shape[3]), backward: false) { forwardPass(x, branch: branch) }
    }

    public func backward(_ gradOutput: Tensor, branch: Int) -> Tensor {
        LayerProfile.time(context?.profile, LayerProfile.convolutionRow(kernel: kernel, inChannels: inChannels, outputHeight: gradOutput.shape[2], outputWidth: gradOutput.shape[3]),
                          backward: true) { backwardPass(gradOutput, branch: branch) }
    }

    private func row(_ h: Int, _ w: Int) -> String {
        LayerProfile.convolutionRow(kernel: kernel, inChannels: inChannels, outputHeight: Im2col.outputSize(h, kernel: kernel, stride: stride, padding: padding),
                                    outputWidth: Im2col.outputSize(w, kernel: kernel, stride: stride, padding: padding))
    }

    private func forwardPass(_ x: Tensor, branch: Int) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(c == inChannels, "conv expects \(inChannels) channels, got \(c)")
        let ho = Im2col.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let wo = Im2col.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        inputs[branch] = x
        lastMacs = outChannels * inChannels * kernel * kernel * ho * wo
        let y = outputs(branch)
        y.reshape([outChannels, n, ho, wo])
        let parts = min(Threads.count, n), k = inChannels * kernel * kernel
        let xp = x.data, yp = y.data, wptr = store.values + weight
        if usesWinograd(height: h, width: w) {
            transformed.reshape([16 * outChannels * inChannels])
            Winograd.transformWeights(wptr, cout: outChannels, cin: inChannels, into: transformed.data)
            winogradForward(xp, channels: inChannels, out: outChannels, weights: transformed.data, batch: n, height: h, width: w, into: yp)
            keptValid[branch] = false
            return y
        }
        if isPointwise {
            parallelFor(parts) { p in
                let r = partRange(p, of: parts, count: n)
                gemm(transA: false, transB: false, m: outChannels, n: r.count * h * w, k: k, a: wptr, lda: k,
                     b: xp + r.lowerBound * h * w, ldb: n * h * w, beta: 0, c: yp + r.lowerBound * ho * wo, ldc: n * ho * wo)
            }
            return y
        }
        // Training keeps the column matrices for the backward pass (one im2col per layer and step
        // instead of two) when there is one chunk per thread; evaluation uses per-thread scratch.
        let chunks = chunkCount(batch: n, plane: ho * wo)
        let keep = (context?.training ?? false) && chunks == parts
        let cols = columnBuffers(branch: branch, kept: keep, chunks: chunks, batch: n, plane: ho * wo)
        keptValid[branch] = keep
        parallelChunks(chunks, workers: parts) { worker, c in
            let r = partRange(c, of: chunks, count: n), width = r.count * ho * wo
            let col = cols[keep ? c : worker]
            Im2col.im2col(xp, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                          kernel: kernel, stride: stride, padding: padding, col: col)
            gemm(transA: false, transB: false, m: outChannels, n: width, k: k, a: wptr, lda: k,
                 b: col, ldb: width, beta: 0, c: yp + r.lowerBound * ho * wo, ldc: n * ho * wo)
        }
        return y
    }

    /// The column matrices of an im2col pass: one per chunk, kept for the branch's backward pass
    /// (`kept`), or one scratch per thread, as large as the widest chunk.
    private func columnBuffers(branch: Int, kept keep: Bool, chunks: Int, batch n: Int, plane: Int) -> [UnsafeMutablePointer<Float>] {
        let k = inChannels * kernel * kernel
        return keep ? (0..<chunks).map { kept(branch, $0, k * partRange($0, of: chunks, count: n).count * plane) }
                    : (0..<min(Threads.count, n)).map { scratch(&columns, $0, k * ((n - 1) / chunks + 1) * plane) }
    }

    /// Chunks of an im2col pass over a batch of `n`: about ``chunkBytes`` of columns each.
    private func chunkCount(batch n: Int, plane: Int) -> Int {
        Conv2D.chunks(batch: n, samplesPerChunk: chunkSamples(plane: plane))
    }

    /// `n` samples in chunks of at most about `samplesPerChunk`, their number a multiple of the
    /// threads (so that on an idle machine every thread gets the same share) unless there are
    /// fewer samples.
    static func chunks(batch n: Int, samplesPerChunk: Int) -> Int {
        let parts = min(Threads.count, n), needed = (n - 1) / samplesPerChunk + 1
        return min(n, (needed + parts - 1) / parts * parts)
    }

    /// Samples per im2col chunk (at least one), sized by the larger of the forward columns and
    /// backward's gradient columns; the whole part when chunking is off.
    private func chunkSamples(plane: Int) -> Int {
        let rows = max(inChannels, outChannels) * kernel * kernel
        return tuning.chunkBytes <= 0 ? Int.max : max(1, tuning.chunkBytes / (rows * plane * 4))
    }


    /// Backward of one branch: the weight gradient accumulated into the store, the input
    /// gradient (unless ``computesInputGradient`` is off) returned. One algorithm per shape:
    /// Winograd for the 3×3 "same" convolutions it is chosen for, a direct product for 1×1
    /// stride-1, im2col otherwise (with the "same" convolutions' input gradient as a convolution of
    /// gradY with the flipped, transposed kernel, and col2im for the rest).
    private func backwardPass(_ gradOutput: Tensor, branch: Int) -> Tensor {
        guard let x = inputs[branch] else { preconditionFailure("backward before forward") }
        let (h, w) = (x.shape[2], x.shape[3])
        let gx = gradInputs(branch)
        gx.reshape(x.shape)
        let transposed = !isPointwise && stride == 1 && gradOutput.shape[2] == h && gradOutput.shape[3] == w
        if !isPointwise && !transposed && computesInputGradient { gx.zero() }  // col2im accumulates
        if transposed && computesInputGradient { flipWeights() }
        if usesWinograd(height: h, width: w) {
            backwardWinograd(x, gradOutput, into: gx)
        } else if isPointwise {
            backwardPointwise(x, gradOutput, into: gx)
        } else {
            backwardIm2col(x, gradOutput, into: gx, branch: branch, transposed: transposed)
        }
        return gx
    }

    /// `flippedWeights` = W'[cin][cout][k−1−ky][k−1−kx] = W[cout][cin][ky][kx]: the kernel of the
    /// input gradient of a stride-1 "same" convolution.
    private func flipWeights() {
        let kk = kernel * kernel, wptr = store.values + weight
        flippedWeights.reshape([inChannels * outChannels * kk])
        let t = flippedWeights.data
        for o in 0..<outChannels { for i in 0..<inChannels { for q in 0..<kk {
            t[(i * outChannels + o) * kk + (kk - 1 - q)] = wptr[(o * inChannels + i) * kk + q]
        } } }
    }

    /// Winograd backward, per chunk: gradW's dU[ξ] += dM[ξ] · V[ξ]ᵀ (summed over chunks in chunk
    /// order, then Gᵀ dU G), and gradX as the Winograd forward of gradY with the flipped kernel.
    private func backwardWinograd(_ x: Tensor, _ gradOutput: Tensor, into gx: Tensor) {
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (th, tw) = Winograd.tiles(h, w)
        let (chunks, bufs) = winogradBuffers(batch: n, height: h, width: w)
        let du = (0..<chunks).map { scratch(&winogradDU, $0, 16 * outChannels * inChannels) }
        if computesInputGradient {
            transformedFlipped.reshape([16 * inChannels * outChannels])
            Winograd.transformWeights(flippedWeights.data, cout: inChannels, cin: outChannels, into: transformedFlipped.data)
        }
        let xp = x.data, gy = gradOutput.data, gxp = gx.data, uFlipped = transformedFlipped.data
        parallelChunks(chunks, workers: bufs.count) { worker, c in
            let r = partRange(c, of: chunks, count: n), t = r.count * th * tw
            let (v, dm) = bufs[worker]
            Winograd.transformInput(xp, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound, into: v)
            Winograd.transformGradOutput(gy, channels: outChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound, into: dm)
            for xi in 0..<16 {
                gemm(transA: false, transB: true, m: outChannels, n: inChannels, k: t, a: dm + xi * outChannels * t, lda: t,
                     b: v + xi * inChannels * t, ldb: t, beta: 0, c: du[c] + xi * outChannels * inChannels, ldc: inChannels)
            }
            if computesInputGradient {
                Conv2D.winogradConvolve(gy, channels: outChannels, out: inChannels, weights: uFlipped, batch: n, height: h, width: w,
                                        samples: r, v: v, m: dm, into: gxp)
            }
        }
        // The chunks' sums in chunk order, whichever thread computed them.
        let total = 16 * outChannels * inChannels
        for c in 1..<chunks { Kernels.add(du[0], du[c], into: du[0], count: total) }
        Winograd.accumulateWeightGradient(du[0], cout: outChannels, cin: inChannels, into: store.grads + weight)
    }

    /// 1×1 stride-1 backward: gradW = gradY · xᵀ and gradX = Wᵀ · gradY, one part of the batch per
    /// thread, the parts' weight gradients summed in part order.
    private func backwardPointwise(_ x: Tensor, _ gradOutput: Tensor, into gx: Tensor) {
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (gradOutput.shape[2], gradOutput.shape[3])
        let k = inChannels * kernel * kernel, wcount = outChannels * k
        let parts = min(Threads.count, n)
        let wptr = store.values + weight, gw = store.grads + weight
        let xp = x.data, gy = gradOutput.data, gxp = gx.data
        let partial = (0..<parts).map { $0 == 0 ? gw : scratch(&partials, $0, wcount) }
        parallelFor(parts) { p in
            let r = partRange(p, of: parts, count: n)
            let xPart = xp + r.lowerBound * h * w, gyPart = gy + r.lowerBound * ho * wo
            gemm(transA: false, transB: true, m: outChannels, n: k, k: r.count * ho * wo, a: gyPart, lda: n * ho * wo,
                 b: xPart, ldb: n * h * w, beta: p == 0 ? 1 : 0, c: partial[p], ldc: k)
            if computesInputGradient {
                gemm(transA: true, transB: false, m: k, n: r.count * h * w, k: outChannels, a: wptr, lda: k,
                     b: gyPart, ldb: n * ho * wo, beta: 0, c: gxp + r.lowerBound * h * w, ldc: n * h * w)
            }
        }
        for p in 1..<max(1, parts) { Kernels.add(gw, partial[p], into: gw, count: wcount) }
    }

    /// im2col backward over the same chunks as the forward pass (whose columns are reused when it
    /// kept them); each chunk's weight gradient has its own buffer, summed in chunk order.
    private func backwardIm2col(_ x: Tensor, _ gradOutput: Tensor, into gx: Tensor, branch: Int, transposed: Bool) {
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (gradOutput.shape[2], gradOutput.shape[3])
        let kk = kernel * kernel, k = inChannels * kk, kt = outChannels * kk, wcount = outChannels * k
        let parts = min(Threads.count, n)
        let wptr = store.values + weight, gw = store.grads + weight, flipped = flippedWeights.data
        let xp = x.data, gy = gradOutput.data, gxp = gx.data
        let chunks = chunkCount(batch: n, plane: ho * wo)
        let haveColumns = keptValid[branch] ?? false
        precondition(!haveColumns || chunks == parts, "kept columns for another chunking")
        let widest = ((n - 1) / chunks + 1) * ho * wo
        let cols = columnBuffers(branch: branch, kept: haveColumns, chunks: chunks, batch: n, plane: ho * wo)
        let gcols = transposed && computesInputGradient ? (0..<parts).map { scratch(&gradColumns, $0, kt * widest) } : []
        let partial = (0..<chunks).map { scratch(&partials, $0, wcount) }
        parallelChunks(chunks, workers: parts) { worker, c in
            let r = partRange(c, of: chunks, count: n), width = r.count * ho * wo
            let gyPart = gy + r.lowerBound * ho * wo
            let col = cols[haveColumns ? c : worker]
            if !haveColumns {
                Im2col.im2col(xp, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                              kernel: kernel, stride: stride, padding: padding, col: col)
            }
            gemm(transA: false, transB: true, m: outChannels, n: k, k: width, a: gyPart, lda: n * ho * wo,
                 b: col, ldb: width, beta: 0, c: partial[c], ldc: k)
            guard computesInputGradient else { return }
            if transposed {
                Im2col.im2col(gy, channels: outChannels, batch: n, height: ho, width: wo, n0: r.lowerBound, n1: r.upperBound,
                              kernel: kernel, stride: 1, padding: kernel - 1 - padding, col: gcols[worker])
                gemm(transA: false, transB: false, m: inChannels, n: width, k: kt, a: flipped, lda: kt,
                     b: gcols[worker], ldb: width, beta: 0, c: gxp + r.lowerBound * h * w, ldc: n * h * w)
            } else {
                // The columns are not needed any more: reuse them for Wᵀ·gradY, then scatter
                // (chunks hold different samples, so their scatters never overlap).
                gemm(transA: true, transB: false, m: k, n: width, k: outChannels, a: wptr, lda: k,
                     b: gyPart, ldb: n * ho * wo, beta: 0, c: col, ldc: width)
                Im2col.col2im(col, channels: inChannels, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound,
                              kernel: kernel, stride: stride, padding: padding, gradX: gxp)
            }
        }
        keptValid[branch] = false
        for c in 0..<chunks { Kernels.add(gw, partial[c], into: gw, count: wcount) }
    }
}
