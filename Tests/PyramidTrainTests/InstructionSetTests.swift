import CPyramidKernels
import Testing
@testable import PyramidTrain

/// Every version of the C kernels this CPU can run (``InstructionSet``), each called directly,
/// against naive twins written from the definitions. The element-wise kernels and the Winograd
/// transforms are sums of at most three terms with ±1 coefficients, so the twins give the same
/// bits; the reductions are compared with each other bit for bit and with Double sums.
extension TrainerSuites {
@Suite struct InstructionSetTests {
    static var tables: [(InstructionSet, pyr_kernels)] { InstructionSet.supported.map { ($0, $0.table!) } }

    @Test func anUnknownGemmBackendIsReportedNotIgnored() {
        var warnings: [String] = []
        #expect(GemmBackend.choose(nil) { warnings.append($0) } == .libxsmm)
        #expect(GemmBackend.choose("OpenBLAS") { warnings.append($0) } == .openblas)
        #expect(warnings.isEmpty)
        #expect(GemmBackend.choose("bogus") { warnings.append($0) } == .libxsmm)
        #expect(warnings == ["pyramid: PYRAMID_GEMM=bogus is not one of libxsmm, openblas; using libxsmm"])
    }

    @Test func theBaselineAlwaysRunsAndTheProcessTakesTheBestOrTheOneAskedFor() {
        #expect(InstructionSet.baseline.isSupported)
        let best = InstructionSet.supported.max()!
        var warnings: [String] = []
        #expect(InstructionSet.choose(nil) { warnings.append($0) } == best)
        #expect(InstructionSet.choose("") { warnings.append($0) } == best)
        #expect(InstructionSet.choose("Baseline") { warnings.append($0) } == .baseline)
        #expect(warnings.isEmpty)
        #expect(InstructionSet.choose("sse9") { warnings.append($0) } == best)
        #expect(warnings == ["pyramid: PYRAMID_KERNELS=sse9 is not one of baseline, avx2, avx512; using \(best.rawValue)"])
        for isa in InstructionSet.allCases where !isa.isSupported {
            warnings = []
            #expect(InstructionSet.choose(isa.rawValue) { warnings.append($0) } == best)
            #expect(warnings == ["pyramid: PYRAMID_KERNELS=\(isa.rawValue): this CPU cannot run it; using \(best.rawValue)"])
        }
        #expect(InstructionSet.active.isSupported && InstructionSet.active.table != nil)
        #if arch(x86_64)
        // Every x86-64 CPU this project runs on has AVX2 (the CI machines have AVX-512).
        #expect(InstructionSet.avx2.isSupported)
        #endif
    }

    /// Lengths around the vector widths (4, 8, 16 lanes, unrolled), the 512-value blocks and a
    /// BatchNorm channel at 28 px.
    static let lengths = [1, 7, 8, 9, 31, 64, 65, 511, 512, 513, 1000, 100_352]

    @Test func reductionsGiveTheSameBitsOnEveryVersionAndTheDoubleSums() {
        for n in Self.lengths {
            let p = Tensor.uniformValues(n, seed: UInt64(n)).map { $0 + 1 }, q = Tensor.uniformValues(n, seed: UInt64(n) + 1)
            let mask = Tensor.uniformValues(n, seed: UInt64(n) + 2)
            let magnitude = p.reduce(0.0) { $0 + abs(Double($1)) }, tolerance = 4e-7 * magnitude + 1e-6
            let naive = (sum: p.reduce(0.0) { $0 + Double($1) }, squares: p.reduce(0.0) { $0 + (Double($1) - 0.25) * (Double($1) - 0.25) },
                         dot: zip(p, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
            var masked = (0.0, 0.0)
            for i in 0..<n where mask[i] > 0 { masked.0 += Double(q[i]); masked.1 += Double(q[i]) * Double(p[i]) }
            var results: [[Double]] = []
            for (isa, k) in Self.tables {
                var s0 = 0.0, s1 = 0.0
                k.masked_sums(q, p, mask, n, &s0, &s1)
                let r = [k.sum(p, n), k.sum_squares(p, n, 0.25), k.dot(p, q, n), s0, s1]
                for (got, want) in zip(r, [naive.sum, naive.squares, naive.dot, masked.0, masked.1]) {
                    #expect(abs(got - want) < tolerance, "\(isa) n \(n): \(got) vs \(want)")
                }
                results.append(r)
            }
            #expect(results.allSatisfy { $0 == results[0] }, "n \(n): \(results)")
        }
    }

    @Test func elementwiseKernelsMatchTheirNaiveTwinsOnEveryVersion() {
        func relu(_ v: Float) -> Float { v < 0 ? 0 : v }
        for n in Self.lengths {
            let a = Tensor.uniformValues(n, seed: 1), b = Tensor.uniformValues(n, seed: 2), mask = Tensor.uniformValues(n, seed: 3)
            let (mean, istd, gamma, beta): (Float, Float, Float, Float) = (0.1, 1.7, -0.8, 0.3)
            let (scale, count, sumDy, sumDyX): (Float, Float, Float, Float) = (0.3, Float(n), 0.7, -0.2)
            for (isa, k) in Self.tables {
                func run(_ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
                    var out = [Float](repeating: .nan, count: n)
                    out.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
                    return out
                }
                #expect(run { k.add(a, b, $0, n) } == zip(a, b).map { $0 + $1 }, "\(isa) \(n)")
                #expect(run { k.relu(a, $0, n) } == a.map(relu), "\(isa) \(n)")
                #expect(run { k.add_relu(a, b, $0, n) } == zip(a, b).map { relu($0 + $1) }, "\(isa) \(n)")
                #expect(run { k.masked_gradient(a, mask, nil, $0, n) } == zip(a, mask).map { $1 > 0 ? $0 : 0 }, "\(isa) \(n)")
                #expect(run { k.masked_gradient(a, mask, b, $0, n) } == (0..<n).map { b[$0] + (mask[$0] > 0 ? a[$0] : 0) }, "\(isa) \(n)")
                for fused in [false, true] {
                    var xh = [Float](repeating: .nan, count: n)
                    let out = run { o in xh.withUnsafeMutableBufferPointer { k.normalize(a, n, mean, istd, gamma, beta, fused ? 1 : 0, $0.baseAddress!, o) } }
                    let wantXh = a.map { ($0 - mean) * istd }
                    #expect(xh == wantXh && out == wantXh.map { fused ? relu(gamma * $0 + beta) : gamma * $0 + beta }, "\(isa) \(n) relu \(fused)")
                    #expect(run { k.affine(a, n, istd, beta, fused ? 1 : 0, $0) } == a.map { fused ? relu($0 * istd + beta) : $0 * istd + beta })
                }
                #expect(run { k.scale_masked(a, nil, scale, n, $0) } == a.map { scale * $0 })
                #expect(run { k.scale_masked(a, mask, scale, n, $0) } == (0..<n).map { mask[$0] > 0 ? scale * a[$0] : 0 })
                #expect(run { k.batch_norm_gradient(a, b, nil, n, scale, count, sumDy, sumDyX, $0) }
                        == (0..<n).map { scale * (count * a[$0] - sumDy - b[$0] * sumDyX) }, "\(isa) \(n)")
                #expect(run { k.batch_norm_gradient(a, b, mask, n, scale, count, sumDy, sumDyX, $0) }
                        == (0..<n).map { scale * ((mask[$0] > 0 ? count * a[$0] : 0) - sumDy - b[$0] * sumDyX) }, "\(isa) \(n)")
            }
        }
    }

    /// (kernel, height, width): 3×3 and 5×5 "same" convolutions on planes from 2×3 (smaller than
    /// the kernel's reach) to 14×14, runs of several planes included.
    @Test(arguments: [(3, 7, 9), (3, 4, 4), (3, 14, 14), (3, 2, 3), (5, 9, 4), (5, 3, 3), (3, 12, 12)])
    func sameIm2colMatchesItsNaiveTwinOnEveryVersion(kernel: Int, h: Int, w: Int) {
        let (c, n, n0, n1, pad) = (3, 5, 1, 4, kernel / 2)
        let x = Tensor.uniformValues(c * n * h * w, seed: UInt64(kernel * 100 + h * 10 + w))
        var want = [Float](repeating: 0, count: c * kernel * kernel * (n1 - n0) * h * w)
        for (ci, xi) in KernelTests.naivePairs(c: c, n: n, h: h, w: w, n0: n0, n1: n1, k: kernel, stride: 1, pad: pad) { want[ci] = x[xi] }
        for (isa, k) in Self.tables {
            var col = [Float](repeating: .nan, count: want.count)
            col.withUnsafeMutableBufferPointer { k.same_im2col(x, c, n, h, w, n0, n1, kernel, pad, $0.baseAddress!) }
            #expect(col == want, "\(isa)")
        }
    }

    /// (kernel, stride, padding, height, width): strided, unpadded, 1×1 and planes smaller than
    /// the kernel's reach; col2im adds in the order of the columns, as the naive scatter does.
    @Test(arguments: [(3, 2, 1, 8, 7), (3, 2, 1, 14, 14), (3, 2, 1, 7, 7), (1, 2, 0, 9, 9), (3, 1, 0, 6, 6), (3, 2, 1, 2, 3), (3, 3, 1, 10, 5)])
    func im2colAndCol2imMatchTheirNaiveTwinsOnEveryVersion(kernel: Int, stride: Int, pad: Int, h: Int, w: Int) {
        let (c, n, n0, n1) = (3, 4, 1, 3)
        let x = Tensor.uniformValues(c * n * h * w, seed: UInt64(kernel * 100 + h * 10 + w))
        let ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1
        let pairs = KernelTests.naivePairs(c: c, n: n, h: h, w: w, n0: n0, n1: n1, k: kernel, stride: stride, pad: pad)
        var want = [Float](repeating: 0, count: c * kernel * kernel * (n1 - n0) * ho * wo)
        for (ci, xi) in pairs { want[ci] = x[xi] }
        let y = Tensor.uniformValues(want.count, seed: 7), start = Tensor.uniformValues(x.count, seed: 8)
        var wantGrad = start
        for (ci, xi) in pairs { wantGrad[xi] += y[ci] }
        for (isa, k) in Self.tables {
            var col = [Float](repeating: .nan, count: want.count), grad = start
            col.withUnsafeMutableBufferPointer { k.im2col(x, c, n, h, w, n0, n1, kernel, stride, pad, $0.baseAddress!) }
            grad.withUnsafeMutableBufferPointer { k.col2im(y, c, n, h, w, n0, n1, kernel, stride, pad, $0.baseAddress!) }
            #expect(col == want, "\(isa)")
            #expect(grad == wantGrad, "\(isa)")
        }
    }

    // MARK: Winograd F(2×2, 3×3), from the matrices of Lavin & Gray (2016)

    static let bT: [[Float]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    static let aT: [[Float]] = [[1, 1, 1, 0], [0, 1, -1, -1]]

    /// `p · q` in Float, terms added in order of the inner index.
    static func product(_ p: [[Float]], _ q: [[Float]]) -> [[Float]] {
        p.map { row in (0..<q[0].count).map { j in (0..<q.count).reduce(Float(0)) { $0 + row[$1] * q[$1][j] } } }
    }
    /// Where two arrays first differ (NaN equal to NaN), and how many elements differ; nil when equal.
    static func firstDifference(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "\(a.count) values against \(b.count)" }
        let differ = a.indices.filter { a[$0] != b[$0] && !(a[$0].isNaN && b[$0].isNaN) }
        guard let i = differ.first else { return nil }
        return "\(differ.count) of \(a.count) differ, first at \(i): \(a[i]) against \(b[i])"
    }
    static func transposed(_ p: [[Float]]) -> [[Float]] { (0..<p[0].count).map { j in p.map { $0[j] } } }

    /// Planes even and odd, from 1×1 up; samples 1..<3 of 3, 3 channels.
    static let planes = [(8, 8), (7, 5), (2, 2), (14, 14), (5, 6), (1, 1), (16, 3), (4, 12)]

    @Test func winogradTransformsMatchTheirDefinitionsOnEveryVersion() {
        let (channels, batch, n0, n1) = (3, 3, 1, 3)
        for (h, w) in Self.planes {
            let (th, tw) = ((h + 1) / 2, (w + 1) / 2)
            let count = (n1 - n0) * th * tw
            func tile(_ n: Int, _ i: Int, _ j: Int) -> Int { ((n - n0) * th + i) * tw + j }
            let x = Tensor.uniformValues(channels * batch * h * w, seed: UInt64(h * 31 + w))
            func pixel(_ c: Int, _ n: Int, _ y: Int, _ xx: Int) -> Float {
                y >= 0 && y < h && xx >= 0 && xx < w ? x[((c * batch + n) * h + y) * w + xx] : 0
            }
            // V[ξ][c][t] = (Bᵀ d B)[ξ] for the 4×4 patch d from (2i − 1, 2j − 1). The four-term sums
            // are associated as the kernels do (d B first; Y and dM: the left product first).
            var v = [Float](repeating: 0, count: 16 * channels * count)
            // Y = Aᵀ M A per tile, cropped; dM = A dY Aᵀ with dY zero outside the plane.
            let m = Tensor.uniformValues(16 * channels * count, seed: 77)
            var y = [Float](repeating: .nan, count: channels * batch * h * w)
            var dm = [Float](repeating: 0, count: 16 * channels * count)
            for c in 0..<channels { for n in n0..<n1 { for i in 0..<th { for j in 0..<tw {
                let t = tile(n, i, j)
                let d = (0..<4).map { r in (0..<4).map { s in pixel(c, n, 2 * i - 1 + r, 2 * j - 1 + s) } }
                let vt = Self.product(Self.bT, Self.product(d, Self.transposed(Self.bT)))  // rows first, as the kernel
                let mt = (0..<4).map { r in (0..<4).map { s in m[((r * 4 + s) * channels + c) * count + t] } }
                let yt = Self.product(Self.product(Self.aT, mt), Self.transposed(Self.aT))
                let dy = (0..<2).map { a in (0..<2).map { b in pixel(c, n, 2 * i + a, 2 * j + b) } }
                let dmt = Self.product(Self.product(Self.transposed(Self.aT), dy), Self.aT)
                for r in 0..<4 { for s in 0..<4 {
                    v[((r * 4 + s) * channels + c) * count + t] = vt[r][s]
                    dm[((r * 4 + s) * channels + c) * count + t] = dmt[r][s]
                } }
                for a in 0..<2 { for b in 0..<2 where 2 * i + a < h && 2 * j + b < w {
                    y[((c * batch + n) * h + 2 * i + a) * w + 2 * j + b] = yt[a][b]
                } }
            } } } }
            for (isa, k) in Self.tables {
                var gotV = [Float](repeating: .nan, count: v.count), gotDM = gotV, gotY = [Float](repeating: .nan, count: y.count)
                gotV.withUnsafeMutableBufferPointer { k.winograd_input(x, channels, batch, h, w, n0, n1, $0.baseAddress!) }
                gotY.withUnsafeMutableBufferPointer { k.winograd_output(m, channels, batch, h, w, n0, n1, $0.baseAddress!) }
                gotDM.withUnsafeMutableBufferPointer { k.winograd_grad_output(x, channels, batch, h, w, n0, n1, $0.baseAddress!) }
                #expect(Self.firstDifference(gotV, v) == nil, "\(isa) \(h)x\(w): input transform")
                #expect(Self.firstDifference(gotDM, dm) == nil, "\(isa) \(h)x\(w): gradient transform")
                // Samples outside n0..<n1 are left alone (NaN in both).
                #expect(Self.firstDifference(gotY, y) == nil, "\(isa) \(h)x\(w): output transform")
            }
        }
    }
}
}
