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
/// ``GemmBackend/tile``; the others, and shapes libxsmm has no kernel for, on OpenBLAS's
/// `cblas_sgemm`. `PYRAMID_GEMM=openblas` in the environment sends everything to OpenBLAS.
@inline(__always)
func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if GemmBackend.current == .libxsmm, alpha == 1, beta == 0 || beta == 1,
       GemmBackend.xsmm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
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
        if ProcessInfo.processInfo.environment["PYRAMID_GEMM"] == "openblas" { return .openblas }
        pyr_xsmm_init()
        return .libxsmm
    }()

    /// Columns of C per libxsmm kernel call (the kernel's M in column-major terms).
    static let tile = 64

    /// Row-major `C = op(A)·op(B) + beta·C` as column-major `Cᵀ = op(B)ᵀ·op(A)ᵀ`, in tiles of
    /// ``tile`` columns of C. Returns false, having written nothing, when libxsmm has no kernel.
    static func xsmm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard m > 0, n > 0, k > 0, !(transA && transB) else { return false }
        if transB && !transA {
            // libxsmm has no kernel that transposes its first column-major operand (our B), so
            // one operand is copied transposed into this thread's scratch first — the smaller one.
            if m < n {
                // Cᵀ (n×m) = B·Aᵀ: copy Aᵀ (m·k floats; a weight gradient's dY, 9·cin times
                // smaller than its columns), multiply without transposes, add Cᵀ's transpose to C.
                let at = transposeScratch(m * k, slot: 0)
                transpose(a, rows: m, cols: k, ld: lda, into: at)
                let ct = transposeScratch(n * m, slot: 1)
                guard xsmm(transA: false, transB: false, m: n, n: m, k: k, a: b, lda: ldb, b: at, ldb: m, beta: 0, c: ct, ldc: m) else {
                    return false
                }
                for i in 0..<m {
                    let row = c + i * ldc
                    if beta == 0 { for j in 0..<n { row[j] = ct[j * m + i] } } else { for j in 0..<n { row[j] += ct[j * m + i] } }
                }
                return true
            }
            // Bᵀ (k×n) copied: n·k floats against the product's 2·m·n·k flops.
            let bt = transposeScratch(n * k, slot: 0)
            transpose(b, rows: n, cols: k, ld: ldb, into: bt)
            return xsmm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: bt, ldb: n, beta: beta, c: c, ldc: ldc)
        }
        let full = min(tile, n), rest = n % full
        // Column-major operands: first B (op transposed when transB), then A (when transA).
        func kernel(_ rows: Int) -> UnsafeRawPointer? {
            pyr_xsmm_dispatch(Int32(rows), Int32(m), Int32(k), Int32(ldb), Int32(lda), Int32(ldc), beta,
                              transB ? 1 : 0, transA ? 1 : 0)
        }
        guard let main = kernel(full) else { return false }
        let tail = rest > 0 ? kernel(rest) : nil
        if rest > 0 && tail == nil { return false }
        var j = 0
        while j < n {
            let f = j + full <= n ? main : tail!
            // Tile j starts at column j of C; in B at column j (row j when B is used transposed).
            pyr_xsmm_run(f, b + (transB ? j * ldb : j), a, c + j)
            j += j + full <= n ? full : rest
        }
        return true
    }
}

/// `out[p·rows + j] = src[j·ld + p]` for a `rows × cols` matrix, in 32×32 blocks.
func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into out: UnsafeMutablePointer<Float>) {
    let block = 32
    var j0 = 0
    while j0 < rows {
        let j1 = min(j0 + block, rows)
        var p0 = 0
        while p0 < cols {
            let p1 = min(p0 + block, cols)
            for j in j0..<j1 {
                let row = src + j * ld
                for p in p0..<p1 { out[p * rows + j] = row[p] }
            }
            p0 = p1
        }
        j0 = j1
    }
}

/// Two growing buffers per thread for ``transpose`` (the trainer's worker threads live as long as
/// the process; the buffers are freed with their thread).
private final class ScratchBuffers {
    var pointers: [UnsafeMutablePointer<Float>] = []
    var capacities: [Int] = []
    deinit { for p in pointers { p.deallocate() } }
}

private let scratchKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { raw in
        if let raw { Unmanaged<AnyObject>.fromOpaque(raw).release() }
    }
    return key
}()

private func transposeScratch(_ count: Int, slot: Int) -> UnsafeMutablePointer<Float> {
    let buffers: ScratchBuffers
    if let raw = pthread_getspecific(scratchKey) {
        buffers = Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as! ScratchBuffers
    } else {
        buffers = ScratchBuffers()
        pthread_setspecific(scratchKey, Unmanaged.passRetained(buffers as AnyObject).toOpaque())
    }
    while buffers.pointers.count <= slot { buffers.pointers.append(.allocate(capacity: 1)); buffers.capacities.append(1) }
    if buffers.capacities[slot] < count {
        buffers.pointers[slot].deallocate()
        buffers.capacities[slot] = max(count, buffers.capacities[slot] * 2)
        buffers.pointers[slot] = .allocate(capacity: buffers.capacities[slot])
    }
    return buffers.pointers[slot]
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
