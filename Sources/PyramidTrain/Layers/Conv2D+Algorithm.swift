/// Which method computes a 3×3 "same" convolution: im2col + GEMM or Winograd F(2×2, 3×3).
extension Conv2D {
    /// How 3×3, stride-1, padding-1 convolutions are computed.
    public enum Algorithm: String, CaseIterable, Sendable {
        /// Winograd where it was measured faster than im2col (``Conv2D/automaticAlgorithm(inChannels:outChannels:kernel:stride:height:width:)``), else im2col.
        case auto
        /// Always im2col + GEMM.
        case im2col
        /// Always Winograd F(2×2, 3×3).
        case winograd
    }

    /// How a convolution computes: the algorithm of 3×3 "same" convolutions and the sizes of the
    /// chunks it works in. Every value gives the same results up to rounding (~1e-6 relative); the
    /// defaults are the fastest measured here. Set per layer (``Conv2D/tuning``) or for a whole
    /// model (``Network/convolutionTuning``).
    public struct Tuning: Equatable, Sendable {
        /// The algorithm for 3×3, stride-1, padding-1 convolutions (``Algorithm/auto`` by default).
        public var algorithm = Algorithm.auto
        /// Size of the column matrix built and multiplied at a time (0: a whole batch part at once).
        ///
        /// A part's columns at 28 px are ~29 MB per layer; built whole, they go to memory and come
        /// back when OpenBLAS packs them, and training kept them all (~660 MB for ResNet-20) for the
        /// weight gradient. Built one chunk of samples at a time they are still in cache when packed,
        /// and backward rebuilds them per chunk. Measured here (`pyramid bench train`, alternating
        /// settings): 1 MiB was among the fastest of 0.25–4 MiB and ~10% faster than whole parts.
        public var chunkBytes = 1 << 20
        /// Bytes of transformed input and products handled at a time by the Winograd path.
        public var winogradChunkBytes = 512 << 10
        public init(algorithm: Algorithm = .auto, chunkBytes: Int = 1 << 20, winogradChunkBytes: Int = 512 << 10) {
            self.algorithm = algorithm; self.chunkBytes = chunkBytes; self.winogradChunkBytes = winogradChunkBytes
        }
    }

    /// Whether a forward or backward on `height × width` planes uses Winograd F(2×2, 3×3)
    /// (Lavin & Gray 2016): 2.25× fewer multiplies in 16 GEMMs of depth Cin, plus input and output
    /// transforms. With ``Algorithm/auto``, for planes of at least 8×8 with even sides and at
    /// least 8 channels in and out: measured here (`pyramid bench conv`) 10–25% faster than im2col
    /// for 16 channels at 28, 14, 12 and 10 px, 32 channels at 14 and 10 px and 64 channels at 8 px,
    /// about even for 16 channels at 8 px and 64 at 6 px, slower at 4 px, for odd sides (7 px:
    /// tiles padded to 8) and for the few input channels of a stem.
    func usesWinograd(height h: Int, width w: Int) -> Bool {
        guard kernel == 3 && stride == 1 && padding == 1 else { return false }
        switch tuning.algorithm {
        case .im2col: return false
        case .winograd: return true
        case .auto:
            return Conv2D.automaticAlgorithm(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                                             height: h, width: w) == .winograd
        }
    }

    /// What ``Algorithm/auto`` picks for a convolution with padding `kernel / 2` on `height × width`
    /// planes: Winograd for 3×3, stride 1, even sides, at least 8×8 and at least 8 channels in and
    /// out, im2col otherwise. Measured on the AMD EPYC Zen 4 (`pyramid bench conv`, libxsmm, weight
    /// gradients on OpenBLAS): Winograd's forward and backward 1.3–2x faster than im2col's at
    /// 16→16 on 32 and 28 px, 32→32 on 14 px and 16→16 on 14 px; about even at 7×7 (odd: im2col) and
    /// slower at 4×4 (docs/performance.md).
    public static func automaticAlgorithm(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, height h: Int, width w: Int) -> Algorithm {
        return kernel == 3 && stride == 1 && inChannels >= 8 && outChannels >= 8 && h % 2 == 0 && w % 2 == 0 && h * w >= 64
            ? .winograd : .im2col
    }
}
