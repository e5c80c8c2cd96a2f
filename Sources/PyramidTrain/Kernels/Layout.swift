/// Moves of whole planes between layouts: the loader's `(N, C, H, W)` to the model's `(C, N, H, W)`,
/// and the option-A shortcut's strided, channel-padded copy and its adjoint.
extension Kernels {
    /// `dst(C, N, plane) = src(N, C, plane)`.
    static func samplesToChannels(_ src: UnsafePointer<Float>, count n: Int, channels c: Int, plane: Int, into dst: UnsafeMutablePointer<Float>) {
        for k in 0..<n { for ch in 0..<c {
            (dst + (ch * n + k) * plane).update(from: src + (k * c + ch) * plane, count: plane)
        } }
    }

    /// Shape of a channel-padded, strided shortcut: input `(Cin, N, H, W)`, output `(Cout, N, Ho, Wo)`,
    /// input channel `c` at output channel `c + offset`, pixel `(y·stride, x·stride)` at `(y, x)`.
    struct PaddedShortcut {
        var inChannels: Int, batch: Int, height: Int, width: Int, outHeight: Int, outWidth: Int, stride: Int, offset: Int

        /// Calls `body(input index, output index)` for every pixel the shortcut carries.
        @inline(__always)
        func forEachPair(_ body: (Int, Int) -> Void) {
            for c in 0..<inChannels { for s in 0..<batch { for y in 0..<outHeight { for x in 0..<outWidth {
                body(((c * batch + s) * height + y * stride) * width + x * stride, (((c + offset) * batch + s) * outHeight + y) * outWidth + x)
            } } } }
        }

        /// `y` = the shortcut of `x` (`y` zeroed first).
        func forward(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, outCount: Int) {
            y.update(repeating: 0, count: outCount)
            forEachPair { i, o in y[o] = x[i] }
        }

        /// `gradX += ` the adjoint of the shortcut applied to `gradY`.
        func backward(_ gradY: UnsafePointer<Float>, adding gradX: UnsafeMutablePointer<Float>) {
            forEachPair { i, o in gradX[i] += gradY[o] }
        }
    }
}
