/// Pooling over `(C, N, H, W)` planes: global averages and `k × k` windows with stride `k`.
extension Kernels {
    /// `y[s·c + ch] = mean of plane (ch, s)`: `(C, N, plane)` to `(N, C)`.
    static func averagePlanes(_ x: UnsafePointer<Float>, channels c: Int, batch n: Int, plane: Int, into y: UnsafeMutablePointer<Float>) {
        let inv = 1 / Float(plane)
        for ch in 0..<c { for s in 0..<n {
            // A plain running sum (not ``sum(_:_:)``'s 64 accumulators): the order fixes the rounding.
            let src = x + (ch * n + s) * plane
            var total: Float = 0
            for i in 0..<plane { total += src[i] }
            y[s * c + ch] = total * inv
        } }
    }

    /// The adjoint of ``averagePlanes(_:channels:batch:plane:into:)``: every pixel of plane `(ch, s)`
    /// gets `gradY[s·c + ch] / plane`.
    static func spreadPlanes(_ gradY: UnsafePointer<Float>, channels c: Int, batch n: Int, plane: Int, into gradX: UnsafeMutablePointer<Float>) {
        let inv = 1 / Float(plane)
        for ch in 0..<c { for s in 0..<n { (gradX + (ch * n + s) * plane).update(repeating: gradY[s * c + ch] * inv, count: plane) } }
    }

    /// Max (recording each window's argmax in `argmax`) or average of `size × size` windows with
    /// stride `size` over `planes` planes of `h × w`.
    static func pool(_ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int, size: Int, max isMax: Bool,
                     into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?) {
        let ho = h / size, wo = w / size
        for plane in 0..<planes {
            let src = x + plane * h * w, dst = y + plane * ho * wo
            for oy in 0..<ho { for ox in 0..<wo {
                var best = -Float.infinity, at = 0, total: Float = 0
                for dy in 0..<size { for dx in 0..<size {
                    let i = (oy * size + dy) * w + ox * size + dx
                    total += src[i]
                    if src[i] > best { best = src[i]; at = i }
                } }
                let o = oy * wo + ox
                if isMax { dst[o] = best; argmax?[plane * ho * wo + o] = Int32(at) } else { dst[o] = total / Float(size * size) }
            } }
        }
    }

    /// The adjoint of ``pool(_:planes:height:width:size:max:into:argmax:)`` into a zeroed `gradX`:
    /// to each window's argmax (max) or spread evenly (average).
    static func poolBackward(_ gradY: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int, size: Int,
                             argmax: UnsafePointer<Int32>?, into gradX: UnsafeMutablePointer<Float>) {
        let ho = h / size, wo = w / size
        for plane in 0..<planes {
            let dst = gradX + plane * h * w, src = gradY + plane * ho * wo
            for o in 0..<(ho * wo) {
                if let argmax { dst[Int(argmax[plane * ho * wo + o])] += src[o]; continue }
                let oy = o / wo, ox = o % wo, v = src[o] / Float(size * size)
                for dy in 0..<size { for dx in 0..<size { dst[(oy * size + dy) * w + ox * size + dx] += v } }
            }
        }
    }
}
