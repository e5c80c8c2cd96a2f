import PyramidLoader
import Testing
@testable import PyramidTrain

extension TrainerSuites {
@Suite struct LayerTests {
    init() { Threads.configure(2) }

    /// Direct convolution, the naive twin of Conv2D.forward, on `(C, N, H, W)`.
    static func naiveConv(_ x: Tensor, weight: [Float], cout: Int, k: Int, stride: Int, pad: Int) -> [Float] {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1
        var y = [Float](repeating: 0, count: cout * n * ho * wo)
        for o in 0..<cout { for s in 0..<n { for oy in 0..<ho { for ox in 0..<wo {
            var acc: Double = 0
            for i in 0..<c { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                    acc += Double(weight[((o * c + i) * k + ky) * k + kx]) * Double(x.data[((i * n + s) * h + iy) * w + ix])
                }
            } } }
            y[((o * n + s) * ho + oy) * wo + ox] = Float(acc)
        } } } }
        return y
    }

    @Test(arguments: [(3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0), (3, 1, 0), (5, 1, 2)])
    func convolutionMatchesItsNaiveTwinAndItsGradients(kernel: Int, stride: Int, padding: Int) {
        let store = ParameterStore()
        var initializer = Initializer(seed: 3)
        let conv = Conv2D(store, 3, 4, kernel: kernel, stride: stride, padding: padding, initializer: &initializer, name: "c")
        store.finalize()
        let x = Tensor(shape: [3, 5, 7, 6], values: GradientCheck.random(3 * 5 * 7 * 6, seed: 9))
        let naive = Self.naiveConv(x, weight: store.parameterArray, cout: 4, k: kernel, stride: stride, pad: padding)
        // Whole batch parts, and chunks of one sample (so the chunk loop and the per-chunk
        // rebuilding of the columns in backward run).
        for chunkBytes in [0, 1] {
            conv.tuning.chunkBytes = chunkBytes
            let fast = conv.forward(x, branch: 0).array
            #expect(fast.count == naive.count)
            #expect(zip(fast, naive).allSatisfy { abs($0 - $1) < 1e-4 }, "chunk \(chunkBytes)")
            #expect(GradientCheck(epsilon: 1e-3).check(conv, store: store, input: [3, 5, 7, 6], seed: 11) < 1e-2, "chunk \(chunkBytes)")
        }
    }

    /// "Same" convolutions copy whole runs of planes under a mask: planes of 1, 6, 16 and 196
    /// pixels, batches that do not fill a run, and the first and last planes of the tensor.
    @Test(arguments: [(2, 9, 4, 4, 3), (3, 3, 1, 1, 3), (2, 5, 2, 3, 3), (1, 3, 14, 14, 3), (2, 7, 4, 4, 5), (2, 3, 5, 5, 5)])
    func sameConvolutionMatchesItsNaiveTwinForEveryPlaneSize(c: Int, n: Int, h: Int, w: Int, kernel: Int) {
        for threads in [1, 2] { Threads.with(threads) {
            let store = ParameterStore()
            var initializer = Initializer(seed: 5)
            let conv = Conv2D(store, c, 3, kernel: kernel, stride: 1, padding: kernel / 2, initializer: &initializer, name: "c")
            store.finalize()
            let x = Tensor(shape: [c, n, h, w], values: GradientCheck.random(c * n * h * w, seed: 4))
            let fast = conv.forward(x, branch: 0).array
            let naive = Self.naiveConv(x, weight: store.parameterArray, cout: 3, k: kernel, stride: 1, pad: kernel / 2)
            #expect(fast.count == naive.count)
            let worst = zip(fast, naive).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-4, "\(c)x\(n)x\(h)x\(w) k\(kernel), \(threads) threads: worst difference \(worst)")
        } }
    }

    /// Winograd F(2x2,3x3) against the im2col path (and so the naive twin), forward and backward,
    /// on even and odd sizes, in one chunk and in chunks of one sample.
    @Test(arguments: [(8, 8), (7, 5), (1, 3), (28, 28), (17, 18), (18, 17), (32, 32), (14, 14), (4, 6), (2, 2), (5, 6)])
    func winogradMatchesIm2col(h: Int, w: Int) {
        func run(_ winograd: Bool, chunkBytes: Int = Conv2D.Tuning().winogradChunkBytes) -> ([Float], [Float], [Float]) {
            let store = ParameterStore()
            var initializer = Initializer(seed: 5)
            let conv = Conv2D(store, 3, 5, kernel: 3, padding: 1, initializer: &initializer, name: "c")
            conv.tuning.algorithm = winograd ? .winograd : .im2col
            conv.tuning.winogradChunkBytes = chunkBytes
            store.finalize()
            let x = Tensor(shape: [3, 4, h, w], values: GradientCheck.random(12 * h * w, seed: 6))
            let y = conv.forward(x, branch: 0).array
            let g = conv.backward(Tensor(shape: [5, 4, h, w], values: GradientCheck.random(20 * h * w, seed: 7)), branch: 0).array
            return (y, g, store.gradArray)
        }
        let (y0, g0, w0) = run(false)
        // The batch in one chunk and in chunks of one sample.
        for chunkBytes in [Conv2D.Tuning().winogradChunkBytes, 1] {
            let (y1, g1, w1) = run(true, chunkBytes: chunkBytes)
            for (name, a, b) in [("output", y1, y0), ("gradInput", g1, g0), ("gradWeight", w1, w0)] {
                let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst < 1e-4, "\(name) \(h)x\(w), chunk \(chunkBytes) bytes: \(worst)")
            }
        }
    }

    /// With one-sample chunks a batch of 24 has enough chunks for the threads to claim them as
    /// they go: whichever thread computes a chunk, forward and both gradients come out the same
    /// bits on every run, and equal (to rounding) to whole batch parts, for im2col and Winograd.
    @Test(arguments: [Conv2D.Algorithm.im2col, .winograd])
    func claimedChunksAreDeterministic(algorithm: Conv2D.Algorithm) {
        let x = Tensor(shape: [8, 24, 6, 6], values: GradientCheck.random(8 * 24 * 36, seed: 12))
        let g = Tensor(shape: [8, 24, 6, 6], values: GradientCheck.random(8 * 24 * 36, seed: 13))
        func run(chunkBytes: Int) -> [Float] {
            let store = ParameterStore()
            var initializer = Initializer(seed: 14)
            let conv = Conv2D(store, 8, 8, kernel: 3, padding: 1, initializer: &initializer, name: "c")
            conv.tuning = Conv2D.Tuning(algorithm: algorithm, chunkBytes: chunkBytes, winogradChunkBytes: chunkBytes)
            store.finalize()
            let y = conv.forward(x, branch: 0).array
            return y + conv.backward(g, branch: 0).array + store.gradArray
        }
        #expect(Conv2D.chunks(batch: 24, samplesPerChunk: 1) == 24)
        let first = run(chunkBytes: 1)
        for _ in 0..<8 { #expect(run(chunkBytes: 1) == first) }
        let whole = run(chunkBytes: 1 << 30)
        let worst = zip(first, whole).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst < 1e-4, "\(algorithm): \(worst)")
    }

    /// Strided convolutions on inputs smaller than the kernel reach (1 or 2 pixels wide).
    @Test(arguments: [(1, 1), (2, 1), (1, 3), (2, 2)])
    func stridedConvolutionOnTinyInputs(h: Int, w: Int) {
        let store = ParameterStore()
        var initializer = Initializer(seed: 8)
        let conv = Conv2D(store, 2, 3, kernel: 3, stride: 2, padding: 1, initializer: &initializer, name: "c")
        store.finalize()
        let x = Tensor(shape: [2, 3, h, w], values: GradientCheck.random(6 * h * w, seed: 9))
        let fast = conv.forward(x, branch: 0).array
        let naive = Self.naiveConv(x, weight: store.parameterArray, cout: 3, k: 3, stride: 2, pad: 1)
        #expect(zip(fast, naive).allSatisfy { abs($0 - $1) < 1e-4 })
        #expect(GradientCheck(epsilon: 1e-3).check(conv, store: store, input: [2, 3, h, w], seed: 10) < 1e-2)
    }

    /// Every product goes through `gemm`; its naive twin checks all four transpose combinations
    /// with leading dimensions wider than the matrices.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmMatchesItsNaiveTwin(transA: Bool, transB: Bool) {
        let m = 5, n = 7, k = 3, lda = 9, ldb = 11, ldc = 8
        let a = GradientCheck.random(max(m, k) * lda, seed: 1), b = GradientCheck.random(max(k, n) * ldb, seed: 2)
        let c0 = GradientCheck.random(m * ldc, seed: 3)
        var fast = c0, naive = c0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            fast.withUnsafeMutableBufferPointer { pc in
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                     b: pb.baseAddress!, ldb: ldb, beta: 2, c: pc.baseAddress!, ldc: ldc)
            }
            naive.withUnsafeMutableBufferPointer { pc in
                gemmNaive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                          b: pb.baseAddress!, ldb: ldb, beta: 2, c: pc.baseAddress!, ldc: ldc)
            }
        } }
        #expect(zip(fast, naive).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(fast != c0)
    }

    /// The products `gemm` sends to libxsmm (alpha 1, beta 0 or 1, B not transposed) and those it
    /// sends to OpenBLAS, on shapes with a partial last tile and leading dimensions wider than the
    /// matrices, against the naive twin; the cases with neither operand transposed must really run
    /// on libxsmm, not fall back to OpenBLAS.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func libxsmmProductsMatchTheNaiveTwin(transA: Bool, transB: Bool) {
        for (m, n, k, beta) in [(16, 150, 144, Float(0)), (32, 64, 288, 1), (7, 13, 5, 0), (64, 200, 576, 1), (150, 16, 144, 1), (70, 70, 9, 0)] as [(Int, Int, Int, Float)] {
            let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 2
            let a = GradientCheck.random((transA ? k : m) * lda, seed: 4), b = GradientCheck.random((transB ? n : k) * ldb, seed: 5)
            let c0 = GradientCheck.random(m * ldc, seed: 6)
            var fast = c0, naive = c0
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                fast.withUnsafeMutableBufferPointer { pc in
                    gemm(transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                         b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
                naive.withUnsafeMutableBufferPointer { pc in
                    gemmNaive(transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                              b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            } }
            let worst = zip(fast, naive).map { abs($0 - $1) / max(1, abs($1)) }.max()!
            // Float32 sums of k products against a Double sum: rounding grows with k.
            #expect(worst < 1e-6 + Float(k) * 1e-7, "\(m)x\(n)x\(k) beta \(beta): \(worst)")
            // The padding between rows is never written.
            for i in 0..<m { for j in n..<ldc { #expect(fast[i * ldc + j] == c0[i * ldc + j]) } }
            if !transA && !transB && GemmBackend.current == .libxsmm {
                var scratch = c0
                let used = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in scratch.withUnsafeMutableBufferPointer { pc in
                    GemmBackend.xsmm(transA: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                                     b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc)
                } } }
                #expect(used, "libxsmm had no kernel for \(m)x\(n)x\(k)")
            }
        }
    }

    @Test func convolutionIsTheSameWithOneOrTwoParts() {
        func run(_ threads: Int) -> ([Float], [Float], [Float]) { Threads.with(threads) {
            let store = ParameterStore()
            var initializer = Initializer(seed: 1)
            let conv = Conv2D(store, 4, 8, kernel: 3, padding: 1, initializer: &initializer, name: "c")
            store.finalize()
            let x = Tensor(shape: [4, 6, 8, 8], values: GradientCheck.random(4 * 6 * 64, seed: 2))
            let y = conv.forward(x, branch: 0).array
            let g = conv.backward(Tensor(shape: [8, 6, 8, 8], values: GradientCheck.random(8 * 6 * 64, seed: 3)), branch: 0).array
            return (y, g, store.gradArray)
        } }
        let (y1, g1, w1) = run(1), (y2, g2, w2) = run(2)
        // OpenBLAS may block a narrower product differently: equal up to rounding, not bit for bit.
        for (a, b) in [(y1, y2), (g1, g2), (w1, w2)] {
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($0)) })
        }
    }

    @Test func batchNormGradientsWithBanks() {
        let store = ParameterStore(), context = ModelContext()
        let bn = BatchNorm2D(store, context, channels: 3, banks: 2, name: "bn")
        store.finalize()
        // Non-trivial γ, β in bank 1.
        for i in 0..<store.count { store.values[i] = 0.5 + Float(i % 5) * 0.3 }
        context.bank = .bank(1)
        #expect(GradientCheck(epsilon: 1e-3).check(bn, store: store, input: [3, 4, 3, 3], seed: 5) < 1e-2)
        // With the ReLU fused in.
        bn.fusedReLU = true
        #expect(GradientCheck(epsilon: 1e-3).check(bn, store: store, input: [3, 4, 3, 3], seed: 6) < 1e-2)
        bn.fusedReLU = false
        // Bank 0 got no gradient.
        store.zeroGrads()
        _ = bn.forward(Tensor(shape: [3, 4, 3, 3], values: GradientCheck.random(108, seed: 1)), branch: 0)
        _ = bn.backward(Tensor(shape: [3, 4, 3, 3], values: GradientCheck.random(108, seed: 2)), branch: 0)
        let g = store.gradArray
        #expect(g[0..<6].allSatisfy { $0 == 0 } && g[6..<12].contains { $0 != 0 })
    }

    @Test func frozenBatchNormGradientsAndStatistics() {
        // Frozen: running statistics normalize, are left unchanged, and a sample's output does not
        // depend on the rest of its batch.
        let store = ParameterStore(), context = ModelContext()
        let bn = BatchNorm2D(store, context, channels: 3, banks: 1, name: "bn")
        store.finalize()
        for i in 0..<store.count { store.values[i] = 0.5 + Float(i % 5) * 0.3 }
        for i in 0..<store.stateCount { store.state[i] = i < 3 ? Float(i) * 0.2 - 0.1 : 0.5 + Float(i) * 0.1 }
        let before = store.stateArray
        context.frozenBatchNorm = true
        defer { context.frozenBatchNorm = false }
        #expect(GradientCheck(epsilon: 1e-3).check(bn, store: store, input: [3, 4, 3, 3], seed: 7) < 1e-2)
        bn.fusedReLU = true
        #expect(GradientCheck(epsilon: 1e-3).check(bn, store: store, input: [3, 4, 3, 3], seed: 8) < 1e-2)
        bn.fusedReLU = false
        #expect(store.stateArray == before)
        // Against its definition: γ·(x − mean)/√(var + ε) + β per channel.
        let x = Tensor(shape: [3, 2, 2, 2], values: GradientCheck.random(24, seed: 3))
        let y = bn.forward(x, branch: 0).array
        for ch in 0..<3 {
            let g = store.values[ch], b = store.values[3 + ch], mean = store.state[ch], v = store.state[3 + ch]
            for i in 0..<8 {
                let expected = g * (x.data[ch * 8 + i] - mean) / (v + 1e-5).squareRoot() + b
                #expect(abs(y[ch * 8 + i] - expected) <= 1e-5 * max(1, abs(expected)))
            }
        }
    }

    @Test func elementwiseLayersAndClassifier() {
        // A small step, so that no input crosses a kink of ReLU or max.
        let fine = GradientCheck(epsilon: 1e-3)
        #expect(fine.check(ReLU(), store: nil, input: [2, 3, 4, 4], seed: 1) < 1e-2)
        #expect(fine.check(GlobalAveragePool(), store: nil, input: [3, 2, 5, 5], seed: 2) < 1e-2)
        #expect(fine.check(Pool2D(.average), store: nil, input: [2, 2, 6, 6], seed: 3) < 1e-2)
        #expect(fine.check(Pool2D(.max), store: nil, input: [2, 2, 6, 6], seed: 4) < 1e-2)
        let store = ParameterStore()
        var initializer = Initializer(seed: 2)
        let fc = Linear(store, 6, 4, std: 0.5, initializer: &initializer, name: "fc")
        store.finalize()
        #expect(GradientCheck(epsilon: 1e-3).check(fc, store: store, input: [5, 6], seed: 5) < 1e-2)
    }

    @Test(arguments: [BasicBlock.Shortcut.projection, .pad])
    func basicBlockGradients(shortcut: BasicBlock.Shortcut) {
        let store = ParameterStore(), context = ModelContext()
        var initializer = Initializer(seed: 4)
        let block = BasicBlock(store, context, 2, 4, stride: 2, banks: 1, shortcut: shortcut, zeroInitResidual: false,
                               initializer: &initializer, name: "b")
        store.finalize()
        #expect(GradientCheck(epsilon: 1e-3).check(block, store: store, input: [2, 4, 6, 6], seed: 7, parameterSample: 30) < 1e-2)
    }
}
}
