/// The float32 output path: a view rendered straight into the batch's planes (NCHW), normalized.
///
/// Same arithmetic as ``Resampler/render(_:width:height:channels:box:size:)`` followed by the
/// per-channel `v · scale + offset`, in the same order, so the values are bit-identical; but the
/// horizontal pass works on whole pixels (the channels of one pixel are the lanes of one SIMD4), writes
/// planar rows, and the vertical pass normalizes and stores into the output plane directly: no
/// interleaved intermediate image and no separate de-interleaving pass.
extension Resampler {
    /// Renders `box` of `source` (`width × height × channels`, interleaved) at `size × size` into
    /// `channels` planes at `destination` (plane `k` at `destination + k·size²`), each value
    /// `v · scale[k] + offset[k]`; `lut[k][b]` must equal `Float(b) · scale[k] + offset[k]`.
    func renderPlanes(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels c: Int, box: CropBox, size: Int,
                      scale: [Float], offset: [Float], lut: [[Float]], into destination: UnsafeMutablePointer<Float>) {
        let plane = size * size
        let ox = box.x * Double(width), oy = box.y * Double(height)
        let unitScale = abs(box.width * Double(width) - Double(size)) < 1e-9 && abs(box.height * Double(height) - Double(size)) < 1e-9
            && abs(ox - ox.rounded()) < 1e-6 && abs(oy - oy.rounded()) < 1e-6
        let xs = unitScale ? nil : AxisTable(source: width, output: size, origin: ox, extent: box.width * Double(width), flip: box.flip)
        let ys = unitScale ? nil : AxisTable(source: height, output: size, origin: oy, extent: box.height * Double(height), flip: false)
        if unitScale || (xs!.isGather && ys!.isGather) {
            // No arithmetic: bytes through the table.
            guard case .bytes(let bytes) = render(source, width: width, height: height, channels: c, box: box, size: size) else {
                preconditionFailure("a gather renders bytes")
            }
            for k in 0..<c {
                lut[k].withUnsafeBufferPointer { table in
                    let out = destination + k * plane
                    for i in 0..<plane { out[i] = table[Int(bytes[i * c + k])] }
                }
            }
            return
        }
        let xt = xs!, yt = ys!
        let lo = yt.lo, rowCount = lo > yt.hi ? 0 : yt.hi - lo + 1  // lo > hi: every output row is padding
        // Planar rows: channel k's row r at rows + (k·rowCount + r)·size.
        Self.ensure(&rows, &rowsCapacity, max(1, c * rowCount * size))
        let rowPlane = rowCount * size
        xt.first.withUnsafeBufferPointer { first in
            xt.taps.withUnsafeBufferPointer { taps in
                xt.weights.withUnsafeBufferPointer { weights in
                    for r in 0..<rowCount {
                        let src = source + (lo + r) * width * c
                        let dst = rows + r * size
                        for x in 0..<size {
                            let f = Int(first[x])
                            if f < 0 { for k in 0..<c { dst[k * rowPlane + x] = 0 }; continue }
                            let n = Int(taps[x]), w = weights.baseAddress! + x * xt.stride
                            if c == 1 {
                                var s: Float = 0
                                for t in 0..<n { s += w[t] * Float(src[f + t]) }
                                dst[x] = s
                            } else if c == 3 && n == 2 && f + 2 < width {
                                // Two taps (every upsampling output): unrolled. 0 + w₀v₀ is w₀v₀ exactly
                                // (never −0), so this is the loop below, bit for bit.
                                let p = UnsafeRawPointer(src + f * 3)
                                let v0 = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD4<UInt8>.self)))
                                let v1 = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 3, as: SIMD4<UInt8>.self)))
                                let s = w[0] * v0 + w[1] * v1
                                dst[x] = s[0]; dst[rowPlane + x] = s[1]; dst[2 * rowPlane + x] = s[2]
                            } else if c == 3 && f + n < width {
                                // One pixel per SIMD4 (its fourth lane is the next pixel's red, unused):
                                // reading 4 bytes stays inside the row because pixel f + n exists.
                                var s = SIMD4<Float>(repeating: 0)
                                for t in 0..<n {
                                    let v = UnsafeRawPointer(src + (f + t) * 3).loadUnaligned(as: SIMD4<UInt8>.self)
                                    s += w[t] * SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: v))
                                }
                                dst[x] = s[0]; dst[rowPlane + x] = s[1]; dst[2 * rowPlane + x] = s[2]
                            } else {
                                for k in 0..<c {
                                    var s: Float = 0
                                    for t in 0..<n { s += w[t] * Float(src[(f + t) * c + k]) }
                                    dst[k * rowPlane + x] = s
                                }
                            }
                        }
                    }
                }
            }
        }
        // Vertical pass per plane, normalized on the way out: (Σ_t w_t · row_t) · scale + offset.
        yt.weights.withUnsafeBufferPointer { weights in
            for k in 0..<c {
                let a = scale[k], b = offset[k]
                let av = SIMD8<Float>(repeating: a), bv = SIMD8<Float>(repeating: b)
                let planeRows = rows + k * rowPlane
                for y in 0..<size {
                    let out = destination + k * plane + y * size
                    let f = Int(yt.first[y])
                    if f < 0 { out.initialize(repeating: 0 * a + b, count: size); continue }
                    let n = max(1, Int(yt.taps[y]))
                    let w = weights.baseAddress! + y * yt.stride
                    let base = planeRows + (f - lo) * size
                    var i = 0
                    while i + 8 <= size {
                        var acc = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self) * SIMD8<Float>(repeating: w[0])
                        for t in 1..<n {
                            acc += UnsafeRawPointer(base + t * size + i).loadUnaligned(as: SIMD8<Float>.self) * SIMD8<Float>(repeating: w[t])
                        }
                        UnsafeMutableRawPointer(out + i).storeBytes(of: acc * av + bv, as: SIMD8<Float>.self)
                        i += 8
                    }
                    while i < size {
                        var acc = base[i] * w[0]
                        for t in 1..<n { acc += base[t * size + i] * w[t] }
                        out[i] = acc * a + b
                        i += 1
                    }
                }
            }
        }
    }
}
