import Dispatch
import Foundation
import PyramidLoader

/// Training throughput on synthetic batches, and the sgemm peak it is compared with
/// (`pyramid bench train`, `pyramid bench conv`). Benchmark support, not part of the trainer's API:
/// reach it with `@_spi(Benchmark) import PyramidTrain`.
@_spi(Benchmark)
public enum TrainBenchmark {
    /// GFLOP/s of the trainer's `gemm` (libxsmm's kernels, or OpenBLAS's `cblas_sgemm` with
    /// `PYRAMID_GEMM=openblas`) on `size`² matrices, `threads` single-threaded products at once (the
    /// way the trainer uses the cores).
    public static func sgemmPeak(size: Int = 1024, threads: Int, repetitions: Int = 3) -> Double {
        // The threads bound for this measurement only (Threads.with): nothing process-wide changes.
        return Threads.with(threads) {
            let n = size
            let bufs = (0..<threads).map { _ in (Tensor(shape: [n, n], values: Tensor.uniformValues(n * n, seed: 1)),
                                                 Tensor(shape: [n, n], values: Tensor.uniformValues(n * n, seed: 2)), Tensor(shape: [n, n])) }
            var best = Double.infinity
            for _ in 0..<repetitions {
                let start = DispatchTime.now().uptimeNanoseconds
                parallelFor(threads) { t in
                    let (a, b, c) = bufs[t]
                    gemm(transA: false, transB: false, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, beta: 0, c: c.data, ldc: n)
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return 2 * Double(n * n * n) * Double(threads) / best / 1e9
        }
    }

    /// Result of ``trainingSteps(model:size:channels:batch:steps:threads:)``.
    public struct Result: Codable, Sendable {
        /// The image side timed.
        public var size: Int
        public var imagesPerSecond: Double
        /// Forward multiply-adds per image.
        public var macs: Int
        /// Achieved GFLOP/s counting a training step as 3 forward passes (2 FLOPs per MAC).
        public var gflops: Double
        /// With `profile`: seconds per step by kind of layer (``LayerProfile``), measured over
        /// `steps` more steps, the last row the rest of the step ("everything else").
        public var layers: [LayerProfile.Row]?
    }

    /// Times `steps` full training steps (forward, loss, backward, SGD) of `model` on random data;
    /// images/s of the median step.
    public static func trainingSteps(model: String, size: Int, channels: Int, batch: Int, steps: Int, threads: Int,
                                     algorithm: Conv2D.Algorithm = .auto, profile: Bool = false) throws -> Result {
        // The threads bound for this measurement only (Threads.with): nothing process-wide changes.
        return try Threads.with(threads) {
            let network = try Network(.init(architecture: model, inputChannels: channels, classes: 10))
            network.convolutionTuning.algorithm = algorithm
            let sgd = SGD(store: network.store, configuration: .init())
            let images = Tensor.uniformValues(batch * channels * size * size, seed: 3)
            let labels = (0..<batch).map { Int32($0 % 10) }
            let grad = Tensor(shape: [0])
            func step() {
                network.store.zeroGrads()
                let x = images.withUnsafeBufferPointer { network.setInput($0, count: batch, channels: channels, size: size) }
                let logits = network.forward(x)
                _ = Losses.crossEntropy(logits: logits, labels: labels, grad: grad)
                network.backward(grad)
                sgd.step(lr: 0.01)
            }
            step()  // warm-up: buffers allocated, pages touched
            // The median step: the machine is shared, and a neighbour's burst lengthens a few steps by
            // a lot; the median is what a step costs here (Tools/bench/pytorch_resnet.py does the same).
            var times: [Double] = []
            for _ in 0..<steps {
                let start = DispatchTime.now().uptimeNanoseconds
                step()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            var layers: [LayerProfile.Row]?
            if profile {
                let p = LayerProfile()
                network.context.profile = p
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<steps { step() }
                let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                network.context.profile = nil
                var rows = p.table.map { LayerProfile.Row(layer: $0.layer, forwardSeconds: $0.forwardSeconds / Double(steps),
                                                          backwardSeconds: $0.backwardSeconds / Double(steps), calls: $0.calls / steps) }
                let claimed = rows.reduce(0) { $0 + $1.forwardSeconds + $1.backwardSeconds }
                rows.append(LayerProfile.Row(layer: LayerProfile.remainderRow, forwardSeconds: total / Double(steps) - claimed, backwardSeconds: 0, calls: 0))
                layers = rows
            }
            let macs = network.macs(size: size)
            let rate = Double(batch) / median
            return Result(size: size, imagesPerSecond: rate, macs: macs, gflops: rate * Double(macs) * 3 * 2 / 1e9, layers: layers)
        }
    }
}


@_spi(Benchmark)
extension TrainBenchmark {
    /// One 3×3, padding-1 convolution layer to time, written `CIN:COUT@SIZE` with `/2` for stride 2
    /// (e.g. `16:32@28/2`).
    public struct ConvolutionLayer: Equatable, Sendable, CustomStringConvertible {
        public var inChannels: Int, outChannels: Int, size: Int, stride: Int

        /// Parses `CIN:COUT@SIZE[/2]`.
        /// - Throws: ``TrainError/invalidSetting(setting:reason:)`` (setting `layers`) for any other text.
        public init(_ spec: String) throws {
            let parts = spec.split(whereSeparator: { ":@/".contains($0) }).compactMap { Int($0) }
            let separators = spec.filter { ":@/".contains($0) }
            guard (parts.count == 3 && separators == ":@") || (parts.count == 4 && separators == ":@/" && parts[3] == 2),
                  parts[..<3].allSatisfy({ $0 > 0 }) else {
                throw TrainError.invalidSetting(setting: "layers", reason: "'\(spec)' is not CIN:COUT@SIZE[/2]")
            }
            inChannels = parts[0]; outChannels = parts[1]; size = parts[2]; stride = parts.count == 4 ? 2 : 1
        }

        public var description: String { "\(inChannels):\(outChannels)@\(size)" + (stride == 2 ? "/2" : "") }
    }

    /// Timing of one convolution layer with one method (``convolution(inChannels:outChannels:size:stride:batch:threads:repetitions:methods:)``).
    public struct ConvolutionResult: Sendable {
        /// The algorithm timed.
        public var method: Conv2D.Algorithm
        /// Seconds of the fastest forward and backward (weight and input gradients).
        public var forward: Double, backward: Double
        /// Forward multiply-adds of the whole batch.
        public var macs: Int
    }

    /// Times forward and backward of one 3×3 convolution (padding 1) in training mode on a random
    /// `(Cin, batch, size, size)` input with each method, the methods alternating `repetitions`
    /// times so that they see the same machine; the fastest of each.
    public static func convolution(inChannels: Int, outChannels: Int, size: Int, stride: Int = 1, batch: Int, threads: Int,
                                   repetitions: Int = 9, methods: [Conv2D.Algorithm]) -> [ConvolutionResult] {
        // The threads bound for this measurement only (Threads.with): nothing process-wide changes.
        return Threads.with(threads) {
            let store = ParameterStore()
            var initializer = Initializer(seed: 1)
            let conv = Conv2D(store, inChannels, outChannels, kernel: 3, stride: stride, padding: 1, initializer: &initializer, name: "conv")
            store.finalize()
            // Training mode, as in a training step (the layer holds its context weakly).
            let context = ModelContext()
            conv.context = context
            defer { withExtendedLifetime(context) {} }
            let x = Tensor(shape: [inChannels, batch, size, size], values: Tensor.uniformValues(inChannels * batch * size * size, seed: 5))
            let y = conv.forward(x, branch: 0)
            let g = Tensor(shape: y.shape, values: Tensor.uniformValues(y.count, seed: 6))
            var results = methods.map { ConvolutionResult(method: $0, forward: .infinity, backward: .infinity, macs: conv.lastMacs * batch) }
            for m in methods { conv.tuning.algorithm = m; _ = conv.forward(x, branch: 0); _ = conv.backward(g, branch: 0) }
            for _ in 0..<repetitions {
                for (i, m) in methods.enumerated() {
                    conv.tuning.algorithm = m
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = conv.forward(x, branch: 0)
                    let t1 = DispatchTime.now().uptimeNanoseconds
                    _ = conv.backward(g, branch: 0)
                    let t2 = DispatchTime.now().uptimeNanoseconds
                    results[i].forward = min(results[i].forward, Double(t1 - t0) / 1e9)
                    results[i].backward = min(results[i].backward, Double(t2 - t1) / 1e9)
                }
            }
            return results
        }
    }
}
