// One source (kernels_impl.h), compiled three times: for the build's baseline, for AVX2 with FMA
// and for AVX-512 (F, VL, BW, DQ), each version a table of function pointers; pyr_kernels_for
// hands out the tables this CPU can run. No floating-point contraction anywhere in this file, so
// that a multiply followed by an add rounds twice on every version (FMA would round once on two
// of them and give other bits).
#include "pyramid_kernels.h"

#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

typedef float v8 __attribute__((ext_vector_type(8)));
typedef int i8 __attribute__((ext_vector_type(8)));

#define PYR_BLOCK 512L
/// Values per masked copy of same_im2col at least (small planes are copied several at a time).
#define PYR_RUN 1024L

static inline long pyr_min(long a, long b) { return a < b ? a : b; }

// Macros, not functions: a function taking or returning eight floats would need AVX in its own
// signature, and these are used by every version.
/// Eight floats from p (unaligned).
#define load8(p) ({ v8 load8_v; memcpy(&load8_v, (p), sizeof load8_v); load8_v; })
/// v where the comparison holds, +0 elsewhere.
#define select8(condition, v) ((v8)((condition) & (i8)(v)))

/// max(0, v), keeping NaN (v < 0 is false for it).
static inline float relu(float v) { return v < 0 ? 0.0f : v; }

/// Scratch of `count` floats (at least one); aborts when memory is exhausted, as Swift's
/// allocations do.
static float *pyr_alloc(long count) {
    float *p = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

#define PYR_SUFFIX baseline
#include "kernels_impl.h"
#undef PYR_SUFFIX

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define PYR_SUFFIX avx2
#include "kernels_impl.h"
#undef PYR_SUFFIX
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))), \
                             apply_to = function)
#define PYR_SUFFIX avx512
#include "kernels_impl.h"
#undef PYR_SUFFIX
#pragma clang attribute pop
#endif

int pyr_kernels_supported(int isa) {
    switch (isa) {
    case PYR_ISA_BASELINE:
        return 1;
#if defined(__x86_64__)
    case PYR_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case PYR_ISA_AVX512:
        __builtin_cpu_init();
        return pyr_kernels_supported(PYR_ISA_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    default:
        return 0;
    }
}

const pyr_kernels *pyr_kernels_for(int isa) {
    if (!pyr_kernels_supported(isa)) return NULL;
    switch (isa) {
#if defined(__x86_64__)
    case PYR_ISA_AVX512: return &table_avx512;
    case PYR_ISA_AVX2: return &table_avx2;
#endif
    default: return &table_baseline;
    }
}
