import PyramidLoader
import Testing
@testable import PyramidTrain

/// The fast kernels against their naive twins (llm.c's `matmul_forward_naive`): straightforward
/// loops in Double, compared element by element on random inputs whose lengths cover the SIMD
/// bodies and the scalar tails.
extension TrainerSuites {
@Suite struct KernelTests {
    init() { Threads.configure(2) }

    static func close(_ a: [Float], _ b: [Float], _ tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    // MARK: im2col / col2im

    /// Every (column-matrix index, input index) pair of the definition
    /// `col[(c, ky, kx), (n, oy, ox)] = x[c, n, oy·s − p + ky, ox·s − p + kx]`, pixels outside the image left out.
    static func naivePairs(c: Int, n: Int, h: Int, w: Int, n0: Int, n1: Int, k: Int, stride: Int, pad: Int) -> [(col: Int, x: Int)] {
        let ho = Im2col.outputSize(h, kernel: k, stride: stride, padding: pad), wo = Im2col.outputSize(w, kernel: k, stride: stride, padding: pad)
        let cols = (n1 - n0) * ho * wo
        var pairs: [(Int, Int)] = []
        for ch in 0..<c { for ky in 0..<k { for kx in 0..<k { for s in n0..<n1 { for oy in 0..<ho { for ox in 0..<wo {
            let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
            pairs.append((((ch * k + ky) * k + kx) * cols + ((s - n0) * ho + oy) * wo + ox, ((ch * n + s) * h + iy) * w + ix))
        } } } } } }
        return pairs
    }

    /// (kernel, stride, padding, height, width): "same" 3×3 and 5×5 (the masked fast path), strided,
    /// unpadded, and planes smaller than the kernel's reach.
    @Test(arguments: [(3, 1, 1, 7, 9), (3, 2, 1, 8, 7), (1, 1, 0, 5, 5), (3, 1, 0, 6, 6), (5, 1, 2, 9, 4), (3, 2, 1, 2, 3), (5, 1, 2, 3, 3)])
    func im2colAndCol2imMatchTheirNaiveTwins(k: Int, stride: Int, pad: Int, h: Int, w: Int) {
        let c = 3, n = 4, n0 = 1, n1 = 3
        let x = Tensor.uniformValues(c * n * h * w, seed: UInt64(k * 100 + h * 10 + w))
        let ho = Im2col.outputSize(h, kernel: k, stride: stride, padding: pad), wo = Im2col.outputSize(w, kernel: k, stride: stride, padding: pad)
        var col = [Float](repeating: .nan, count: c * k * k * (n1 - n0) * ho * wo)
        x.withUnsafeBufferPointer { xp in col.withUnsafeMutableBufferPointer { cp in
            Im2col.im2col(xp.baseAddress!, channels: c, batch: n, height: h, width: w, n0: n0, n1: n1, kernel: k, stride: stride,
                          padding: pad, col: cp.baseAddress!)
        } }
        let pairs = Self.naivePairs(c: c, n: n, h: h, w: w, n0: n0, n1: n1, k: k, stride: stride, pad: pad)
        var naiveCol = [Float](repeating: 0, count: col.count)
        for (ci, xi) in pairs { naiveCol[ci] = x[xi] }
        #expect(col == naiveCol)

        let y = Tensor.uniformValues(col.count, seed: 7)
        var gradX = [Float](repeating: 0, count: x.count)
        y.withUnsafeBufferPointer { yp in gradX.withUnsafeMutableBufferPointer { gp in
            Im2col.col2im(yp.baseAddress!, channels: c, batch: n, height: h, width: w, n0: n0, n1: n1, kernel: k, stride: stride,
                          padding: pad, gradX: gp.baseAddress!)
        } }
        // col2im is im2col's adjoint: the scatter of the same pairs.
        var naiveGradX = [Float](repeating: 0, count: x.count)
        for (ci, xi) in pairs { naiveGradX[xi] += y[ci] }
        #expect(Self.close(gradX, naiveGradX))
    }

    // MARK: Winograd

    /// Winograd F(2×2, 3×3) forward against the direct convolution (not only against im2col).
    @Test(arguments: [(8, 8), (7, 5), (2, 2), (14, 14), (5, 6)])
    func winogradMatchesTheDirectConvolution(h: Int, w: Int) {
        let store = ParameterStore()
        var initializer = Initializer(seed: 3)
        let conv = Conv2D(store, 8, 8, kernel: 3, padding: 1, initializer: &initializer, name: "conv")
        conv.tuning.algorithm = .winograd
        store.finalize()
        let x = Tensor(shape: [8, 3, h, w], values: Tensor.uniformValues(8 * 3 * h * w, seed: UInt64(h * w)))
        let fast = conv.forward(x, branch: 0).array
        let naive = LayerTests.naiveConv(x, weight: store.parameterArray, cout: 8, k: 3, stride: 1, pad: 1)
        #expect(Self.close(fast, naive, 1e-4), "worst \(zip(fast, naive).map { abs($0 - $1) }.max() ?? 0)")
    }

    // MARK: Reductions and element-wise kernels

    /// Up to a BatchNorm channel of a batch of 128 at 28 px (100,352 values, ~200 Float blocks):
    /// each sum within 1e-7 of the sum of its terms' magnitudes (eight Float lanes alone, 12,544
    /// values each, miss that at the largest size).
    @Test(arguments: [1, 7, 8, 63, 64, 65, 511, 512, 513, 1000, 100_352])
    func reductionsMatchTheirNaiveTwins(n: Int) {
        // Values around 1 (not 0), so that the sums grow and their rounding shows.
        let p = Tensor.uniformValues(n, seed: UInt64(n)).map { $0 + 1 }, q = Tensor.uniformValues(n, seed: UInt64(n) + 1)
        let mask = Tensor.uniformValues(n, seed: UInt64(n) + 2)
        let mean = 0.1
        let naiveSum = p.reduce(0.0) { $0 + Double($1) }
        let naiveSquares = p.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
        let naiveDot = zip(p, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let magnitude = p.reduce(0.0) { $0 + abs(Double($1)) }
        var naiveMasked = (0.0, 0.0)
        for i in 0..<n where mask[i] > 0 { naiveMasked.0 += Double(p[i]); naiveMasked.1 += Double(p[i]) * Double(q[i]) }
        let tolerance = 1e-7 * magnitude * 4 + 1e-6  // the squares reach (2 − 0.1)² ≈ 4x the magnitudes
        p.withUnsafeBufferPointer { pp in q.withUnsafeBufferPointer { qp in mask.withUnsafeBufferPointer { mp in
            let (a, b, m) = (pp.baseAddress!, qp.baseAddress!, mp.baseAddress!)
            #expect(abs(Kernels.sum(a, n) - naiveSum) < tolerance, "sum \(Kernels.sum(a, n)) vs \(naiveSum)")
            #expect(abs(Kernels.sumOfSquares(a, n, minus: Float(mean)) - naiveSquares) < tolerance)
            #expect(abs(Kernels.dot(a, b, n) - naiveDot) < tolerance)
            let (s0, s1) = Kernels.maskedSums(a, b, mask: m, n)
            #expect(abs(s0 - naiveMasked.0) < tolerance && abs(s1 - naiveMasked.1) < tolerance)
        } } }
    }

    @Test(arguments: [1, 9, 64, 100_003])
    func elementwiseKernelsMatchTheirNaiveTwins(n: Int) {
        let a = Tensor.uniformValues(n, seed: 1), b = Tensor.uniformValues(n, seed: 2), mask = Tensor.uniformValues(n, seed: 3)
        var sum = [Float](repeating: 0, count: n), relu = sum, masked = sum, maskedAdd = sum, bn = sum, bnMasked = sum
        let (scale, count, sumDy, sumDyX): (Float, Float, Float, Float) = (0.3, Float(n), 0.7, -0.2)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in mask.withUnsafeBufferPointer { mp in
            let (x, y, m) = (ap.baseAddress!, bp.baseAddress!, mp.baseAddress!)
            sum.withUnsafeMutableBufferPointer { Kernels.add(x, y, into: $0.baseAddress!, count: n) }
            relu.withUnsafeMutableBufferPointer { Kernels.addReLU(x, y, into: $0.baseAddress!, count: n) }
            masked.withUnsafeMutableBufferPointer { Kernels.maskedGradient(x, mask: m, into: $0.baseAddress!, count: n) }
            maskedAdd.withUnsafeMutableBufferPointer { Kernels.maskedGradient(x, mask: m, adding: y, into: $0.baseAddress!, count: n) }
            bn.withUnsafeMutableBufferPointer {
                Kernels.batchNormGradient(x, y, mask: nil, n, scale: scale, count: count, sumDy: sumDy, sumDyX: sumDyX, into: $0.baseAddress!)
            }
            bnMasked.withUnsafeMutableBufferPointer {
                Kernels.batchNormGradient(x, y, mask: m, n, scale: scale, count: count, sumDy: sumDy, sumDyX: sumDyX, into: $0.baseAddress!)
            }
        } } }
        #expect(sum == zip(a, b).map { $0 + $1 })
        #expect(relu == zip(a, b).map { max(0, $0 + $1) })
        #expect(masked == zip(a, mask).map { $1 > 0 ? $0 : 0 })
        #expect(maskedAdd == (0..<n).map { b[$0] + (mask[$0] > 0 ? a[$0] : 0) })
        #expect(Self.close(bn, (0..<n).map { scale * (count * a[$0] - sumDy - b[$0] * sumDyX) }, 1e-5))
        #expect(Self.close(bnMasked, (0..<n).map { scale * ((mask[$0] > 0 ? count * a[$0] : 0) - sumDy - b[$0] * sumDyX) }, 1e-5))
    }

    // MARK: Pooling and layout

    @Test func poolingAndLayoutMatchTheirNaiveTwins() {
        let (c, n, h, w, k) = (3, 2, 6, 4, 2)
        let x = Tensor.uniformValues(c * n * h * w, seed: 21)
        let (ho, wo) = (h / k, w / k)
        var maxOut = [Float](repeating: 0, count: c * n * ho * wo), avgOut = maxOut, gap = [Float](repeating: 0, count: n * c)
        var argmax = [Int32](repeating: 0, count: maxOut.count), cnhw = x
        x.withUnsafeBufferPointer { xp in
            let p = xp.baseAddress!
            maxOut.withUnsafeMutableBufferPointer { o in argmax.withUnsafeMutableBufferPointer { a in
                Kernels.pool(p, planes: c * n, height: h, width: w, size: k, max: true, into: o.baseAddress!, argmax: a.baseAddress!)
            } }
            avgOut.withUnsafeMutableBufferPointer { Kernels.pool(p, planes: c * n, height: h, width: w, size: k, max: false, into: $0.baseAddress!, argmax: nil) }
            gap.withUnsafeMutableBufferPointer { Kernels.averagePlanes(p, channels: c, batch: n, plane: h * w, into: $0.baseAddress!) }
            cnhw.withUnsafeMutableBufferPointer { Kernels.samplesToChannels(p, count: n, channels: c, plane: h * w, into: $0.baseAddress!) }
        }
        for plane in 0..<(c * n) { for oy in 0..<ho { for ox in 0..<wo {
            let window = (0..<k).flatMap { dy in (0..<k).map { dx in x[plane * h * w + (oy * k + dy) * w + ox * k + dx] } }
            let o = plane * ho * wo + oy * wo + ox
            #expect(maxOut[o] == window.max()! && x[plane * h * w + Int(argmax[o])] == window.max()!)
            #expect(abs(avgOut[o] - window.reduce(0, +) / Float(k * k)) < 1e-6)
        } } }
        for ch in 0..<c { for s in 0..<n {
            let plane = x[((ch * n + s) * h * w)..<((ch * n + s + 1) * h * w)]
            #expect(abs(gap[s * c + ch] - plane.reduce(0, +) / Float(h * w)) < 1e-6)
            // (N, C, plane) → (C, N, plane): sample s, channel ch of the input lands at (ch, s).
            #expect(Array(cnhw[((ch * n + s) * h * w)..<((ch * n + s + 1) * h * w)]) == Array(x[((s * c + ch) * h * w)..<((s * c + ch + 1) * h * w)]))
        } }
    }
}
}
