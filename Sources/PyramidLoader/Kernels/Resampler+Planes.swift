/// The float32 output path: a view rendered straight into the batch's planes (NCHW), normalized.
///
/// Same arithmetic as ``Resampler/render(_:width:height:channels:box:size:)`` followed by the
/// per-channel `v · scale + offset`, in the same order, so the values are bit-identical; but the
/// shared horizontal pass writes planar rows, and the vertical pass normalizes and stores into the
/// output plane directly: no interleaved intermediate image and no separate de-interleaving pass.
extension Resampler {
    /// Renders `box` of `source` (`width × height × channels`, interleaved) at `size × size` into
    /// `channels` planes at `destination` (plane `k` at `destination + k·planeStride`, by default
    /// `k·size²`), each value
    /// `v · scale[k] + offset[k]`; `lut[k][b]` must equal `Float(b) · scale[k] + offset[k]`.
    func renderPlanes(_ source: UnsafePointer<UInt8>, width: Int, height: Int, channels c: Int, box: CropBox, size: Int,
                      scale: [Float], offset: [Float], lut: [[Float]], into destination: UnsafeMutablePointer<Float>,
                      planeStride: Int? = nil) {
        let plane = size * size, stride = planeStride ?? plane
        let plan = Self.plan(width: width, height: height, box: box, size: size)
        if let bytes = bytesIfNoArithmetic(source, width: width, height: height, channels: c, box: box, size: size, plan: plan) {
            // No arithmetic: bytes through the table.
            for k in 0..<c {
                lut[k].withUnsafeBufferPointer { table in
                    let out = destination + k * stride
                    for i in 0..<plane { out[i] = table[Int(bytes[i * c + k])] }
                }
            }
            return
        }
        guard case .tables(let xt, let yt) = plan else { preconditionFailure("a shift needs no arithmetic") }
        let lo = yt.lo, rowCount = lo > yt.hi ? 0 : yt.hi - lo + 1  // lo > hi: every output row is padding
        // Planar rows: channel k's row r at rows + (k·rowCount + r)·size.
        Self.ensure(&rows, &rowsCapacity, max(1, c * rowCount * size))
        let rowPlane = rowCount * size
        Self.horizontalPass(source, width: width, channels: c, xs: xt, rows: lo..<(lo + rowCount), size: size, into: rows,
                            rowStride: size, pixelStride: 1, channelStride: rowPlane)
        // Vertical pass per plane, normalized on the way out: (Σ_t w_t · row_t) · scale + offset.
        yt.weights.withUnsafeBufferPointer { weights in
            for k in 0..<c {
                let a = scale[k], b = offset[k]
                let av = SIMD8<Float>(repeating: a), bv = SIMD8<Float>(repeating: b)
                let planeRows = rows + k * rowPlane
                for y in 0..<size {
                    let out = destination + k * stride + y * size
                    let f = Int(yt.first[y])
                    if f < 0 { out.initialize(repeating: 0 * a + b, count: size); continue }
                    let n = max(1, Int(yt.taps[y]))
                    let w = weights.baseAddress! + y * yt.stride
                    let base = planeRows + (f - lo) * size
                    var i = 0
                    while i + 8 <= size {
                        let acc = Self.columnSum8(base + i, rowStride: size, taps: n, weights: w)
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
