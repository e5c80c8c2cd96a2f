/// The uint8 output path: a view rendered straight into the batch (NHWC), rounded on the way out.
///
/// Same sums as ``Resampler/render(_:width:height:channels:box:size:)``, then each value rounded
/// to the nearest byte (ties to even); the vertical pass rounds and stores eight values at a time
/// into the destination (``roundedBytes(_:)``): no float image in between, no conversion pass, no
/// libm call per value.
extension Resampler {
    /// Renders `box` of `source` (`width × height × channels`, interleaved) at `size × size` into
    /// `destination` (`size × size × channels` bytes, interleaved).
    func renderBytes(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels c: Int, box: CropBox, size: Int,
                     into destination: UnsafeMutablePointer<UInt8>) {
        let plan = Self.plan(width: width, height: height, box: box, size: size)
        if let bytes = bytesIfNoArithmetic(source, width: width, height: height, channels: c, box: box, size: size, plan: plan) {
            destination.update(from: bytes, count: size * size * c)
            return
        }
        guard case .tables(let xs, let ys) = plan else { preconditionFailure("a shift needs no arithmetic") }
        let rowLength = size * c
        let lo = ys.lo, rowCount = lo > ys.hi ? 0 : ys.hi - lo + 1  // lo > hi: every output row is padding
        Self.ensure(&rows, &rowsCapacity, max(1, rowCount * rowLength))
        Self.horizontalPass(source, width: width, channels: c, xs: xs, rows: lo..<(lo + rowCount), size: size, into: rows,
                            rowStride: rowLength, pixelStride: c, channelStride: 1)
        ys.weights.withUnsafeBufferPointer { weights in
            for y in 0..<size {
                let out = destination + y * rowLength
                let f = Int(ys.first[y])
                if f < 0 { out.initialize(repeating: 0, count: rowLength); continue }
                let n = max(1, Int(ys.taps[y]))
                let w = weights.baseAddress! + y * ys.stride
                let base = rows + (f - lo) * rowLength
                var i = 0
                while i + 8 <= rowLength {
                    let acc = Self.columnSum8(base + i, rowStride: rowLength, taps: n, weights: w)
                    UnsafeMutableRawPointer(out + i).storeBytes(of: Self.roundedBytes(acc), as: SIMD8<UInt8>.self)
                    i += 8
                }
                while i < rowLength {
                    var acc = base[i] * w[0]
                    for t in 1..<n { acc += base[t * rowLength + i] * w[t] }
                    out[i] = Self.roundedByte(acc)
                    i += 1
                }
            }
        }
    }

    /// Eight columns of the vertical pass: `Σ_t w[t] · row_t[0..<8]` for `taps` rows `rowStride`
    /// apart from `base`, summed as render's `weightedRow` does (w₀·row₀, then + w_t·row_t in
    /// order), so every output path gets the same bits.
    @inline(__always)
    static func columnSum8(_ base: UnsafePointer<Float>, rowStride: Int, taps n: Int, weights w: UnsafePointer<Float>) -> SIMD8<Float> {
        var acc = UnsafeRawPointer(base).loadUnaligned(as: SIMD8<Float>.self) * SIMD8<Float>(repeating: w[0])
        for t in 1..<max(1, n) {
            acc += UnsafeRawPointer(base + t * rowStride).loadUnaligned(as: SIMD8<Float>.self) * SIMD8<Float>(repeating: w[t])
        }
        return acc
    }

    /// The byte nearest `v` (ties to even) for `v` in −0.5 < v < 255.5, eight at a time: adding
    /// 1.5·2²³ leaves the rounded value in the low mantissa bits (the sum stays between 2²³ and
    /// 2²⁴, where a float's unit in the last place is 1, and the hardware rounds it to
    /// nearest-even; 1.5·2²³'s own low byte is zero), which become the byte.
    /// One add and a narrowing, where `rounded()` is a call to libm's `roundf` per value (no x86
    /// instruction rounds half away from zero: uint8 output used to run at half float32's speed)
    /// and Swift's generic SIMD `clamped`/`pointwiseMin` are per-lane loops. No clamp is needed:
    /// the resampler's weights are non-negative and sum to one (``AxisTable``: the triangle
    /// filter, renormalized), so a value lies in 0…255 up to float error far below ½.
    @inline(__always)
    static func roundedBytes(_ v: SIMD8<Float>) -> SIMD8<UInt8> {
        SIMD8<UInt8>(truncatingIfNeeded: unsafeBitCast(v + SIMD8<Float>(repeating: 12_582_912), to: SIMD8<UInt32>.self))
    }

    /// ``roundedBytes(_:)`` for one value.
    @inline(__always)
    static func roundedByte(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: (v + 12_582_912).bitPattern)
    }
}
