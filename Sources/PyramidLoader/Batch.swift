/// How a batch's images are laid out.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// `Float32`, `(N, C, H, W)`, normalized with the manifest's per-channel mean and std:
    /// `(pixel/255 − mean) / std`. What a trainer consumes.
    case float32
    /// `Float32`, `(C, N, H, W)`, normalized as ``float32``: channel `c` of every sample in one
    /// block. The layout PyramidTrain computes in, so its input needs no transpose.
    case float32ChannelMajor
    /// `UInt8`, `(N, H, W, C)`, the pixels as rendered. For viewing, or one's own normalization.
    case uint8

    /// Bytes per value.
    public var bytesPerValue: Int { self == .uint8 ? 1 : 4 }
    /// Whether the values are normalized floats.
    public var isFloat: Bool { self != .uint8 }
}

/// One step's data for one rank.
///
/// Images live in a buffer the loader reuses: it goes back to the loader when the `Batch` is
/// released (normally when the `for` loop moves on). Pointers from ``images(size:)`` are valid while
/// you hold the batch; copy (``BatchImages/floatArray()``) what you want to keep longer.
/// `labels` and `indices` are ordinary arrays and can be kept.
public final class Batch: Sendable {
    /// The epoch.
    public let epoch: Int
    /// The step within the epoch (0-based; counts steps of the whole plan, also when resumed).
    public let step: Int
    /// The step's plan: sizes, batch, duplicates, stream position.
    public let plan: StepPlan
    /// Samples in this batch: images × duplicates (duplicates of an image are adjacent).
    public let count: Int
    /// The label of each sample.
    public let labels: [Int32]
    /// The sample index (in the cache) of each sample; after a substitution, the replacement's index.
    public let indices: [Int]
    /// Samples of this batch whose record was corrupt and was substituted (policy `substitute`).
    public let substitutions: Int
    /// Image layout and element type.
    public let format: OutputFormat
    /// Channels per pixel (1 or 3).
    public let channels: Int

    let storage: BatchStorage
    private let run: EpochRun

    init(storage: BatchStorage, run: EpochRun) {
        self.storage = storage; self.run = run
        epoch = storage.epoch; step = storage.step; plan = storage.plan; count = storage.count
        labels = storage.labels; indices = storage.indices; substitutions = storage.substitutions
        format = storage.format; channels = storage.channels
    }

    deinit { run.recycle(storage) }

    /// The output size(s), largest first for ``Parallel``.
    public var sizes: [Int] { plan.sizes }
    /// The size of a single-size step (the first size for ``Parallel``).
    public var size: Int { plan.sizes[0] }
    /// The stream position right after this step: with ``epoch``, the state to resume from
    /// (``Loader/batches(epoch:from:)``).
    public var nextCursor: Int { plan.cursor + plan.globalImages }
    /// A number identifying the reusable buffer behind this batch (diagnostics, tests).
    public var bufferID: Int { storage.id }

    /// The images at `size` (default: the step's first size).
    public func images(size: Int? = nil) -> BatchImages {
        let s = size ?? plan.sizes[0]
        guard let v = plan.sizes.firstIndex(of: s) else {
            preconditionFailure("this batch has sizes \(plan.sizes), not \(s)")
        }
        let elements = count * channels * s * s
        let raw = storage.views[v].pointer
        switch format {
        case .float32, .float32ChannelMajor:
            return BatchImages(size: s, channels: channels, count: count, format: format,
                               floats: UnsafeBufferPointer(start: raw.assumingMemoryBound(to: Float.self), count: elements),
                               bytes: UnsafeBufferPointer(start: nil, count: 0))
        case .uint8:
            return BatchImages(size: s, channels: channels, count: count, format: format,
                               floats: UnsafeBufferPointer(start: nil, count: 0),
                               bytes: UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: elements))
        }
    }
}

/// The images of a batch at one size. The buffers belong to the ``Batch``: valid while it lives.
public struct BatchImages {
    /// Side of every image.
    public let size: Int
    public let channels: Int
    /// Number of images.
    public let count: Int
    public let format: OutputFormat
    /// The pixels for ``OutputFormat/float32`` (NCHW) or ``OutputFormat/float32ChannelMajor``
    /// (CNHW), empty otherwise.
    public let floats: UnsafeBufferPointer<Float>
    /// The pixels for ``OutputFormat/uint8`` (NHWC), empty otherwise.
    public let bytes: UnsafeBufferPointer<UInt8>

    /// `[N, C, H, W]` for float32, `[C, N, H, W]` for float32ChannelMajor, `[N, H, W, C]` for uint8.
    public var shape: [Int] {
        switch format {
        case .float32: [count, channels, size, size]
        case .float32ChannelMajor: [channels, count, size, size]
        case .uint8: [count, size, size, channels]
        }
    }
    /// A copy of the float pixels.
    public func floatArray() -> [Float] { Array(floats) }
    /// A copy of the byte pixels.
    public func byteArray() -> [UInt8] { Array(bytes) }
}

/// A reusable batch buffer: one growable block per view, plus labels and indices.
///
/// `@unchecked Sendable`: a buffer has one owner at a time (the pool, one worker, or one ``Batch``),
/// and every change of owner goes through its run's mutex.
final class BatchStorage: @unchecked Sendable {
    struct View { var pointer: UnsafeMutableRawPointer; var capacity: Int }
    let id: Int
    var views: [View] = []
    var labels: [Int32] = []
    var indices: [Int] = []
    var substitutions = 0
    var epoch = 0, step = 0, count = 0, channels = 1
    var plan = StepPlan(sizes: [], batchSize: 0)
    var format = OutputFormat.float32

    init(id: Int) { self.id = id }

    deinit { for v in views { v.pointer.deallocate() } }

    /// Makes room for `count` samples at `sizes` (growing blocks only when too small).
    func prepare(plan: StepPlan, epoch: Int, step: Int, count: Int, channels: Int, format: OutputFormat) {
        self.plan = plan; self.epoch = epoch; self.step = step; self.count = count
        self.channels = channels; self.format = format
        let element = format.bytesPerValue
        while views.count < plan.sizes.count {
            views.append(View(pointer: .allocate(byteCount: 64, alignment: 64), capacity: 64))
        }
        for (v, s) in plan.sizes.enumerated() {
            let need = max(64, count * channels * s * s * element)
            if views[v].capacity < need {
                views[v].pointer.deallocate()
                views[v] = View(pointer: .allocate(byteCount: need, alignment: 64), capacity: need)
            }
        }
        labels.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
        substitutions = 0
    }

    /// Bytes held.
    var bytes: Int { views.reduce(0) { $0 + $1.capacity } }
}
