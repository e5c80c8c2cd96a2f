/// Vectorized reductions over Float runs: eight SIMD lanes of eight accumulators each keep the
/// summation error small (each accumulator sums 1/64 of the run) while using the vector units.
enum Kernels {
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
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

    /// `Σ (p[i] − mean)²`.
    @inline(__always)
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int, minus mean: Float) -> Float {
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

    /// `Σ p[i]·q[i]`.
    @inline(__always)
    static func dot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Float {
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
}
