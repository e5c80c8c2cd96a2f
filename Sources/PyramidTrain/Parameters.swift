import COpenBLAS
import PyramidCache

/// All parameters of a model in one contiguous block, and their gradients followed by the
/// non-trainable state (BatchNorm running statistics) in another (llm.c's
/// `malloc_and_point_parameters`): zeroing, the SGD step, a checkpoint and a data-parallel
/// exchange are single loops, writes or allreduces.
public final class ParameterStore {
    /// What a parameter is, for weight decay and initialization.
    public enum Kind: String, Sendable {
        /// Convolution or linear weights.
        case weight
        /// Biases.
        case bias
        /// BatchNorm scale γ.
        case scale
        /// BatchNorm shift β.
        case shift
        /// MRED ensemble weights α.
        case alpha
    }

    /// A range of the parameter (or state) block.
    public struct Slice: Sendable {
        public let offset: Int
        public let count: Int
        public let kind: Kind
        public let name: String
    }

    public private(set) var slices: [Slice] = []
    public private(set) var stateSlices: [(offset: Int, count: Int, name: String)] = []
    private var initial: [[Float]] = []
    private var initialState: [[Float]] = []
    /// Parameters, gradients and state; valid once the model has added all its parameters. The
    /// layers, the optimizer and checkpoints use them inside the module; users reach them through
    /// ``withUnsafeMutableParameters(_:)`` and the array copies.
    private(set) var values: UnsafeMutablePointer<Float>!
    private(set) var grads: UnsafeMutablePointer<Float>!
    private(set) var state: UnsafeMutablePointer<Float>!
    public private(set) var count = 0
    public private(set) var stateCount = 0

    public init() {}

    deinit { values?.deallocate(); grads?.deallocate() }

    /// Values a training step sums over the ranks besides the gradients and the state, at the end of
    /// the exchange block (loss, hits, images, stop request).
    public static let stepScalarCount = 4

    /// Reserves a parameter with its initial values; returns its offset.
    func add(_ values: [Float], kind: Kind, name: String) -> Int {
        precondition(self.values == nil, "add parameters before finalize()")
        slices.append(Slice(offset: count, count: values.count, kind: kind, name: name))
        initial.append(values)
        count += values.count
        return count - values.count
    }

    /// Reserves non-trainable state; returns its offset.
    func addState(_ values: [Float], name: String) -> Int {
        precondition(state == nil, "add state before finalize()")
        stateSlices.append((stateCount, values.count, name))
        initialState.append(values)
        stateCount += values.count
        return stateCount - values.count
    }

    /// Allocates the blocks and writes the initial values.
    func finalize() {
        // Gradients, state and a step's scalars are one block, so that a distributed step sums
        // them over the ranks in one allreduce (``withUnsafeMutableExchangeBlock(_:)``).
        values = .allocate(capacity: max(1, count))
        grads = .allocate(capacity: exchangeCount)
        state = grads + count
        grads.initialize(repeating: 0, count: exchangeCount)
        for (s, v) in zip(slices, initial) { v.withUnsafeBufferPointer { (values + s.offset).initialize(from: $0.baseAddress!, count: s.count) } }
        for (s, v) in zip(stateSlices, initialState) { v.withUnsafeBufferPointer { (state + s.offset).initialize(from: $0.baseAddress!, count: s.count) } }
        initial = []; initialState = []
    }

    /// Floats in the exchange block: gradients, state, then ``stepScalarCount`` step scalars.
    public var exchangeCount: Int { count + stateCount + Self.stepScalarCount }

    /// Calls `body` with the exchange block: the gradients (``count``), then the state
    /// (``stateCount``), then ``stepScalarCount`` scalars of the step, contiguous, so that a
    /// data-parallel step sums all of them over the ranks in one allreduce; valid only inside `body`.
    public func withUnsafeMutableExchangeBlock<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: grads, count: exchangeCount))
    }

    /// A data-parallel step's exchange: sums the gradients, the state and `scalars` (at most
    /// ``stepScalarCount``) over `group` in one allreduce of the exchange block, and averages the
    /// gradients and the state. Every rank then holds the same values, so the optimizer keeps the
    /// replicas identical and a checkpoint is the same whichever rank writes it.
    /// - Returns: the sums of `scalars`.
    public func exchange(over group: ProcessGroup, scalars: [Float]) -> [Float] {
        precondition(scalars.count <= Self.stepScalarCount, "at most \(Self.stepScalarCount) scalars")
        let n = count + stateCount
        return withUnsafeMutableExchangeBlock { block in
            for (i, v) in scalars.enumerated() { block[n + i] = v }
            group.allreduceSum(block)
            cblas_sscal(Int32(n), 1 / Float(group.size), block.baseAddress, 1)
            return Array(block[n..<(n + scalars.count)])
        }
    }

    /// Sets every gradient to zero.
    public func zeroGrads() { grads.update(repeating: 0, count: count) }

    /// Calls `body` with the parameter, gradient and state blocks (``count``, ``count`` and
    /// ``stateCount`` values, laid out as ``slices`` and ``stateSlices`` say); valid only inside `body`.
    public func withUnsafeMutableParameters<R>(
        _ body: (_ values: UnsafeMutableBufferPointer<Float>, _ grads: UnsafeMutableBufferPointer<Float>,
                 _ state: UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: values, count: count), UnsafeMutableBufferPointer(start: grads, count: count),
                 UnsafeMutableBufferPointer(start: state, count: stateCount))
    }

    /// The parameters as an array (a copy).
    public var parameterArray: [Float] { Array(UnsafeBufferPointer(start: values, count: count)) }
    /// The state as an array (a copy).
    public var stateArray: [Float] { Array(UnsafeBufferPointer(start: state, count: stateCount)) }
    /// The gradients as an array (a copy).
    public var gradArray: [Float] { Array(UnsafeBufferPointer(start: grads, count: count)) }
}
