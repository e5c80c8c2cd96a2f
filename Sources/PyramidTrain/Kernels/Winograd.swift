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

    /// `body` over `count` positions eight at a time (the last eight overlapping the previous ones
    /// when `count` is not a multiple of eight), `tail` one at a time when fewer than eight.
    @inline(__always)
    static func map4(_ count: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>,
                     _ body: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, Int) -> Void,
                     _ tail: (Float, Float, Float, Float, Int) -> Void) {
        var i = 0
        while i + 8 <= count { body(Kernels.load(a + i), Kernels.load(b + i), Kernels.load(c + i), Kernels.load(d + i), i); i += 8 }
        if i < count && count >= 8 {
            // The last eight again (outputs never alias inputs, so recomputing is harmless).
            i = count - 8
            body(Kernels.load(a + i), Kernels.load(b + i), Kernels.load(c + i), Kernels.load(d + i), i)
            return
        }
        while i < count { tail(a[i], b[i], c[i], d[i], i); i += 1 }
    }

    /// `V = Bᵀ d B` for every channel and tile of samples `n0..<n1`, in two SIMD passes per
    /// plane. Horizontal: each padded input row's four transforms (`x₂ⱼ₋₁ − x₂ⱼ₊₁`, `x₂ⱼ + x₂ⱼ₊₁`,
    /// `x₂ⱼ₊₁ − x₂ⱼ`, `x₂ⱼ − x₂ⱼ₊₂`, even and odd columns split with SIMD), stored so that padded
    /// rows 2k and 2k+1 are in separate arrays, row k of each. Vertical: tile `(i, j)` combines
    /// padded rows 2i … 2i+3, which in those arrays sit at the tile's own flat index `i·tw + j` and
    /// one row of tiles further, so all tiles of a plane are one contiguous pass per output.
    static func transformInput(_ x: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                               n0: Int, n1: Int, into v: UnsafeMutablePointer<Float>) {
        let (th, tw) = tiles(h, w)
        let count = (n1 - n0) * th * tw, stride = channels * count, tilesPerPlane = th * tw
        // Padded rows 0 … 2·th+1 (input row y is padded row y + 1); evenRows[s] holds padded rows
        // 0, 2, …, 2·th (th + 1 rows of tw), oddRows[s] rows 1, 3, …, 2·th + 1.
        let block = (th + 1) * tw, xEnd = x + channels * batch * h * w
        // Even widths: the rows of one parity (input rows 0, 2, 4, … and 1, 3, 5, …, which land in
        // consecutive rows of oddRows and evenRows) are split into even and odd columns one after
        // another and transformed in one pass over all of them, the row ends masked, so planes
        // narrower than 16 are SIMD too.
        let groupLength = ((h + 1) / 2) * tw
        let capacity = 8 * block + 2 * (tw + 1) + 16 + (w % 2 == 0 ? 4 * (groupLength + 16) : 0)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: capacity) { buffer in
            let evenRows = buffer.baseAddress!, oddRows = evenRows + 4 * block
            let even = oddRows + 4 * block, odd = even + tw + 1
            let groupEven = odd + tw + 1 + 8, groupOdd = groupEven + groupLength + 16
            let notFirst = groupOdd + groupLength + 16, notLast = notFirst + groupLength + 16
            evenRows.update(repeating: 0, count: 8 * block)
            even[tw] = 0; odd[0] = 0
            if w % 2 == 0 {
                groupOdd[0] = 0
                for k in 0..<(groupLength + 8) {
                    notFirst[k] = k % tw == 0 ? 0 : 1
                    notLast[k] = k % tw == tw - 1 ? 0 : 1
                }
            }
            for c in 0..<channels {
                for n in n0..<n1 {
                    let src = x + (c * batch + n) * h * w
                    if w % 2 == 0 {
                        for parity in 0..<2 {
                            let rows = parity == 0 ? (h + 1) / 2 : h / 2, total = rows * tw
                            if rows == 0 { continue }
                            // Row y = parity + 2m is padded row y + 1: oddRows row m, or evenRows row m + 1.
                            let out = parity == 0 ? oddRows : evenRows + tw
                            for m in 0..<rows {
                                let row = src + (parity + 2 * m) * w
                                splitPairs(row, pairs: tw, even: groupEven + m * tw, odd: groupOdd + 1 + m * tw, spill: row + 16 <= xEnd)
                            }
                            let o0 = out, o1 = out + block, o2 = out + 2 * block, o3 = out + 3 * block
                            let zero = SIMD8<Float>(repeating: 0)
                            // x₂ⱼ₋₁ (0 at a row's start), x₂ⱼ, x₂ⱼ₊₁, x₂ⱼ₊₂ (0 at its end).
                            map4(total, groupOdd, groupEven, groupOdd + 1, groupEven + 1, { a, e, cc, e1, k in
                                let a = a.replacing(with: zero, where: Kernels.load(notFirst + k) .== zero)
                                let e1 = e1.replacing(with: zero, where: Kernels.load(notLast + k) .== zero)
                                Kernels.store(a - cc, o0 + k); Kernels.store(e + cc, o1 + k); Kernels.store(cc - e, o2 + k); Kernels.store(e - e1, o3 + k)
                            }, { a, e, cc, e1, k in
                                let a = notFirst[k] == 0 ? 0 : a, e1 = notLast[k] == 0 ? 0 : e1
                                o0[k] = a - cc; o1[k] = e + cc; o2[k] = cc - e; o3[k] = e - e1
                            })
                        }
                    } else {
                        for y in 0..<h {
                            let row = src + y * w
                            // even[j] = x[2j], odd[j + 1] = x[2j + 1], zero beyond the row.
                            split(row, width: w, even: even, odd: odd + 1)
                            let p = y + 1
                            let out = (p % 2 == 0 ? evenRows : oddRows) + (p / 2) * tw
                            let o0 = out, o1 = out + block, o2 = out + 2 * block, o3 = out + 3 * block
                            map4(tw, odd, odd + 1, even, even + 1, { a, cc, e, e1, j in
                                Kernels.store(a - cc, o0 + j); Kernels.store(e + cc, o1 + j); Kernels.store(cc - e, o2 + j); Kernels.store(e - e1, o3 + j)
                            }, { a, cc, e, e1, j in
                                o0[j] = a - cc; o1[j] = e + cc; o2[j] = cc - e; o3[j] = e - e1
                            })
                        }
                    }
                    let t = (n - n0) * tilesPerPlane
                    for s in 0..<4 {
                        let e = evenRows + s * block, o = oddRows + s * block
                        let out0 = v + s * stride + c * count + t, out1 = out0 + 4 * stride, out2 = out1 + 4 * stride, out3 = out2 + 4 * stride
                        map4(tilesPerPlane, e, o, e + tw, o + tw, { d0, d1, d2, d3, f in
                            Kernels.store(d0 - d2, out0 + f); Kernels.store(d1 + d2, out1 + f); Kernels.store(d2 - d1, out2 + f); Kernels.store(d1 - d3, out3 + f)
                        }, { d0, d1, d2, d3, f in
                            out0[f] = d0 - d2; out1[f] = d1 + d2; out2[f] = d2 - d1; out3[f] = d1 - d3
                        })
                    }
                }
            }
        }
    }

    /// `Y = Aᵀ M A` into the `(Cout, N, H, W)` output, cropping odd edges, in two passes per plane:
    /// vertical over all tiles of the plane at once (`m₀ + m₁ + m₂` and `m₁ − m₂ − m₃` per
    /// column of the tile), then horizontal per output row, interleaving even and odd columns.
    static func transformOutput(_ m: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                                n0: Int, n1: Int, into y: UnsafeMutablePointer<Float>) {
        let (th, tw) = tiles(h, w)
        let count = (n1 - n0) * th * tw, stride = channels * count, tilesPerPlane = th * tw
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * tilesPerPlane + 64) { buffer in
            // top[s] / bottom[s]: the tiles' upper and lower output rows before the horizontal
            // step; then their even and odd output columns, all tiles of the plane at once.
            let top = buffer.baseAddress!, bottom = top + 4 * tilesPerPlane
            let evenTop = bottom + 4 * tilesPerPlane, oddTop = evenTop + tilesPerPlane + 16
            let evenBottom = oddTop + tilesPerPlane + 16, oddBottom = evenBottom + tilesPerPlane + 16
            for c in 0..<channels {
                for n in n0..<n1 {
                    let base = m + c * count + (n - n0) * tilesPerPlane
                    for s in 0..<4 {
                        let t0 = top + s * tilesPerPlane, b0 = bottom + s * tilesPerPlane
                        let p = base + s * stride
                        map4(tilesPerPlane, p, p + 4 * stride, p + 8 * stride, p + 12 * stride, { m0, m1, m2, m3, f in
                            Kernels.store(m0 + m1 + m2, t0 + f); Kernels.store(m1 - m2 - m3, b0 + f)
                        }, { m0, m1, m2, m3, f in
                            t0[f] = m0 + m1 + m2; b0[f] = m1 - m2 - m3
                        })
                    }
                    @inline(__always) func columns(_ rows: UnsafeMutablePointer<Float>, even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>) {
                        map4(tilesPerPlane, rows, rows + tilesPerPlane, rows + 2 * tilesPerPlane, rows + 3 * tilesPerPlane, { s0, s1, s2, s3, f in
                            Kernels.store(s0 + s1 + s2, even + f); Kernels.store(s1 - s2 - s3, odd + f)
                        }, { s0, s1, s2, s3, f in
                            even[f] = s0 + s1 + s2; odd[f] = s1 - s2 - s3
                        })
                    }
                    columns(top, even: evenTop, odd: oddTop)
                    columns(bottom, even: evenBottom, odd: oddBottom)
                    let dst = y + (c * batch + n) * h * w
                    for oy in 0..<h {
                        let row = (oy / 2) * tw
                        let even = (oy % 2 == 0 ? evenTop : evenBottom) + row, odd = (oy % 2 == 0 ? oddTop : oddBottom) + row
                        if w % 2 == 0 {
                            // Rows are written in order, so a short row's block may run into the rows
                            // after it, as long as it stays inside this plane.
                            mergePairs(even: even, odd: odd, pairs: tw, into: dst + oy * w, spill: (oy * w + 16) <= h * w)
                        } else {
                            merge(even: even, odd: odd, width: w, into: dst + oy * w)
                        }
                    }
                }
            }
        }
    }

    /// `dM = A dY Aᵀ` for every channel and tile (the adjoint of ``transformOutput(_:channels:batch:height:width:n0:n1:into:)``):
    /// each tile's 2×2 gradient split into even and odd columns of its upper and lower row over
    /// the whole plane, then the 16 outputs as contiguous passes over the tiles.
    static func transformGradOutput(_ dy: UnsafePointer<Float>, channels: Int, batch: Int, height h: Int, width w: Int,
                                    n0: Int, n1: Int, into dm: UnsafeMutablePointer<Float>) {
        let (th, tw) = tiles(h, w)
        let count = (n1 - n0) * th * tw, stride = channels * count, tilesPerPlane = th * tw
        let dyEnd = dy + channels * batch * h * w
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * (tilesPerPlane + 16)) { buffer in
            // Per tile: upper-left, upper-right, lower-left, lower-right gradient (zero outside);
            // 16 spare values after each, for the blocks of short rows.
            let a0 = buffer.baseAddress!, b0 = a0 + tilesPerPlane + 16, a1 = b0 + tilesPerPlane + 16, b1 = a1 + tilesPerPlane + 16
            for c in 0..<channels {
                for n in n0..<n1 {
                    let src = dy + (c * batch + n) * h * w
                    for oy in 0..<h {
                        let row = src + oy * w
                        let e = (oy % 2 == 0 ? a0 : a1) + (oy / 2) * tw, o = (oy % 2 == 0 ? b0 : b1) + (oy / 2) * tw
                        if w % 2 == 0 {
                            // Rows of one parity go to consecutive runs, in order: a short row's block may run on.
                            splitPairs(row, pairs: tw, even: e, odd: o, spill: row + 16 <= dyEnd)
                        } else {
                            split(row, width: w, even: e, odd: o)
                        }
                    }
                    if h % 2 == 1 {
                        // The lower row of the last tiles lies outside the plane: zero, written after
                        // the rows above, whose blocks may have run into it.
                        (a1 + (th - 1) * tw).update(repeating: 0, count: tw); (b1 + (th - 1) * tw).update(repeating: 0, count: tw)
                    }
                    let base = dm + c * count + (n - n0) * tilesPerPlane
                    // Rows of A·dY: (a0, b0), (a0 + a1, b0 + b1), (a0 − a1, b0 − b1), (−a1, −b1);
                    // each row (a, b) then becomes (a, a + b, a − b, −b).
                    @inline(__always) func put(_ r: Int, _ f: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
                        let p = base + (r * 4) * stride + f
                        Kernels.store(a, p); Kernels.store(a + b, p + stride); Kernels.store(a - b, p + 2 * stride); Kernels.store(-b, p + 3 * stride)
                    }
                    @inline(__always) func put(_ r: Int, _ f: Int, _ a: Float, _ b: Float) {
                        let p = base + (r * 4) * stride + f
                        p[0] = a; p[stride] = a + b; p[2 * stride] = a - b; p[3 * stride] = -b
                    }
                    map4(tilesPerPlane, a0, b0, a1, b1, { ua, ub, la, lb, f in
                        put(0, f, ua, ub); put(1, f, ua + la, ub + lb); put(2, f, ua - la, ub - lb); put(3, f, -la, -lb)
                    }, { ua, ub, la, lb, f in
                        put(0, f, ua, ub); put(1, f, ua + la, ub + lb); put(2, f, ua - la, ub - lb); put(3, f, -la, -lb)
                    })
                }
            }
        }
    }
}
