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
                                for ox in 0..<wo {
                                    let ix = ox * stride - padding + kx
                                    dst[ox] = (ix < 0 || ix >= width) ? 0 : row[ix]
                                }
                            }
                            dst += wo
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
                                    for ox in 0..<wo {
                                        let ix = ox * stride - padding + kx
                                        if ix >= 0 && ix < width { row[ix] += src[ox] }
                                    }
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
