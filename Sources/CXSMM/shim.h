// Fixed-arity wrappers over libxsmm 1.17 (Debian libxsmm-dev), whose kernels are variadic
// function pointers that Swift cannot call.
#include <libxsmm.h>

static inline void pyr_xsmm_init(void) { libxsmm_init(); }

// A JIT-compiled single-precision kernel for column-major C(m×n) = op(A)·op(B) + beta·C with
// alpha = 1 (TRANS flags: op(X) = X^T); libxsmm keeps and reuses what it compiled. NULL when
// libxsmm has no kernel for the shape or flags (the caller then uses BLAS).
static inline const void *pyr_xsmm_dispatch(int m, int n, int k, int lda, int ldb, int ldc, float beta,
                                            int trans_a, int trans_b) {
    const libxsmm_blasint M = m, N = n, K = k, LDA = lda, LDB = ldb, LDC = ldc;
    const float alpha = 1.0f;
    const int flags = (trans_a ? LIBXSMM_GEMM_FLAG_TRANS_A : 0) | (trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    return (const void *)libxsmm_smmdispatch(M, N, K, &LDA, &LDB, &LDC, &alpha, &beta, &flags, NULL);
}

static inline void pyr_xsmm_run(const void *kernel, const float *a, const float *b, float *c) {
    ((libxsmm_smmfunction)kernel)(a, b, c);
}
