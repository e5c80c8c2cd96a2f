import Dispatch

/// Where a training step's time goes, by kind of layer (`pyramid bench train --profile`). Set
/// ``ModelContext/profile`` and every convolution, BatchNorm and residual sum adds its forward and
/// backward wall time to a row; what no row claims (pooling, classifier, loss, optimizer, input
/// layout) is the step's remainder. Benchmark support: `@_spi(Benchmark) import PyramidTrain`.
@_spi(Benchmark)
public final class LayerProfile {
    /// One row: a kind of layer, its total forward and backward seconds, and how many layer calls
    /// they cover.
    public struct Row: Codable, Sendable, Equatable {
        public var layer: String
        public var forwardSeconds: Double
        public var backwardSeconds: Double
        public var calls: Int
    }

    private var rows: [Row] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// The rows in the order they were first met (a forward pass's order).
    public var table: [Row] { rows }

    /// Forgets every row.
    public func reset() { rows = []; index = [:] }

    func add(_ layer: String, backward: Bool, nanoseconds: UInt64) {
        let k: Int
        if let i = index[layer] { k = i } else {
            k = rows.count; index[layer] = k
            rows.append(Row(layer: layer, forwardSeconds: 0, backwardSeconds: 0, calls: 0))
        }
        let s = Double(nanoseconds) / 1e9
        if backward { rows[k].backwardSeconds += s } else { rows[k].forwardSeconds += s; rows[k].calls += 1 }
    }

    /// The row of a convolution: the stem (the one on the image, 1 or 3 channels in) alone, 1×1
    /// shortcuts together, the other 3×3 convolutions by their output plane (so a stride-2
    /// convolution counts with the stage it starts). `Tools/bench/pytorch_profile.py` groups
    /// PyTorch's operators the same way.
    static func convolutionRow(kernel: Int, inChannels: Int, outputHeight: Int, outputWidth: Int) -> String {
        if inChannels <= 3 { return "stem \(kernel)x\(kernel) convolution, \(outputHeight)x\(outputWidth) output" }
        return kernel == 1 ? "1x1 shortcut convolutions" : "\(kernel)x\(kernel) convolutions, \(outputHeight)x\(outputWidth) output"
    }

    /// What no layer row claims: pooling, classifier, loss, optimizer, input layout (its time is
    /// all in `forwardSeconds`).
    public static let remainderRow = "everything else (pooling, classifier, loss, SGD, input)"

    /// BatchNorm (with the ReLU fused into it) and the residual sum with its ReLU.
    static let normalizationRow = "BatchNorm, ReLU, residual sums"

    /// Runs `body`, adding its wall time to `row` when `profile` is set.
    @inline(__always)
    static func time<T>(_ profile: LayerProfile?, _ row: @autoclosure () -> String, backward: Bool, _ body: () -> T) -> T {
        guard let profile else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        profile.add(row(), backward: backward, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
        return result
    }
}
