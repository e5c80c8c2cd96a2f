import COpenBLAS
import CXSMM
import Foundation

/// Every matrix product of the trainer goes through here (caffe's `caffe_cpu_gemm`).
///
/// `C = alpha · op(A) · op(B) + beta · C`, row-major; `op(X)` is `X` or its transpose. `lda`,
/// `ldb`, `ldc` are the row strides of the stored matrices.
///
/// Products with `alpha = 1` and `beta` 0 or 1 (every convolution's) run on libxsmm's kernels,
/// JIT-compiled for the CPU the process runs on (AVX-512 where there is one), in column tiles of
/// ``GemmBackend/tile``; the others, `A·Bᵀ` (weight gradients: libxsmm has no kernel for it and
/// the copies it needs measured slower, docs/performance.md) and shapes libxsmm has no kernel for,
/// on OpenBLAS's `cblas_sgemm`. `PYRAMID_GEMM=openblas` in the environment sends everything to OpenBLAS.
@inline(__always)
func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if GemmBackend.current == .libxsmm, !transB, alpha == 1, beta == 0 || beta == 1,
       GemmBackend.xsmm(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Which library computes the trainer's matrix products (`gemm`).
public enum GemmBackend: String, Sendable {
    /// libxsmm 1.17's JIT kernels where they apply, OpenBLAS otherwise (the default).
    case libxsmm
    /// OpenBLAS for every product (`PYRAMID_GEMM=openblas`).
    case openblas

    /// Chosen once per process from `PYRAMID_GEMM` (`libxsmm` unless it says `openblas`).
    public static let current: GemmBackend = {
        let chosen = selection.backend
        if chosen == .libxsmm { pyr_xsmm_init() }
        return chosen
    }()

    /// Why `PYRAMID_GEMM` was not honoured (any value but libxsmm and openblas), naming the backend
    /// used; nil when it was. For the program to report, as ``InstructionSet/warning``.
    public static var warning: String? { selection.warning }

    private static let selection: (backend: GemmBackend, warning: String?) = {
        var warning: String?
        let backend = choose(ProcessInfo.processInfo.environment["PYRAMID_GEMM"]) { warning = $0 }
        return (backend, warning)
    }()

    /// What ``current`` picks for the value `requested` of `PYRAMID_GEMM` (nil: unset).
    static func choose(_ requested: String?, warn: (String) -> Void) -> GemmBackend {
        guard let requested, !requested.isEmpty else { return .libxsmm }
        if let backend = GemmBackend(rawValue: requested.lowercased()) { return backend }
        warn("pyramid: PYRAMID_GEMM=\(requested) is not one of libxsmm, openblas; using libxsmm")
        return .libxsmm
    }

    /// Columns of C per libxsmm kernel call (the kernel's M in column-major terms).
    static let tile = 64

    /// Row-major `C = op(A)·B + beta·C` as column-major `Cᵀ = Bᵀ·op(A)ᵀ`, in tiles of ``tile``
    /// columns of C. Returns false, having written nothing, when libxsmm has no kernel. There is no
    /// transposed B: libxsmm 1.17 cannot transpose its first column-major operand (our B), and
    /// copying one operand transposed first measured slower than OpenBLAS's `A·Bᵀ`.
    static func xsmm(transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard m > 0, n > 0, k > 0 else { return false }
        let full = min(tile, n), rest = n % full
        // Column-major operands: first B, then A (transposed when transA).
        func kernel(_ rows: Int) -> UnsafeRawPointer? {
            pyr_xsmm_dispatch(Int32(rows), Int32(m), Int32(k), Int32(ldb), Int32(lda), Int32(ldc), beta, 0, transA ? 1 : 0)
        }
        guard let main = kernel(full) else { return false }
        let tail = rest > 0 ? kernel(rest) : nil
        if rest > 0 && tail == nil { return false }
        var j = 0
        while j < n {
            let f = j + full <= n ? main : tail!
            // Tile j starts at column j of C and of B.
            pyr_xsmm_run(f, b + j, a, c + j)
            j += j + full <= n ? full : rest
        }
        return true
    }
}

/// The naive twin of ``gemm`` (tests compare against it).
func gemmNaive(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
        for j in 0..<n {
            var s: Double = 0
            for p in 0..<k {
                let x = transA ? a[p * lda + i] : a[i * lda + p]
                let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += Double(x) * Double(y)
            }
            c[i * ldc + j] = alpha * Float(s) + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}
