/// Vectorized reductions over Float runs, blocked: within a block of ``reductionBlock`` values
/// SIMD lanes of Float accumulators (each sums at most 64 values), across blocks a Double. A
/// BatchNorm channel of a batch of 128 at 28 px is a run of 100,352 values; summed in eight Float
/// lanes alone (12,544 values each), `ParityTests`' ResNet-20 RS-Nets step run at that batch had
/// running statistics up to 4.6e-6 from float64's (PyTorch's float32: 3.7e-7); blocked, 9e-7.
enum Kernels {
    /// Values per Float block of the reductions.
    static let reductionBlock = 512

    /// `Σ p[i]`.
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        forEachBlock(n) { total += Double(blockSum(p + $0, $1)) }
        return total
    }

    /// `Σ (p[i] − mean)²`.
    @inline(__always)
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int, minus mean: Float) -> Double {
        var total = 0.0
        forEachBlock(n) { total += Double(blockSumOfSquares(p + $0, $1, minus: mean)) }
        return total
    }

    /// `Σ p[i]·q[i]`.
    @inline(__always)
    static func dot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        forEachBlock(n) { total += Double(blockDot(p + $0, q + $0, $1)) }
        return total
    }

    /// `(Σ dy·[mask>0], Σ dy·x·[mask>0])`: BatchNorm's backward sums through a fused ReLU.
    @inline(__always)
    static func maskedSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, _ n: Int) -> (Double, Double) {
        var s0 = 0.0, s1 = 0.0
        forEachBlock(n) { start, count in
            let (a, b) = blockMaskedSums(dy + start, x + start, mask: mask + start, count)
            s0 += Double(a); s1 += Double(b)
        }
        return (s0, s1)
    }

    /// Calls `body(start, count)` for the blocks of ``reductionBlock`` values that cover `0..<n`.
    @inline(__always)
    static func forEachBlock(_ n: Int, _ body: (Int, Int) -> Void) {
        var start = 0
        while start < n {
            let count = min(reductionBlock, n - start)
            body(start, count)
            start += count
        }
    }

    @inline(__always)
    static func blockSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>(), c = SIMD8<Float>(), d = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 32 <= n {
            a += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            b += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            c += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
            d += raw.loadUnaligned(fromByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
            i += 32
        }
        var s = ((a + b) + (c + d)).sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func blockSumOfSquares(_ p: UnsafePointer<Float>, _ n: Int, minus mean: Float) -> Float {
        let m = SIMD8<Float>(repeating: mean)
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
            let y = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) - m
            a += x * x; b += y * y
            i += 16
        }
        var s = (a + b).sum()
        while i < n { let d = p[i] - mean; s += d * d; i += 1 }
        return s
    }

    @inline(__always)
    static func blockDot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        let rp = UnsafeRawPointer(p), rq = UnsafeRawPointer(q)
        while i + 16 <= n {
            a += rp.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            b += rp.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) * rq.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        var s = (a + b).sum()
        while i < n { s += p[i] * q[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func blockMaskedSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        let zero = SIMD8<Float>()
        var i = 0
        let rd = UnsafeRawPointer(dy), rx = UnsafeRawPointer(x), rm = UnsafeRawPointer(mask)
        while i + 8 <= n {
            let m = rm.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let d = zero.replacing(with: rd.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), where: m .> zero)
            a += d
            b += d * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var s0 = a.sum(), s1 = b.sum()
        while i < n { if mask[i] > 0 { s0 += dy[i]; s1 += dy[i] * x[i] }; i += 1 }
        return (s0, s1)
    }

    /// `dx = scale · (m·dy' − Σdy' − x̂·Σdy'x̂)` with `dy' = dy·[mask>0]` (no mask: `dy' = dy`).
    @inline(__always)
    static func batchNormGradient(_ dy: UnsafePointer<Float>, _ xh: UnsafePointer<Float>, mask: UnsafePointer<Float>?, _ n: Int,
                                  scale: Float, count: Float, sumDy: Float, sumDyX: Float, into dx: UnsafeMutablePointer<Float>) {
        let vs = SIMD8<Float>(repeating: scale), vm = SIMD8<Float>(repeating: count)
        let va = SIMD8<Float>(repeating: sumDy), vb = SIMD8<Float>(repeating: sumDyX), zero = SIMD8<Float>()
        let rd = UnsafeRawPointer(dy), rx = UnsafeRawPointer(xh), wd = UnsafeMutableRawPointer(dx)
        var i = 0
        if let mask {
            let rm = UnsafeRawPointer(mask)
            while i + 8 <= n {
                let d = zero.replacing(with: rd.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self),
                                       where: rm.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) .> zero)
                let x = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                wd.storeBytes(of: vs * (vm * d - va - x * vb), toByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { dx[i] = scale * ((mask[i] > 0 ? count * dy[i] : 0) - sumDy - xh[i] * sumDyX); i += 1 }
        } else {
            while i + 8 <= n {
                let d = rd.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                let x = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                wd.storeBytes(of: vs * (vm * d - va - x * vb), toByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { dx[i] = scale * (count * dy[i] - sumDy - xh[i] * sumDyX); i += 1 }
        }
    }

    /// `out = a + b`, split over the cores for large tensors.
    static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        elementwise(n) { i, count in
            var k = i
            while k + 8 <= i + count { store(load(a + k) + load(b + k), out + k); k += 8 }
            while k < i + count { out[k] = a[k] + b[k]; k += 1 }
        }
    }

    /// `out = max(0, a + b)`: a residual block's sum and ReLU in one pass.
    static func addReLU(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
        elementwise(n) { i, count in
            var k = i
            while k + 8 <= i + count { store(relu(load(a + k) + load(b + k)), out + k); k += 8 }
            while k < i + count { out[k] = max(0, a[k] + b[k]); k += 1 }
        }
    }

    /// `out = [mask > 0]·dy`, ReLU's gradient from its output; `out = a + [mask > 0]·dy` when `a` is given.
    static func maskedGradient(_ dy: UnsafePointer<Float>, mask: UnsafePointer<Float>, adding a: UnsafePointer<Float>? = nil,
                               into out: UnsafeMutablePointer<Float>, count n: Int) {
        let zero = SIMD8<Float>()
        elementwise(n) { i, count in
            var k = i
            while k + 8 <= i + count {
                let d = zero.replacing(with: load(dy + k), where: load(mask + k) .> zero)
                store(a.map { load($0 + k) + d } ?? d, out + k)
                k += 8
            }
            while k < i + count { let d = mask[k] > 0 ? dy[k] : 0; out[k] = (a?[k] ?? 0) + d; k += 1 }
        }
    }

    /// Runs `body(start, count)` over `0..<n`: on the cores for large tensors, in pieces of at
    /// least 16k values that the cores claim as they go.
    @inline(__always)
    static func elementwise(_ n: Int, _ body: (Int, Int) -> Void) {
        let parts = min(Threads.count, max(1, n / 32768))
        if parts <= 1 { body(0, n); return }
        let chunks = max(parts, n / 16384)
        parallelChunks(chunks, workers: parts) { _, c in
            let r = partRange(c, of: chunks, count: n)
            body(r.lowerBound, r.count)
        }
    }
}
