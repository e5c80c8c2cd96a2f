/// Winograd F(2×2, 3×3) for 3×3, stride-1, padding-1 convolutions over `(C, N, H, W)` (Lavin &
/// Gray 2016): each 2×2 output tile is `Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A` summed over input channels,
/// so the channel sums become 16 GEMMs (one per transformed position ξ) with 2.25× fewer
/// multiplies than im2col, on matrices 4/9 the size of im2col's columns.
///
/// Layouts: transformed weights `U[ξ][cout][cin]`; transformed input `V[ξ][c][t]` and products
/// `M[ξ][cout][t]`, where `t` numbers the tiles of samples `n0..<n1` (`t = ((n−n0)·th + i)·tw + j`,
/// `th = ⌈H/2⌉`, `tw = ⌈W/2⌉`). Odd sizes are padded with zeros and cropped.
enum Winograd {
    static func tiles(_ h: Int, _ w: Int) -> (Int, Int) { ((h + 1) / 2, (w + 1) / 2) }

    /// `U = G g Gᵀ` for every (cout, cin) of a `(Cout, Cin, 3, 3)` weight, with
    /// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`; columns of the kernel as SIMD lanes.
    static func transformWeights(_ g: UnsafePointer<Float>, cout: Int, cin: Int, into u: UnsafeMutablePointer<Float>) {
        let plane = cout * cin
        for o in 0..<cout {
            for i in 0..<cin {
                let k = g + (o * cin + i) * 9
                // Rows of the kernel, then of G g (four rows of three).
                let g0 = SIMD4<Float>(k[0], k[1], k[2], 0), g1 = SIMD4<Float>(k[3], k[4], k[5], 0), g2 = SIMD4<Float>(k[6], k[7], k[8], 0)
                let rows = (g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2)
                @inline(__always) func put(_ r: Int, _ q: SIMD4<Float>) {
                    let out = u + r * 4 * plane + o * cin + i
                    out[0] = q[0]; out[plane] = (q[0] + q[1] + q[2]) * 0.5; out[2 * plane] = (q[0] - q[1] + q[2]) * 0.5; out[3 * plane] = q[2]
                }
                put(0, rows.0); put(1, rows.1); put(2, rows.2); put(3, rows.3)
            }
        }
    }

    /// `dg += Gᵀ dU G` for every (cout, cin) (the adjoint of ``transformWeights(_:cout:cin:into:)``).
    static func accumulateWeightGradient(_ du: UnsafePointer<Float>, cout: Int, cin: Int, into gw: UnsafeMutablePointer<Float>) {
        let plane = cout * cin
        for o in 0..<cout {
            for i in 0..<cin {
                @inline(__always) func row(_ r: Int) -> SIMD4<Float> {
                    let p = du + r * 4 * plane + o * cin + i
                    return SIMD4(p[0], p[plane], p[2 * plane], p[3 * plane])
                }
                let u0 = row(0), u1 = row(1), u2 = row(2), u3 = row(3)
                // Gᵀ dU: three rows of four, then (·) G: three columns.
                let h0 = u0 + 0.5 * (u1 + u2), h1 = 0.5 * (u1 - u2), h2 = 0.5 * (u1 + u2) + u3
                let g = gw + (o * cin + i) * 9
                @inline(__always) func add(_ r: Int, _ h: SIMD4<Float>) {
                    g[r * 3 + 0] += h[0] + 0.5 * (h[1] + h[2])
                    g[r * 3 + 1] += 0.5 * (h[1] - h[2])
                    g[r * 3 + 2] += 0.5 * (h[1] + h[2]) + h[3]
                }
                add(0, h0); add(1, h1); add(2, h2)
            }
        }
    }

    /// `V = Bᵀ d B` for every channel and tile of samples `n0..<n1`, in two passes per plane
    /// (C: `winograd_input`, one version per ``InstructionSet``). Horizontal: each padded input
    /// row's four transforms (`x₂ⱼ₋₁ − x₂ⱼ₊₁`, `x₂ⱼ + x₂ⱼ₊₁`, `x₂ⱼ₊₁ − x₂ⱼ`, `x₂ⱼ − x₂ⱼ₊₂`, on the
    /// row split into even and odd columns), stored so that padded rows 2k and 2k+1 are in separate
    /// arrays, row k of each. Vertical: tile `(i, j)` combines padded rows 2i … 2i+3, which in those
    /// arrays sit at the tile's own flat index `i·tw + j` and one row of tiles further, so all tiles
    /// of a plane are one contiguous pass per output.
    static func transformInput(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                               n0: Int, n1: Int, into v: UnsafeMutablePointer<Float>) {
        Kernels.k.winograd_input(x, channels, batch, h, w, n0, n1, v)
    }

    /// `Y = Aᵀ M A` into the `(Cout, N, H, W)` output, cropping odd edges, in two passes per plane
    /// (C: `winograd_output`): vertical over all tiles of the plane at once (`m₀ + m₁ + m₂` and
    /// `m₁ − m₂ − m₃` per column of the tile), then horizontal, interleaving even and odd columns.
    static func transformOutput(_ m: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                                n0: Int, n1: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.k.winograd_output(m, channels, batch, h, w, n0, n1, y)
    }

    /// `dM = A dY Aᵀ` for every channel and tile (the adjoint of ``transformOutput(_:channels:batch:height:width:n0:n1:into:)``;
    /// C: `winograd_grad_output`): each tile's 2×2 gradient split into even and odd columns of its
    /// upper and lower row over the whole plane, then the 16 outputs as contiguous passes over the tiles.
    static func transformGradOutput(_ dy: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                                    n0: Int, n1: Int, into dm: UnsafeMutablePointer<Float>) {
        Kernels.k.winograd_grad_output(dy, channels, batch, h, w, n0, n1, dm)
    }
}
