/// im2col and col2im over the `(C, N, H, W)` layout, for the samples `n0..<n1`.
///
/// `col` is `(C·k·k, (n1−n0)·Ho·Wo)`: row `(c, ky, kx)`, column `(n, oy, ox)` holds input
/// `(c, n, oy·stride − pad + ky, ox·stride − pad + kx)`, zero outside the image.
enum Im2col {
    static func outputSize(_ input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (input + 2 * padding - kernel) / stride + 1
    }

    static func im2col(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                       n0: Int, n1: Int, kernel: Int, stride: Int, padding: Int, col: UnsafeMutablePointer<Float>) {
        let ho = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let wo = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let plane = height * width, cols = (n1 - n0) * ho * wo
        if stride == 1 && ho == height && wo == width {
            sameIm2col(x, channels: channels, batch: batch, height: height, width: width, n0: n0, n1: n1,
                       kernel: kernel, padding: padding, col: col)
            return
        }
        for c in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var dst = col + ((c * kernel + ky) * kernel + kx) * cols
                    for n in n0..<n1 {
                        let src = x + (c * batch + n) * plane
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            if iy < 0 || iy >= height { for ox in 0..<wo { dst[ox] = 0 }; dst += wo; continue }
                            let row = src + iy * width
                            if stride == 1 {
                                // ix = ox − padding + kx: a shifted copy with zero ends.
                                let shift = kx - padding
                                let lo = max(0, -shift), hi = min(wo, width - shift)
                                // Rows are short (7–32): plain loops beat memmove/memset calls.
                                var ox = 0
                                while ox < lo { dst[ox] = 0; ox += 1 }
                                let from = row + shift
                                while ox < hi { dst[ox] = from[ox]; ox += 1 }
                                while ox < wo { dst[ox] = 0; ox += 1 }
                            } else {
                                // ix = ox·stride − padding + kx is inside for ox in lo..<hi.
                                let off = kx - padding
                                let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
                                let hi = width - 1 - off < 0 ? 0 : min(wo, (width - 1 - off) / stride + 1)
                                var ox = 0
                                while ox < min(lo, wo) { dst[ox] = 0; ox += 1 }
                                while ox < hi { dst[ox] = row[ox * stride + off]; ox += 1 }
                                while ox < wo { dst[ox] = 0; ox += 1 }
                            }
                            dst += wo
                        }
                    }
                }
            }
        }
    }

    /// im2col of a "same" convolution (stride 1, output as large as the input): for every
    /// (channel, ky, kx, sample) the block is the input plane shifted by (ky−p, kx−p), so it is
    /// one contiguous copy plus zeroed border rows and columns, not one short copy per row.
    static func sameIm2col(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                           n0: Int, n1: Int, kernel: Int, padding: Int, col: UnsafeMutablePointer<Float>) {
        let plane = h * w, cols = (n1 - n0) * plane
        for c in 0..<channels {
            for ky in 0..<kernel {
                let dy = ky - padding
                let y0 = max(0, -dy), y1 = min(h, h - dy)  // output rows with a source row
                for kx in 0..<kernel {
                    let dx = kx - padding
                    let block = col + ((c * kernel + ky) * kernel + kx) * cols
                    for n in n0..<n1 {
                        let src = x + (c * batch + n) * plane
                        let dst = block + (n - n0) * plane
                        if y0 > 0 { dst.update(repeating: 0, count: y0 * w) }
                        if y1 < h { (dst + y1 * w).update(repeating: 0, count: (h - y1) * w) }
                        guard y1 > y0 else { continue }
                        // dst[y·w + x] = src[(y+dy)·w + x + dx] for the middle rows, as one copy whose
                        // first/last element may fall outside the plane (those are border columns).
                        var first = y0 * w, last = y1 * w  // dst range
                        let offset = dy * w + dx           // src index − dst index
                        while first < last && first + offset < 0 { dst[first] = 0; first += 1 }
                        while last > first && last + offset > plane { dst[last - 1] = 0; last -= 1 }
                        if last > first { (dst + first).update(from: src + first + offset, count: last - first) }
                        if dx < 0 {
                            for y in y0..<y1 { for k in 0..<(-dx) { dst[y * w + k] = 0 } }
                        } else if dx > 0 {
                            for y in y0..<y1 { for k in (w - dx)..<w { dst[y * w + k] = 0 } }
                        }
                    }
                }
            }
        }
    }

    /// Adds `col` back into `gradX` (the adjoint of ``im2col``).
    static func col2im(_ col: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                       n0: Int, n1: Int, kernel: Int, stride: Int, padding: Int, gradX: UnsafeMutablePointer<Float>) {
        let ho = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let wo = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        let plane = height * width, cols = (n1 - n0) * ho * wo
        for c in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var src = col + ((c * kernel + ky) * kernel + kx) * cols
                    for n in n0..<n1 {
                        let dst = gradX + (c * batch + n) * plane
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            if iy >= 0 && iy < height {
                                let row = dst + iy * width
                                if stride == 1 {
                                    let shift = kx - padding
                                    let lo = max(0, -shift), hi = min(wo, width - shift)
                                    var ox = lo
                                    while ox < hi { row[ox + shift] += src[ox]; ox += 1 }
                                } else {
                                    let off = kx - padding
                                    let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
                                    let hi = width - 1 - off < 0 ? 0 : min(wo, (width - 1 - off) / stride + 1)
                                    var ox = lo
                                    while ox < hi { row[ox * stride + off] += src[ox]; ox += 1 }
                                }
                            }
                            src += wo
                        }
                    }
                }
            }
        }
    }
}
