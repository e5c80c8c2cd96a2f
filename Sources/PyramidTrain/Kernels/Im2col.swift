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
        Kernels.k.im2col(x, channels, batch, height, width, n0, n1, kernel, stride, padding, col)
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

    /// Adds `col` back into `gradX` (the adjoint of ``im2col``; C: `col2im`).
    static func col2im(_ col: UnsafePointer<Float>, channels: Int, batch: Int, height: Int, width: Int,
                       n0: Int, n1: Int, kernel: Int, stride: Int, padding: Int, gradX: UnsafeMutablePointer<Float>) {
        Kernels.k.col2im(col, channels, batch, height, width, n0, n1, kernel, stride, padding, gradX)
    }
}
