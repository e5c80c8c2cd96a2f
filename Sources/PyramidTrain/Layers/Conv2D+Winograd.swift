/// The Winograd F(2×2, 3×3) forward path (Lavin & Gray 2016): chunks of samples transformed,
/// multiplied in 16 GEMMs of depth Cin and transformed back.
extension Conv2D {
    /// Samples per Winograd chunk: the transformed input and products of a chunk,
    /// `16·(Cin + Cout)` values per tile, about ``Tuning/winogradChunkBytes``.
    func winogradChunk(tilesPerSample: Int) -> Int {
        max(1, tuning.winogradChunkBytes / (16 * (inChannels + outChannels) * tilesPerSample * 4))
    }

    /// Winograd forward of the chunk of samples `r`: transform, 16 GEMMs, inverse transform.
    static func winogradConvolve(_ xp: UnsafePointer<Float>, channels cin: Int, out cout: Int, weights u: UnsafePointer<Float>,
                                 batch n: Int, height h: Int, width w: Int, samples r: Range<Int>,
                                 v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, into yp: UnsafeMutablePointer<Float>) {
        let (th, tw) = Winograd.tiles(h, w)
        let t = r.count * th * tw
        Winograd.transformInput(xp, channels: cin, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound, into: v)
        for xi in 0..<16 {
            gemm(transA: false, transB: false, m: cout, n: t, k: cin, a: u + xi * cout * cin, lda: cin,
                 b: v + xi * cin * t, ldb: t, beta: 0, c: m + xi * cout * t, ldc: t)
        }
        Winograd.transformOutput(m, channels: cout, batch: n, height: h, width: w, n0: r.lowerBound, n1: r.upperBound, into: yp)
    }

    /// The Winograd chunks of a batch of `n` (at least one per thread) and, per thread, the
    /// transformed-input and product buffers of the largest chunk.
    func winogradBuffers(batch n: Int, height h: Int, width w: Int) -> (chunks: Int, [(UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)]) {
        let parts = min(Threads.count, n)
        let (th, tw) = Winograd.tiles(h, w)
        let chunks = Conv2D.chunks(batch: n, samplesPerChunk: winogradChunk(tilesPerSample: th * tw))
        let t = ((n - 1) / chunks + 1) * th * tw, size = 16 * max(inChannels, outChannels) * t
        return (chunks, (0..<parts).map { (scratch(&winogradA, $0, size), scratch(&winogradB, $0, size)) })
    }

    func winogradForward(_ xp: UnsafePointer<Float>, channels cin: Int, out cout: Int, weights u: UnsafePointer<Float>,
                         batch n: Int, height h: Int, width w: Int, into yp: UnsafeMutablePointer<Float>) {
        let (chunks, bufs) = winogradBuffers(batch: n, height: h, width: w)
        parallelChunks(chunks, workers: bufs.count) { worker, c in
            let r = partRange(c, of: chunks, count: n)
            Conv2D.winogradConvolve(xp, channels: cin, out: cout, weights: u, batch: n, height: h, width: w,
                                    samples: r, v: bufs[worker].0, m: bufs[worker].1, into: yp)
        }
    }
}
