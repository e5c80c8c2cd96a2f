import Foundation
import PyramidLoader

/// A forward/backward pair (llm.c style). Activations are `(C, N, H, W)` unless a layer says
/// otherwise. A layer keeps what its backward needs per *branch*: the RS-Nets schedule runs every
/// size through the same layers before one backward pass, so branch `b` (size `b`) has its own
/// cached input and output.
public protocol Layer: AnyObject {
    /// Computes the output of `x` for `branch`; the returned tensor belongs to the layer and is
    /// valid until its next forward on the same branch.
    func forward(_ x: Tensor, branch: Int) -> Tensor
    /// Given the gradient of the loss with respect to the last output of `branch`, accumulates
    /// parameter gradients and returns the gradient with respect to that forward's input.
    func backward(_ gradOutput: Tensor, branch: Int) -> Tensor
}

/// What every layer of a model shares: train or eval mode, and which BatchNorm bank to use.
public final class ModelContext {
    /// How BatchNorm picks its parameters and statistics.
    public enum Bank: Equatable, Sendable {
        /// One bank.
        case bank(Int)
        /// `(1−λ)·bank a + λ·bank b`: γ, β, running mean and running variance (RS-Nets §4.3;
        /// docs/design.md, "RS-Nets"). Evaluation only.
        case interpolate(Int, Int, Float)
    }

    /// Batch statistics and running-average updates (true), or running statistics (false).
    public var training = true
    /// In training mode: accumulate a plain average of batch statistics into the running ones
    /// instead of the momentum update (MixSize's calibration; docs/design.md, "MixSize").
    public var calibrating = false
    /// In training mode: normalize with the running statistics and leave them as they are
    /// (PyTorch's `model.eval()` during a backward pass; frozen BatchNorm for fine-tuning). Every
    /// sample's gradient is then independent of the others in its batch, which is what
    /// `pyramid bench mpi --check` needs to compare a split batch with the whole one.
    public var frozenBatchNorm = false
    /// The bank used by the next forward.
    public var bank: Bank = .bank(0)
    /// Number of batches averaged so far while calibrating.
    public var calibrationBatches = 0
    /// When set, layers add their forward and backward times to it (`pyramid bench train --profile`).
    @_spi(Benchmark) public var profile: LayerProfile?
    public init() {}
}

/// Per-branch storage of tensors a layer owns.
struct BranchTensors {
    private var tensors: [Tensor] = []
    mutating func callAsFunction(_ branch: Int) -> Tensor {
        while tensors.count <= branch { tensors.append(Tensor(shape: [0])) }
        return tensors[branch]
    }
}

/// Gaussian initialization from a seeded stream (Box–Muller).
struct Initializer {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    mutating func normal(count: Int, std: Float) -> [Float] {
        (0..<count).map { _ in
            let u1 = max(rng.nextUnit(), 1e-12), u2 = rng.nextUnit()
            return std * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
    }
}
