// The kernels' bodies, included by kernels.c once per instruction set with PYR_SUFFIX set (and
// the matching target attribute pushed), so that every version is the same source. Loops are
// plain C over restrict pointers, which the compiler vectorizes to the width of the version;
// the reductions use explicit eight-lane accumulators so that every version adds in one order.

#define PYR_CAT2(a, b) a##_##b
#define PYR_CAT(a, b) PYR_CAT2(a, b)
#define K(name) PYR_CAT(name, PYR_SUFFIX)

// MARK: Reductions (blocks of PYR_BLOCK values: eight float lanes inside, double across)

/// The eight lanes' sum in a fixed order (a macro: see load8).
#define hsum8(t) ({ v8 hsum8_t = (t); ((hsum8_t[0] + hsum8_t[4]) + (hsum8_t[2] + hsum8_t[6])) + ((hsum8_t[1] + hsum8_t[5]) + (hsum8_t[3] + hsum8_t[7])); })

static float K(block_sum)(const float *p, long n) {
    v8 a = {0}, b = {0}, c = {0}, d = {0};
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        a += load8(p + i); b += load8(p + i + 8); c += load8(p + i + 16); d += load8(p + i + 24);
    }
    float s = hsum8((a + b) + (c + d));
    for (; i < n; i++) s += p[i];
    return s;
}

static double K(sum)(const float *p, long n) {
    double total = 0;
    for (long start = 0; start < n; start += PYR_BLOCK) total += K(block_sum)(p + start, pyr_min(PYR_BLOCK, n - start));
    return total;
}

static float K(block_sum_squares)(const float *p, long n, float mean) {
    v8 m = mean, a = {0}, b = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        v8 x = load8(p + i) - m, y = load8(p + i + 8) - m;
        a += x * x; b += y * y;
    }
    float s = hsum8(a + b);
    for (; i < n; i++) { float d = p[i] - mean; s += d * d; }
    return s;
}

static double K(sum_squares)(const float *p, long n, float mean) {
    double total = 0;
    for (long start = 0; start < n; start += PYR_BLOCK) total += K(block_sum_squares)(p + start, pyr_min(PYR_BLOCK, n - start), mean);
    return total;
}

static float K(block_dot)(const float *p, const float *q, long n) {
    v8 a = {0}, b = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        a += load8(p + i) * load8(q + i);
        b += load8(p + i + 8) * load8(q + i + 8);
    }
    float s = hsum8(a + b);
    for (; i < n; i++) s += p[i] * q[i];
    return s;
}

static double K(dot)(const float *p, const float *q, long n) {
    double total = 0;
    for (long start = 0; start < n; start += PYR_BLOCK) total += K(block_dot)(p + start, q + start, pyr_min(PYR_BLOCK, n - start));
    return total;
}

static void K(masked_sums)(const float *dy, const float *x, const float *mask, long n, double *sum_dy, double *sum_dy_x) {
    double s0 = 0, s1 = 0;
    for (long start = 0; start < n; start += PYR_BLOCK) {
        long count = pyr_min(PYR_BLOCK, n - start), i = 0;
        const float *d = dy + start, *xx = x + start, *m = mask + start;
        v8 a = {0}, b = {0};
        for (; i + 8 <= count; i += 8) {
            v8 g = select8(load8(m + i) > 0, load8(d + i));
            a += g;
            b += g * load8(xx + i);
        }
        float f0 = hsum8(a), f1 = hsum8(b);
        for (; i < count; i++) if (m[i] > 0) { f0 += d[i]; f1 += d[i] * xx[i]; }
        s0 += f0; s1 += f1;
    }
    *sum_dy = s0; *sum_dy_x = s1;
}

// MARK: Element-wise
// Values are loaded before a condition picks them, so that the loads are not conditional: the
// baseline version (SSE2, no masked loads) can then vectorize the loop too.

static void K(add)(const float *restrict a, const float *restrict b, float *restrict out, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void K(relu)(const float *restrict x, float *restrict out, long n) {
    for (long i = 0; i < n; i++) out[i] = relu(x[i]);
}

static void K(add_relu)(const float *restrict a, const float *restrict b, float *restrict out, long n) {
    for (long i = 0; i < n; i++) out[i] = relu(a[i] + b[i]);
}

static void K(masked_gradient)(const float *restrict dy, const float *restrict mask, const float *restrict a, float *restrict out, long n) {
    if (a) {
        for (long i = 0; i < n; i++) { float d = dy[i]; out[i] = a[i] + (mask[i] > 0 ? d : 0.0f); }
    } else {
        for (long i = 0; i < n; i++) { float d = dy[i]; out[i] = mask[i] > 0 ? d : 0.0f; }
    }
}

static void K(normalize)(const float *restrict x, long n, float mean, float istd, float gamma, float beta, int use_relu,
                         float *restrict xh, float *restrict out) {
    if (use_relu) {
        for (long i = 0; i < n; i++) { float v = (x[i] - mean) * istd; xh[i] = v; out[i] = relu(gamma * v + beta); }
    } else {
        for (long i = 0; i < n; i++) { float v = (x[i] - mean) * istd; xh[i] = v; out[i] = gamma * v + beta; }
    }
}

static void K(affine)(const float *restrict x, long n, float scale, float shift, int use_relu, float *restrict out) {
    if (use_relu) {
        for (long i = 0; i < n; i++) out[i] = relu(x[i] * scale + shift);
    } else {
        for (long i = 0; i < n; i++) out[i] = x[i] * scale + shift;
    }
}

static void K(scale_masked)(const float *restrict dy, const float *restrict mask, float scale, long n, float *restrict dx) {
    if (mask) {
        for (long i = 0; i < n; i++) { float d = dy[i]; dx[i] = mask[i] > 0 ? scale * d : 0.0f; }
    } else {
        for (long i = 0; i < n; i++) dx[i] = scale * dy[i];
    }
}

static void K(batch_norm_gradient)(const float *restrict dy, const float *restrict xh, const float *restrict mask, long n, float scale,
                                   float count, float sum_dy, float sum_dy_x, float *restrict dx) {
    if (mask) {
        for (long i = 0; i < n; i++) { float d = dy[i]; dx[i] = scale * ((mask[i] > 0 ? count * d : 0.0f) - sum_dy - xh[i] * sum_dy_x); }
    } else {
        for (long i = 0; i < n; i++) dx[i] = scale * (count * dy[i] - sum_dy - xh[i] * sum_dy_x);
    }
}

// MARK: im2col of "same" convolutions

/// dst[i] = mask[i] != 0 ? src[i] : 0, reading every src[i] (all of them readable).
static inline void K(masked_copy)(const float *restrict src, const float *restrict mask, float *restrict dst, long n) {
    for (long i = 0; i < n; i++) { float v = src[i]; dst[i] = mask[i] != 0 ? v : 0.0f; }
}

/// Block (c, ky, kx) of the columns is channel c of samples n0..<n1 shifted by (ky−p)·W + (kx−p)
/// in flat memory, the pixels whose source lies outside their own plane zeroed by a mask; the
/// mask covers `run` planes so that small planes are copied in runs of at least PYR_RUN values.
static void K(same_im2col)(const float *x, long channels, long batch, long h, long w, long n0, long n1, long kernel, long padding,
                           float *col) {
    long plane = h * w, cols = (n1 - n0) * plane, kk = kernel * kernel, total = channels * batch * plane;
    long run = pyr_min(plane >= PYR_RUN ? 1 : PYR_RUN / plane, n1 - n0);
    if (run < 1) run = 1;
    long span = run * plane;
    float *masks = pyr_alloc(kk * span);
    for (long ky = 0; ky < kernel; ky++) {
        for (long kx = 0; kx < kernel; kx++) {
            float *m = masks + (ky * kernel + kx) * span;
            for (long y = 0; y < h; y++) {
                for (long xx = 0; xx < w; xx++) {
                    long sy = y + ky - padding, sx = xx + kx - padding;
                    m[y * w + xx] = sy >= 0 && sy < h && sx >= 0 && sx < w ? 1.0f : 0.0f;
                }
            }
            for (long k = 1; k < run; k++) memcpy(m + k * plane, m, plane * sizeof(float));
        }
    }
    for (long c = 0; c < channels; c++) {
        for (long q = 0; q < kk; q++) {
            long offset = (q / kernel - padding) * w + (q % kernel - padding);
            float *block = col + (c * kk + q) * cols;
            const float *m = masks + q * span;
            for (long n = n0; n < n1; n += run) {
                long count = pyr_min(run, n1 - n) * plane;
                long source = (c * batch + n) * plane + offset;
                float *dst = block + (n - n0) * plane;
                if (source < 0 || source + count > total) {
                    // The first or last plane of x: the masked-out reads would leave it.
                    for (long i = 0; i < count; i++) dst[i] = m[i] != 0 ? x[source + i] : 0.0f;
                } else {
                    K(masked_copy)(x + source, m, dst, count);
                }
            }
        }
    }
    free(masks);
}

/// Output columns lo..<hi of a column-matrix row read input column ox·stride + off (off = kx −
/// padding) inside 0..<width; the others read zero padding.
static inline void K(column_range)(long off, long stride, long width, long wo, long *lo, long *hi) {
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    *hi = width - 1 - off < 0 ? 0 : pyr_min(wo, (width - 1 - off) / stride + 1);
}

/// im2col of any convolution for samples n0..<n1: col is (C·k·k, (n1−n0)·Ho·Wo), row (c, ky, kx),
/// column (n, oy, ox) holding x(c, n, oy·stride − padding + ky, ox·stride − padding + kx), zero
/// outside the image.
static void K(im2col)(const float *x, long channels, long batch, long h, long w, long n0, long n1, long kernel, long stride,
                      long padding, float *col) {
    long ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1;
    long plane = h * w, cols = (n1 - n0) * ho * wo;
    for (long c = 0; c < channels; c++) {
        for (long ky = 0; ky < kernel; ky++) {
            for (long kx = 0; kx < kernel; kx++) {
                float *restrict dst = col + ((c * kernel + ky) * kernel + kx) * cols;
                long lo, hi, off = kx - padding;
                K(column_range)(off, stride, w, wo, &lo, &hi);
                long zeros = pyr_min(lo, wo);
                for (long n = n0; n < n1; n++) {
                    const float *src = x + (c * batch + n) * plane;
                    for (long oy = 0; oy < ho; oy++, dst += wo) {
                        long iy = oy * stride - padding + ky;
                        if (iy < 0 || iy >= h) { memset(dst, 0, wo * sizeof(float)); continue; }
                        const float *restrict row = src + iy * w;
                        long ox = 0;
                        for (; ox < zeros; ox++) dst[ox] = 0;
                        if (stride == 1) { for (; ox < hi; ox++) dst[ox] = row[ox + off]; }
                        else if (stride == 2) { for (; ox < hi; ox++) dst[ox] = row[2 * ox + off]; }
                        else { for (; ox < hi; ox++) dst[ox] = row[ox * stride + off]; }
                        for (; ox < wo; ox++) dst[ox] = 0;
                    }
                }
            }
        }
    }
}

/// Adds col back into grad_x (the adjoint of im2col), for samples n0..<n1.
static void K(col2im)(const float *col, long channels, long batch, long h, long w, long n0, long n1, long kernel, long stride,
                      long padding, float *grad_x) {
    long ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1;
    long plane = h * w, cols = (n1 - n0) * ho * wo;
    for (long c = 0; c < channels; c++) {
        for (long ky = 0; ky < kernel; ky++) {
            for (long kx = 0; kx < kernel; kx++) {
                const float *restrict src = col + ((c * kernel + ky) * kernel + kx) * cols;
                long lo, hi, off = kx - padding;
                K(column_range)(off, stride, w, wo, &lo, &hi);
                for (long n = n0; n < n1; n++) {
                    float *plane_start = grad_x + (c * batch + n) * plane;
                    for (long oy = 0; oy < ho; oy++, src += wo) {
                        long iy = oy * stride - padding + ky;
                        if (iy < 0 || iy >= h) continue;
                        float *restrict row = plane_start + iy * w;
                        if (stride == 1) { for (long ox = lo; ox < hi; ox++) row[ox + off] += src[ox]; }
                        else if (stride == 2) { for (long ox = lo; ox < hi; ox++) row[2 * ox + off] += src[ox]; }
                        else { for (long ox = lo; ox < hi; ox++) row[ox * stride + off] += src[ox]; }
                    }
                }
            }
        }
    }
}

// MARK: Winograd F(2x2, 3x3)

/// even[j] = row[2j], odd[j] = row[2j + 1] for `pairs` pairs.
static inline void K(split_pairs)(const float *restrict row, long pairs, float *restrict even, float *restrict odd) {
    for (long j = 0; j < pairs; j++) { even[j] = row[2 * j]; odd[j] = row[2 * j + 1]; }
}

/// row[2j] = even[j], row[2j + 1] = odd[j] for `pairs` pairs.
static inline void K(merge_pairs)(const float *restrict even, const float *restrict odd, long pairs, float *restrict row) {
    for (long j = 0; j < pairs; j++) { row[2 * j] = even[j]; row[2 * j + 1] = odd[j]; }
}

/// A padded input row's four horizontal transforms from x₂ⱼ₋₁ (a), x₂ⱼ (e), x₂ⱼ₊₁ (c), x₂ⱼ₊₂ (e1),
/// with a and e1 zeroed where not_first / not_last are 0 (NULL: no mask).
static inline void K(row_transform)(long n, const float *restrict a, const float *restrict e, const float *restrict c,
                                    const float *restrict e1, const float *restrict not_first, const float *restrict not_last,
                                    float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3) {
    if (not_first) {
        for (long k = 0; k < n; k++) {
            float a0 = a[k], e10 = e1[k];
            float av = not_first[k] == 0 ? 0.0f : a0, ev = not_last[k] == 0 ? 0.0f : e10;
            o0[k] = av - c[k]; o1[k] = e[k] + c[k]; o2[k] = c[k] - e[k]; o3[k] = e[k] - ev;
        }
    } else {
        for (long k = 0; k < n; k++) { o0[k] = a[k] - c[k]; o1[k] = e[k] + c[k]; o2[k] = c[k] - e[k]; o3[k] = e[k] - e1[k]; }
    }
}

/// The vertical transform of one column position s over all tiles of a plane.
static inline void K(column_transform)(long n, const float *restrict d0, const float *restrict d1, const float *restrict d2,
                                       const float *restrict d3, float *restrict o0, float *restrict o1, float *restrict o2,
                                       float *restrict o3) {
    for (long f = 0; f < n; f++) { o0[f] = d0[f] - d2[f]; o1[f] = d1[f] + d2[f]; o2[f] = d2[f] - d1[f]; o3[f] = d1[f] - d3[f]; }
}

/// V = Bᵀ d B per channel and tile, in two passes per plane. Horizontal: every padded input row's
/// four transforms, stored so that padded rows 2k and 2k+1 are in separate arrays (row k of
/// each); for even widths the rows of one parity are split into even and odd columns one after
/// another and transformed in one pass, the row ends masked. Vertical: tile (i, j) combines
/// padded rows 2i … 2i+3, which sit at the tile's own flat index in those arrays and one row of
/// tiles further, so all tiles of a plane are one pass per output.
static void K(winograd_input)(const float *x, long channels, long batch, long h, long w, long n0, long n1, float *v) {
    long th = (h + 1) / 2, tw = (w + 1) / 2;
    long count = (n1 - n0) * th * tw, stride = channels * count, tiles = th * tw;
    long block = (th + 1) * tw;
    // evenRows: padded rows 0, 2, …, 2·th (th + 1 rows of tw) for each of the four transforms;
    // oddRows: rows 1, 3, …, 2·th + 1. The even-width path's groups hold the (at most th) rows of one
    // parity, tiles values each (group_odd one more, shifted by one).
    float *buffer = pyr_alloc(8 * block + 2 * (tw + 1) + 4 * (tiles + 1));
    float *even_rows = buffer, *odd_rows = even_rows + 4 * block;
    float *even = odd_rows + 4 * block, *odd = even + tw + 1;
    float *group_even = odd + tw + 1, *group_odd = group_even + tiles;
    float *not_first = group_odd + tiles + 1, *not_last = not_first + tiles;
    memset(even_rows, 0, 8 * block * sizeof(float));
    even[tw] = 0; odd[0] = 0; group_odd[0] = 0;
    for (long k = 0; k < tiles; k++) { not_first[k] = k % tw == 0 ? 0.0f : 1.0f; not_last[k] = k % tw == tw - 1 ? 0.0f : 1.0f; }
    for (long c = 0; c < channels; c++) {
        for (long n = n0; n < n1; n++) {
            const float *src = x + (c * batch + n) * h * w;
            if (w % 2 == 0) {
                for (long parity = 0; parity < 2; parity++) {
                    long rows = parity == 0 ? (h + 1) / 2 : h / 2, total = rows * tw;
                    if (rows == 0) continue;
                    // Row y = parity + 2m is padded row y + 1: oddRows row m, or evenRows row m + 1.
                    float *out = parity == 0 ? odd_rows : even_rows + tw;
                    for (long m = 0; m < rows; m++)
                        K(split_pairs)(src + (parity + 2 * m) * w, tw, group_even + m * tw, group_odd + 1 + m * tw);
                    K(row_transform)(total, group_odd, group_even, group_odd + 1, group_even + 1, not_first, not_last,
                                     out, out + block, out + 2 * block, out + 3 * block);
                }
            } else {
                for (long y = 0; y < h; y++) {
                    const float *row = src + y * w;
                    // even[j] = x[2j], odd[j + 1] = x[2j + 1], zero beyond the row.
                    K(split_pairs)(row, w / 2, even, odd + 1);
                    even[w / 2] = row[w - 1]; odd[w / 2 + 1] = 0;
                    long p = y + 1;
                    float *out = (p % 2 == 0 ? even_rows : odd_rows) + (p / 2) * tw;
                    K(row_transform)(tw, odd, even, odd + 1, even + 1, NULL, NULL, out, out + block, out + 2 * block, out + 3 * block);
                }
            }
            long t = (n - n0) * tiles;
            for (long s = 0; s < 4; s++) {
                const float *e = even_rows + s * block, *o = odd_rows + s * block;
                float *out0 = v + s * stride + c * count + t;
                K(column_transform)(tiles, e, o, e + tw, o + tw, out0, out0 + 4 * stride, out0 + 8 * stride, out0 + 12 * stride);
            }
        }
    }
    free(buffer);
}

/// Y = Aᵀ M A, cropping odd edges, in two passes per plane: vertical over all tiles at once
/// (m₀ + m₁ + m₂ and m₁ − m₂ − m₃ per column of the tile), then horizontal into even and odd
/// output columns, interleaved into the output rows.
static void K(winograd_output)(const float *m, long channels, long batch, long h, long w, long n0, long n1, float *y) {
    long th = (h + 1) / 2, tw = (w + 1) / 2;
    long count = (n1 - n0) * th * tw, stride = channels * count, tiles = th * tw;
    float *buffer = pyr_alloc(12 * tiles);
    float *top = buffer, *bottom = top + 4 * tiles;
    float *even_top = bottom + 4 * tiles, *odd_top = even_top + tiles, *even_bottom = odd_top + tiles, *odd_bottom = even_bottom + tiles;
    for (long c = 0; c < channels; c++) {
        for (long n = n0; n < n1; n++) {
            const float *base = m + c * count + (n - n0) * tiles;
            for (long s = 0; s < 4; s++) {
                const float *restrict p0 = base + s * stride, *restrict p1 = p0 + 4 * stride, *restrict p2 = p1 + 4 * stride,
                                      *restrict p3 = p2 + 4 * stride;
                float *restrict t0 = top + s * tiles, *restrict b0 = bottom + s * tiles;
                for (long f = 0; f < tiles; f++) { t0[f] = p0[f] + p1[f] + p2[f]; b0[f] = p1[f] - p2[f] - p3[f]; }
            }
            for (long r = 0; r < 2; r++) {
                const float *restrict s0 = r == 0 ? top : bottom, *restrict s1 = s0 + tiles, *restrict s2 = s1 + tiles, *restrict s3 = s2 + tiles;
                float *restrict ev = r == 0 ? even_top : even_bottom, *restrict od = r == 0 ? odd_top : odd_bottom;
                for (long f = 0; f < tiles; f++) { ev[f] = s0[f] + s1[f] + s2[f]; od[f] = s1[f] - s2[f] - s3[f]; }
            }
            float *dst = y + (c * batch + n) * h * w;
            for (long oy = 0; oy < h; oy++) {
                long row = (oy / 2) * tw;
                const float *ev = (oy % 2 == 0 ? even_top : even_bottom) + row, *od = (oy % 2 == 0 ? odd_top : odd_bottom) + row;
                K(merge_pairs)(ev, od, w / 2, dst + oy * w);
                if (w % 2 == 1) dst[oy * w + w - 1] = ev[w / 2];
            }
        }
    }
    free(buffer);
}

/// One row (a, b) of A·dY over all tiles, written as (a, a + b, a − b, −b) at p, p + stride, …:
/// a = ua + sign·la and b = ub + sign·lb, with ua/ub or la/lb absent (NULL) for the first and last rows.
static inline void K(grad_rows)(long n, const float *restrict ua, const float *restrict ub, const float *restrict la,
                                const float *restrict lb, int sign, float *p, long stride) {
    float *restrict p0 = p, *restrict p1 = p + stride, *restrict p2 = p + 2 * stride, *restrict p3 = p + 3 * stride;
    if (!la) {
        for (long f = 0; f < n; f++) { float a = ua[f], b = ub[f]; p0[f] = a; p1[f] = a + b; p2[f] = a - b; p3[f] = -b; }
    } else if (!ua) {
        for (long f = 0; f < n; f++) { float a = -la[f], b = -lb[f]; p0[f] = a; p1[f] = a + b; p2[f] = a - b; p3[f] = -b; }
    } else if (sign > 0) {
        for (long f = 0; f < n; f++) { float a = ua[f] + la[f], b = ub[f] + lb[f]; p0[f] = a; p1[f] = a + b; p2[f] = a - b; p3[f] = -b; }
    } else {
        for (long f = 0; f < n; f++) { float a = ua[f] - la[f], b = ub[f] - lb[f]; p0[f] = a; p1[f] = a + b; p2[f] = a - b; p3[f] = -b; }
    }
}

/// dM = A dY Aᵀ per channel and tile: each tile's 2x2 gradient split into even and odd columns
/// of its upper and lower row over the whole plane, then the 16 outputs as passes over the tiles.
static void K(winograd_grad_output)(const float *dy, long channels, long batch, long h, long w, long n0, long n1, float *dm) {
    long th = (h + 1) / 2, tw = (w + 1) / 2;
    long count = (n1 - n0) * th * tw, stride = channels * count, tiles = th * tw;
    float *buffer = pyr_alloc(4 * tiles);
    // Per tile: upper-left, upper-right, lower-left, lower-right gradient (zero outside).
    float *a0 = buffer, *b0 = a0 + tiles, *a1 = b0 + tiles, *b1 = a1 + tiles;
    for (long c = 0; c < channels; c++) {
        for (long n = n0; n < n1; n++) {
            const float *src = dy + (c * batch + n) * h * w;
            for (long oy = 0; oy < h; oy++) {
                const float *row = src + oy * w;
                float *e = (oy % 2 == 0 ? a0 : a1) + (oy / 2) * tw, *o = (oy % 2 == 0 ? b0 : b1) + (oy / 2) * tw;
                K(split_pairs)(row, w / 2, e, o);
                if (w % 2 == 1) { e[w / 2] = row[w - 1]; o[w / 2] = 0; }
            }
            if (h % 2 == 1) {
                // The lower row of the last tiles lies outside the plane.
                memset(a1 + (th - 1) * tw, 0, tw * sizeof(float)); memset(b1 + (th - 1) * tw, 0, tw * sizeof(float));
            }
            float *base = dm + c * count + (n - n0) * tiles;
            // Rows of A·dY: (a0, b0), (a0 + a1, b0 + b1), (a0 − a1, b0 − b1), (−a1, −b1); each row
            // (a, b) then becomes (a, a + b, a − b, −b).
            K(grad_rows)(tiles, a0, b0, NULL, NULL, 0, base, stride);
            K(grad_rows)(tiles, a0, b0, a1, b1, 1, base + 4 * stride, stride);
            K(grad_rows)(tiles, a0, b0, a1, b1, -1, base + 8 * stride, stride);
            K(grad_rows)(tiles, NULL, NULL, a1, b1, -1, base + 12 * stride, stride);
        }
    }
    free(buffer);
}

static const pyr_kernels K(table) = {
    .sum = K(sum), .sum_squares = K(sum_squares), .dot = K(dot), .masked_sums = K(masked_sums),
    .add = K(add), .relu = K(relu), .add_relu = K(add_relu), .masked_gradient = K(masked_gradient),
    .normalize = K(normalize), .affine = K(affine), .scale_masked = K(scale_masked), .batch_norm_gradient = K(batch_norm_gradient),
    .same_im2col = K(same_im2col), .im2col = K(im2col), .col2im = K(col2im),
    .winograd_input = K(winograd_input), .winograd_output = K(winograd_output), .winograd_grad_output = K(winograd_grad_output),
};

#undef K
#undef hsum8
#undef PYR_CAT
#undef PYR_CAT2
