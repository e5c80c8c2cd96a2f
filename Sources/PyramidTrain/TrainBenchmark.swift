import Dispatch
import Foundation
import PyramidLoader

/// Training throughput on synthetic batches, and the sgemm peak it is compared with.
public enum TrainBenchmark {
    /// GFLOP/s of `cblas_sgemm` on `size`² matrices, `threads` single-threaded products at once
    /// (the way the trainer uses the cores).
    public static func sgemmPeak(size: Int = 1024, threads: Int, repetitions: Int = 3) -> Double {
        Threads.configure(threads)
        let n = size
        let bufs = (0..<threads).map { _ in (Tensor(shape: [n, n], values: GradientValues.random(n * n, seed: 1)),
                                             Tensor(shape: [n, n], values: GradientValues.random(n * n, seed: 2)), Tensor(shape: [n, n])) }
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

    /// Result of ``trainingSteps(model:size:channels:batch:steps:threads:)``.
    public struct Result: Sendable {
        public var imagesPerSecond: Double
        /// Forward multiply-adds per image.
        public var macs: Int
        /// Achieved GFLOP/s counting a training step as 3 forward passes (2 FLOPs per MAC).
        public var gflops: Double
    }

    /// Times `steps` full training steps (forward, loss, backward, SGD) of `model` on random data;
    /// images/s of the median step.
    public static func trainingSteps(model: String, size: Int, channels: Int, batch: Int, steps: Int, threads: Int) throws -> Result {
        Threads.configure(threads)
        let network = try Network(.init(architecture: model, inputChannels: channels, classes: 10))
        let sgd = SGD(store: network.store, configuration: .init())
        let images = GradientValues.random(batch * channels * size * size, seed: 3)
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
        let macs = network.macs(size: size)
        let rate = Double(batch) / median
        return Result(imagesPerSecond: rate, macs: macs, gflops: rate * Double(macs) * 3 * 2 / 1e9)
    }
}

enum GradientValues {
    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) }
    }
}
