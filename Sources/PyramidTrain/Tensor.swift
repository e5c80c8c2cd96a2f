import PyramidLoader
/// A Float32 buffer with a shape. Storage is owned, 64-byte aligned, and reused when a layer
/// asks for the same or a smaller shape again (``reshape(_:)``), so a training step allocates
/// nothing once the largest batch has been seen.
///
/// Activations inside a model use the layout `(C, N, H, W)`: channel-major across the whole
/// batch, so that a convolution over the batch is one GEMM per thread and BatchNorm's statistics
/// are contiguous runs. Inputs arrive from the loader as `(N, C, H, W)` and are transposed once.
public final class Tensor {
    /// The dimensions.
    public private(set) var shape: [Int]
    /// Number of elements.
    public private(set) var count: Int
    /// The elements; valid until the next ``reshape(_:)`` that grows the tensor. Kernels and layers
    /// use it inside the module; users reach the storage through ``withUnsafeBufferPointer(_:)``
    /// and ``withUnsafeMutableBufferPointer(_:)``.
    private(set) var data: UnsafeMutablePointer<Float>
    private var capacity: Int

    /// A zero-filled tensor.
    public init(shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        capacity = max(count, 16)
        data = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64).bindMemory(to: Float.self, capacity: capacity)
        data.initialize(repeating: 0, count: capacity)
    }

    /// A tensor holding `values`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { data.deallocate() }

    /// Changes the shape, growing the storage if needed (contents are then undefined).
    public func reshape(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        if n > capacity {
            data.deallocate()
            capacity = n
            data = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64).bindMemory(to: Float.self, capacity: capacity)
        }
        shape = newShape
        count = n
    }

    /// Sets every element to zero.
    public func zero() { data.update(repeating: 0, count: count) }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Calls `body` with the elements; the buffer is valid only inside `body`.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: data, count: count))
    }

    /// Calls `body` with the elements to change them; the buffer is valid only inside `body`.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: data, count: count))
    }

    /// Element access by flat index.
    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Copies `other`'s shape and elements.
    public func copy(from other: Tensor) {
        reshape(other.shape)
        data.update(from: other.data, count: count)
    }
}

extension Tensor {
    /// `count` values uniform in [−scale, scale) from ``SplitMix64``(seed): inputs for benchmarks,
    /// gradient checks and kernel comparisons.
    static func uniformValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in scale * Float(rng.nextUnit() * 2 - 1) }
    }
}
