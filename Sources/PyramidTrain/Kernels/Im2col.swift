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
        if stride == 1 && ho == height && wo == width {
            sameIm2col(x, channels: channels, batch: batch, height: height, width: width, n0: n0, n1: n1,
                       kernel: kernel, padding: padding, col: col)
            return
        }
        forEachOutputRow(channels: channels, batch: batch, height: height, width: width, n0: n0, n1: n1,
                         kernel: kernel, stride: stride, padding: padding, outHeight: ho, outWidth: wo) { colOffset, rowOffset, kx in
            let dst = col + colOffset
            guard let rowOffset else { for ox in 0..<wo { dst[ox] = 0 }; return }
            let row = x + rowOffset
            let (lo, hi, offset) = columnRange(kx: kx, padding: padding, stride: stride, width: width, outWidth: wo)
            // Rows are short (7–32): plain loops beat memmove/memset calls.
            var ox = 0
            while ox < min(lo, wo) { dst[ox] = 0; ox += 1 }
            if stride == 1 {
                let from = row + offset
                while ox < hi { dst[ox] = from[ox]; ox += 1 }
            } else {
                while ox < hi { dst[ox] = row[ox * stride + offset]; ox += 1 }
            }
            while ox < wo { dst[ox] = 0; ox += 1 }
        }
    }

    /// Output columns `lo..<hi` are those whose input column `ox·stride + offset` (offset = kx − padding)
    /// lies inside `0..<width`; the others read zero padding.
    @inline(__always)
    static func columnRange(kx: Int, padding: Int, stride: Int, width: Int, outWidth wo: Int) -> (lo: Int, hi: Int, offset: Int) {
        let off = kx - padding
        let lo = off >= 0 ? 0 : (-off + stride - 1) / stride
        let hi = width - 1 - off < 0 ? 0 : min(wo, (width - 1 - off) / stride + 1)
        return (lo, hi, off)
    }

    /// The loop nest im2col and col2im share: for every column-matrix row `(c, ky, kx)`, sample `n`
    /// and output row `oy`, in memory order of `col`, calls `body` with the offset of that output
    /// row in `col`, the offset of input row `iy = oy·stride − padding + ky` of plane `(c, n)` (nil
    /// when `iy` is padding) and `kx`.
    @inline(__always)
    static func forEachOutputRow(channels: Int, batch: Int, height: Int, width: Int, n0: Int, n1: Int, kernel: Int, stride: Int,
                                 padding: Int, outHeight ho: Int, outWidth wo: Int, _ body: (Int, Int?, Int) -> Void) {
        let plane = height * width, cols = (n1 - n0) * ho * wo
        for c in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var colOffset = ((c * kernel + ky) * kernel + kx) * cols
                    for n in n0..<n1 {
                        let planeOffset = (c * batch + n) * plane
                        for oy in 0..<ho {
                            let iy = oy * stride - padding + ky
                            body(colOffset, iy >= 0 && iy < height ? planeOffset + iy * width : nil, kx)
                            colOffset += wo
                        }
                    }
                }
            }
        }
    }

    /// im2col of a "same" convolution (stride 1, output as large as the input). Block `(c, ky, kx)`
    /// is channel `c` of samples `n0..<n1` shifted by `(ky−p)·W + (kx−p)` in flat memory, with the
    /// pixels whose source lies outside their own plane (they would come from a neighbouring row
    /// or sample) zeroed by a mask. So a block is one masked SIMD copy over runs of several planes,
    /// whatever the plane size (4×4 planes at 14 px were 10x slower than a memcpy per row or plane).
    /// The loop is C (`same_im2col`, ``InstructionSet``).
    static func sameIm2col(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                           n0: Int, n1: Int, kernel: Int, padding: Int, col: UnsafeMutablePointer<Float>) {
        Kernels.k.same_im2col(x, channels, batch, h, w, n0, n1, kernel, padding, col)
    }

    /// Adds `col` back into `gradX` (the adjoint of ``im2col``).
    static func col2im(_ col: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                       n0: Int, n1: Int, kernel: Int, stride: Int, padding: Int, gradX: UnsafeMutablePointer<Float>) {
        let ho = outputSize(height, kernel: kernel, stride: stride, padding: padding)
        let wo = outputSize(width, kernel: kernel, stride: stride, padding: padding)
        forEachOutputRow(channels: channels, batch: batch, height: height, width: width, n0: n0, n1: n1,
                         kernel: kernel, stride: stride, padding: padding, outHeight: ho, outWidth: wo) { colOffset, rowOffset, kx in
            guard let rowOffset else { return }
            let src = col + colOffset, row = gradX + rowOffset
            let (lo, hi, offset) = columnRange(kx: kx, padding: padding, stride: stride, width: width, outWidth: wo)
            var ox = lo
            if stride == 1 {
                while ox < hi { row[ox + offset] += src[ox]; ox += 1 }
            } else {
                while ox < hi { row[ox * stride + offset] += src[ox]; ox += 1 }
            }
        }
    }
}
