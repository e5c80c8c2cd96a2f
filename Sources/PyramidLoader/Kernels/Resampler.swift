/// Renders a crop box of an 8-bit interleaved image at `size × size`: the loader's resampler.
///
/// Separable: a horizontal pass over the source rows the box needs, into Float rows, then a
/// vertical pass (SIMD over each row). When both axes are gathers (same scale, whole-pixel offset:
/// a stored level at its own size, a flip, a pad-and-crop shift) no arithmetic is done at all and
/// the result stays 8-bit. One `Resampler` per thread: it owns its scratch memory.
final class Resampler {
    /// What a render produced, in the resampler's scratch; valid until the next render.
    enum Result {
        /// Interleaved bytes (`size × size × channels`): a gather, no rounding happened.
        case bytes(UnsafePointer<UInt8>)
        /// Interleaved floats on the 0…255 scale.
        case floats(UnsafePointer<Float>)
    }

    var rows = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var rowsCapacity = 1
    private var out = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var outCapacity = 1
    private var bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private var bytesCapacity = 1

    deinit { rows.deallocate(); out.deallocate(); bytes.deallocate() }

    static func ensure<T>(_ p: inout UnsafeMutablePointer<T>, _ cap: inout Int, _ need: Int) {
        if need > cap { p.deallocate(); p = .allocate(capacity: need); cap = need }
    }

    /// How a view is made: a shifted (maybe mirrored) copy when the box has the output's size at a
    /// whole-pixel offset (no tables needed), otherwise through the axes' tables.
    enum Plan {
        case shift(dx: Int, dy: Int)
        case tables(x: AxisTable, y: AxisTable)
    }

    static func plan(width: Int, height: Int, box: CropBox, size: Int) -> Plan {
        let ox = box.x * Double(width), oy = box.y * Double(height)
        if abs(box.width * Double(width) - Double(size)) < 1e-9, abs(box.height * Double(height) - Double(size)) < 1e-9,
           abs(ox - ox.rounded()) < 1e-6, abs(oy - oy.rounded()) < 1e-6 {
            return .shift(dx: Int(ox.rounded()), dy: Int(oy.rounded()))
        }
        return .tables(x: AxisTable(source: width, output: size, origin: ox, extent: box.width * Double(width), flip: box.flip),
                       y: AxisTable(source: height, output: size, origin: oy, extent: box.height * Double(height), flip: false))
    }

    /// The bytes of a view that needs no arithmetic (a shift, or two gather axes), nil otherwise.
    func bytesIfNoArithmetic(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, box: CropBox, size: Int,
                             plan: Plan) -> UnsafePointer<UInt8>? {
        switch plan {
        case .shift(let dx, let dy):
            return shift(source, width: width, height: height, channels: channels, dx: dx, dy: dy, flip: box.flip, size: size)
        case .tables(let xs, let ys):
            return xs.isGather && ys.isGather ? gather(source, width: width, channels: channels, xs: xs, ys: ys, size: size) : nil
        }
    }

    /// Renders `box` of `source` (`width × height × channels`, interleaved) at `size × size`.
    func render(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, box: CropBox, size: Int) -> Result {
        let plan = Self.plan(width: width, height: height, box: box, size: size)
        if let b = bytesIfNoArithmetic(source, width: width, height: height, channels: channels, box: box, size: size, plan: plan) {
            return .bytes(b)
        }
        guard case .tables(let xs, let ys) = plan else { preconditionFailure("a shift needs no arithmetic") }
        let c = channels
        let rowLength = size * c
        // Horizontal pass over the rows the vertical pass reads, interleaved.
        let lo = ys.lo, hi = ys.hi
        let rowCount = lo > hi ? 0 : hi - lo + 1  // lo > hi: every output row is padding
        Self.ensure(&rows, &rowsCapacity, max(1, rowCount * rowLength))
        Self.ensure(&out, &outCapacity, size * rowLength)
        Self.horizontalPass(source, width: width, channels: c, xs: xs, rows: lo..<(lo + rowCount), size: size, into: rows,
                            rowStride: rowLength, pixelStride: c, channelStride: 1)
        // Vertical pass: each output row is a weighted sum of whole rows.
        for y in 0..<size {
            let dst = out + y * rowLength
            let f = Int(ys.first[y])
            if f < 0 { dst.initialize(repeating: 0, count: rowLength); continue }
            let n = Int(ys.taps[y])
            let w0 = ys.weights[y * ys.stride]
            Self.weightedRow(rows + (f - lo) * rowLength, by: w0, into: dst, count: rowLength, accumulate: false)
            for t in 1..<max(1, n) {
                Self.weightedRow(rows + (f - lo + t) * rowLength, by: ys.weights[y * ys.stride + t], into: dst, count: rowLength, accumulate: true)
            }
        }
        return .floats(UnsafePointer(out))
    }

    /// Output pixel (x, y) is source pixel (dx + x, dy + y) — or (dx + size−1−x, dy + y) mirrored —
    /// and zero outside the image: exactly what the tables give for a unit scale.
    private func shift(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels c: Int, dx: Int, dy: Int,
                       flip: Bool, size: Int) -> UnsafePointer<UInt8> {
        let rowLength = size * c
        Self.ensure(&bytes, &bytesCapacity, size * rowLength)
        let x0 = max(0, -dx), x1 = min(size, width - dx)  // output columns inside the image (unmirrored)
        for y in 0..<size {
            let dst = bytes + y * rowLength
            let sy = dy + y
            guard sy >= 0, sy < height, x0 < x1 else { dst.initialize(repeating: 0, count: rowLength); continue }
            let src = source + sy * width * c
            if !flip {
                if x0 > 0 { dst.initialize(repeating: 0, count: x0 * c) }
                (dst + x0 * c).update(from: src + (dx + x0) * c, count: (x1 - x0) * c)
                if x1 < size { (dst + x1 * c).initialize(repeating: 0, count: (size - x1) * c) }
            } else {
                // Mirrored: output x shows unmirrored column size−1−x.
                for x in 0..<size {
                    let u = size - 1 - x
                    let o = dst + x * c
                    if u < x0 || u >= x1 { for k in 0..<c { o[k] = 0 } } else {
                        let p = src + (dx + u) * c
                        for k in 0..<c { o[k] = p[k] }
                    }
                }
            }
        }
        return UnsafePointer(bytes)
    }

    /// Both axes are gathers: output pixel (x, y) is source pixel (xs.first[x], ys.first[y]), or zero.
    private func gather(_ source: UnsafePointer<UInt8>, width: Int, channels c: Int, xs: AxisTable, ys: AxisTable,
                        size: Int) -> UnsafePointer<UInt8> {
        let rowLength = size * c
        Self.ensure(&bytes, &bytesCapacity, size * rowLength)
        for y in 0..<size {
            let dst = bytes + y * rowLength
            let sy = Int(ys.first[y])
            if sy < 0 { dst.initialize(repeating: 0, count: rowLength); continue }
            let src = source + sy * width * c
            for x in 0..<size {
                let sx = Int(xs.first[x])
                if sx < 0 { for k in 0..<c { dst[x * c + k] = 0 } } else { for k in 0..<c { dst[x * c + k] = src[sx * c + k] } }
            }
        }
        return UnsafePointer(bytes)
    }

    /// The horizontal pass over source rows `rows`: output value (x, k) of row r goes to
    /// `dst[r·rowStride + x·pixelStride + k·channelStride]` (interleaved: pixelStride = channels,
    /// channelStride = 1; planar: 1 and the plane's length). Three channels take one SIMD4 per pixel,
    /// the same sums per lane as one channel at a time, so both layouts hold identical values.
    static func horizontalPass(_ source: UnsafePointer<UInt8>, width: Int, channels c: Int, xs: AxisTable, rows: Range<Int>,
                               size: Int, into dst: UnsafeMutablePointer<Float>, rowStride: Int, pixelStride: Int, channelStride: Int) {
        xs.first.withUnsafeBufferPointer { first in
            xs.taps.withUnsafeBufferPointer { taps in
                xs.weights.withUnsafeBufferPointer { weights in
                    for (r, sourceRow) in rows.enumerated() {
                        let src = source + sourceRow * width * c
                        let row = dst + r * rowStride
                        for x in 0..<size {
                            let out = row + x * pixelStride
                            let f = Int(first[x])
                            if f < 0 { for k in 0..<c { out[k * channelStride] = 0 }; continue }
                            let n = Int(taps[x]), w = weights.baseAddress! + x * xs.stride
                            if c == 1 {
                                var s: Float = 0
                                for t in 0..<n { s += w[t] * Float(src[f + t]) }
                                out[0] = s
                            } else if c == 3 && n == 2 && f + 2 < width {
                                // Two taps (every upsampling output): unrolled. 0 + w₀v₀ is w₀v₀ exactly
                                // (never −0), so this is the loop below, bit for bit.
                                let p = UnsafeRawPointer(src + f * 3)
                                let v0 = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD4<UInt8>.self)))
                                let v1 = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 3, as: SIMD4<UInt8>.self)))
                                let s = w[0] * v0 + w[1] * v1
                                out[0] = s[0]; out[channelStride] = s[1]; out[2 * channelStride] = s[2]
                            } else if c == 3 && f + n < width {
                                // One pixel per SIMD4 (its fourth lane is the next pixel's red, unused):
                                // reading 4 bytes stays inside the row because pixel f + n exists.
                                var s = SIMD4<Float>(repeating: 0)
                                for t in 0..<n {
                                    let v = UnsafeRawPointer(src + (f + t) * 3).loadUnaligned(as: SIMD4<UInt8>.self)
                                    s += w[t] * SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: v))
                                }
                                out[0] = s[0]; out[channelStride] = s[1]; out[2 * channelStride] = s[2]
                            } else {
                                for k in 0..<c {
                                    var s: Float = 0
                                    for t in 0..<n { s += w[t] * Float(src[(f + t) * c + k]) }
                                    out[k * channelStride] = s
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `dst = w·src` (or `dst += w·src` when `accumulate`), eight lanes at a time.
    @inline(__always)
    private static func weightedRow(_ src: UnsafePointer<Float>, by w: Float, into dst: UnsafeMutablePointer<Float>, count: Int,
                                    accumulate: Bool) {
        var i = 0
        let wv = SIMD8<Float>(repeating: w)
        while i + 8 <= count {
            let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self) * wv
            let d = accumulate ? UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self) + v : v
            UnsafeMutableRawPointer(dst + i).storeBytes(of: d, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { dst[i] = (accumulate ? dst[i] : 0) + src[i] * w; i += 1 }
    }
}

/// The naive twin of the loader's internal `Resampler`: every output pixel computed directly from the 2-D kernel in
/// Double, with no tables, no separable passes and no fast paths. Tests compare the two.
public enum ReferenceResampler {
    /// Renders `box` of an interleaved 8-bit image at `size × size`; values on the 0…255 scale.
    public static func render(_ source: [UInt8], width: Int, height: Int, channels: Int, box: CropBox, size: Int) -> [Double] {
        func axis(_ n: Int, _ origin: Double, _ extent: Double, _ j: Int) -> [(Int, Double)]? {
            let scale = extent / Double(size)
            let u = origin + (Double(j) + 0.5) * scale
            let support = max(1, scale), center = u - 0.5
            // Every pixel of the image, and the black padding beyond its edge that lies in the box.
            var taps: [(Int, Double)] = [], sum = 0.0
            for k in (min(0, Int(origin.rounded(.down))) - 1)...(max(n, Int((origin + extent).rounded(.up))) + 1) {
                let inImage = k >= 0 && k < n
                let inBox = Double(k) + 0.5 >= origin && Double(k) + 0.5 <= origin + extent
                guard inImage || inBox else { continue }
                let w = 1 - abs(Double(k) - center) / support
                guard w > 1e-9 else { continue }
                sum += w
                if inImage { taps.append((k, w)) }
            }
            return taps.isEmpty ? nil : taps.map { ($0.0, $0.1 / sum) }
        }
        var out = [Double](repeating: 0, count: size * size * channels)
        for y in 0..<size {
            guard let ty = axis(height, box.y * Double(height), box.height * Double(height), y) else { continue }
            for x in 0..<size {
                let xx = box.flip ? size - 1 - x : x
                guard let tx = axis(width, box.x * Double(width), box.width * Double(width), xx) else { continue }
                for c in 0..<channels {
                    var s = 0.0
                    for (ky, wy) in ty { for (kx, wx) in tx { s += wy * wx * Double(source[(ky * width + kx) * channels + c]) } }
                    out[(y * size + x) * channels + c] = s
                }
            }
        }
        return out
    }
}
