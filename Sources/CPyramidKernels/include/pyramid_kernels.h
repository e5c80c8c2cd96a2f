// The trainer's hot loops that are not matrix products, compiled once per instruction set and
// chosen at run time (PyramidTrain's `Kernels.isa`): AVX-512 (F, VL, BW, DQ), AVX2 with FMA, or
// the baseline of the build target. Every version computes the same bits: the file is compiled
// without floating-point contraction and the reductions sum in the same order on every version,
// so a training run does not depend on which version ran it.
//
// Layouts are the trainer's: (C, N, H, W) tensors, Winograd F(2x2, 3x3) transforms as in
// Sources/PyramidTrain/Kernels/Winograd.swift.
#ifndef PYRAMID_KERNELS_H
#define PYRAMID_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets a table exists for.
enum {
    PYR_ISA_BASELINE = 0,
    PYR_ISA_AVX2 = 1,
    PYR_ISA_AVX512 = 2,
};

/// One version of every kernel. Lengths and sizes are element counts.
typedef struct pyr_kernels {
    /// Σ p[i], in blocks of 512 values (eight float lanes within a block, double across blocks).
    double (*sum)(const float *p, long n);
    /// Σ (p[i] − mean)², blocked the same way.
    double (*sum_squares)(const float *p, long n, float mean);
    /// Σ p[i]·q[i], blocked the same way.
    double (*dot)(const float *p, const float *q, long n);
    /// (Σ dy·[mask>0], Σ dy·x·[mask>0]), blocked the same way.
    void (*masked_sums)(const float *dy, const float *x, const float *mask, long n, double *sum_dy, double *sum_dy_x);

    /// out = a + b.
    void (*add)(const float *a, const float *b, float *out, long n);
    /// out = max(0, x) (NaN stays NaN).
    void (*relu)(const float *x, float *out, long n);
    /// out = max(0, a + b).
    void (*add_relu)(const float *a, const float *b, float *out, long n);
    /// out = [mask > 0]·dy, plus a[i] when a is not NULL.
    void (*masked_gradient)(const float *dy, const float *mask, const float *a, float *out, long n);

    /// BatchNorm's training forward of one channel: xh = (x − mean)·istd, out = gamma·xh + beta
    /// (then max(0, ·) when relu is non-zero).
    void (*normalize)(const float *x, long n, float mean, float istd, float gamma, float beta, int relu, float *xh, float *out);
    /// out = x·scale + shift (then max(0, ·) when relu): BatchNorm in evaluation.
    void (*affine)(const float *x, long n, float scale, float shift, int relu, float *out);
    /// dx = scale·dy, or scale·dy where mask > 0 and 0 elsewhere when mask is not NULL.
    void (*scale_masked)(const float *dy, const float *mask, float scale, long n, float *dx);
    /// BatchNorm's input gradient: dx = scale·(count·dy' − sum_dy − xh·sum_dy_x), dy' = dy·[mask>0]
    /// (dy' = dy when mask is NULL).
    void (*batch_norm_gradient)(const float *dy, const float *xh, const float *mask, long n, float scale, float count,
                                float sum_dy, float sum_dy_x, float *dx);

    /// im2col of a stride-1 "same" convolution (output as large as the input) for samples
    /// n0..<n1: col is (C·k·k, (n1−n0)·H·W).
    void (*same_im2col)(const float *x, long channels, long batch, long height, long width, long n0, long n1, long kernel,
                        long padding, float *col);

    /// im2col of any convolution for samples n0..<n1: col is (C·k·k, (n1−n0)·Ho·Wo), row
    /// (c, ky, kx), column (n, oy, ox) = x(c, n, oy·stride − padding + ky, ox·stride − padding + kx),
    /// zero outside the image.
    void (*im2col)(const float *x, long channels, long batch, long height, long width, long n0, long n1, long kernel, long stride,
                   long padding, float *col);
    /// Adds col back into grad_x: the adjoint of im2col.
    void (*col2im)(const float *col, long channels, long batch, long height, long width, long n0, long n1, long kernel, long stride,
                   long padding, float *grad_x);

    /// Winograd F(2x2, 3x3): V = Bᵀ d B for samples n0..<n1 into V[ξ][c][t].
    void (*winograd_input)(const float *x, long channels, long batch, long height, long width, long n0, long n1, float *v);
    /// Y = Aᵀ M A from M[ξ][c][t] into the (C, N, H, W) output (odd edges cropped).
    void (*winograd_output)(const float *m, long channels, long batch, long height, long width, long n0, long n1, float *y);
    /// dM = A dY Aᵀ (the adjoint of winograd_output) into dM[ξ][c][t].
    void (*winograd_grad_output)(const float *dy, long channels, long batch, long height, long width, long n0, long n1, float *dm);
} pyr_kernels;

/// Whether this CPU (and this build) can run the table of `isa`.
int pyr_kernels_supported(int isa);

/// The table of `isa`, or NULL when this CPU or build cannot run it.
const pyr_kernels *pyr_kernels_for(int isa);

#ifdef __cplusplus
}
#endif

#endif
