import CPyramidKernels
import Foundation

/// The instruction sets the trainer's own kernels (im2col, the Winograd transforms, BatchNorm,
/// ReLU and residual sums; the matrix products are libxsmm's and OpenBLAS's, which choose for
/// themselves) are compiled for. One build carries all of them; the process runs the best one
/// its CPU has, or the one `PYRAMID_KERNELS` names. Every version computes the same bits.
public enum InstructionSet: String, CaseIterable, Sendable, Comparable {
    /// What the build targets (x86-64: SSE2).
    case baseline
    /// AVX2 with FMA (x86-64-v3's vector instructions).
    case avx2
    /// AVX-512 F, VL, BW and DQ (x86-64-v4's).
    case avx512

    var code: Int32 {
        switch self {
        case .baseline: Int32(PYR_ISA_BASELINE)
        case .avx2: Int32(PYR_ISA_AVX2)
        case .avx512: Int32(PYR_ISA_AVX512)
        }
    }

    public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.code < b.code }

    /// Whether this CPU can run this version.
    public var isSupported: Bool { pyr_kernels_supported(code) != 0 }

    /// The versions this CPU can run, baseline first.
    public static var supported: [InstructionSet] { allCases.filter(\.isSupported) }

    /// The version this process runs: `PYRAMID_KERNELS` (`baseline`, `avx2`, `avx512`) when set
    /// and supported, else the best this CPU has.
    public static var active: InstructionSet { selection.set }

    /// Why `PYRAMID_KERNELS` could not be honoured (unknown, or beyond this CPU), naming the
    /// version used instead; nil when it was. The library never prints: the program reports it
    /// (the `pyramid` tool does on standard error when it trains or benchmarks).
    public static var warning: String? { selection.warning }

    private static let selection: (set: InstructionSet, warning: String?) = {
        var warning: String?
        let set = choose(ProcessInfo.processInfo.environment["PYRAMID_KERNELS"]) { warning = $0 }
        return (set, warning)
    }()

    /// What ``active`` picks for the value `requested` of `PYRAMID_KERNELS` (nil: unset), `warn`
    /// called with the reason when the request cannot be honoured.
    static func choose(_ requested: String?, warn: (String) -> Void) -> InstructionSet {
        let best = supported.max() ?? .baseline
        guard let requested, !requested.isEmpty else { return best }
        guard let wanted = InstructionSet(rawValue: requested.lowercased()) else {
            warn("pyramid: PYRAMID_KERNELS=\(requested) is not one of baseline, avx2, avx512; using \(best.rawValue)")
            return best
        }
        guard wanted.isSupported else {
            warn("pyramid: PYRAMID_KERNELS=\(requested): this CPU cannot run it; using \(best.rawValue)")
            return best
        }
        return wanted
    }

    /// This version's kernels (nil when the CPU cannot run them).
    var table: pyr_kernels? { pyr_kernels_for(code)?.pointee }
}

extension Kernels {
    /// The kernels of ``InstructionSet/active``.
    static let k: pyr_kernels = InstructionSet.active.table!
}
