import Dispatch
import Foundation
import PyramidCache
import PyramidLoader

@_spi(Benchmark)
extension TrainBenchmark {
    /// What ``dataParallelStep(cache:model:size:batch:seed:group:repetitions:)`` measured.
    public struct DataParallelResult: Codable, Sendable {
        public var processes: Int
        /// Images of the global batch (each rank took `batch / processes`).
        public var batch: Int
        /// Floats summed by one step's allreduce (gradients, BatchNorm statistics, 4 scalars).
        public var exchangeFloats: Int
        /// Rank 0: the largest, over the parameter tensors, of ‖g_split − g_whole‖ / ‖g_whole‖, where
        /// g_split is the ranks' averaged gradient of the global batch and g_whole the gradient of the
        /// same batch computed in one pass by rank 0 (BatchNorm frozen, so that no sample depends on
        /// the others in its batch).
        public var relativeError: Double
        /// The parameter tensor where it was largest.
        public var worstTensor: String
        /// ‖g_split − g_whole‖ / ‖g_whole‖ over all parameters at once.
        public var overallRelativeError: Double
        /// The loss of the global batch, both ways.
        public var splitLoss: Double, wholeLoss: Double
        /// Mean seconds of one allreduce of the exchange block (after a warm-up one).
        public var allreduceSeconds: Double
    }

    /// Checks the data-parallel step of `group`: one global batch of `batch` images at `size` from
    /// `cache` (the loader's training view, epoch 0, first step), split among the ranks; each rank's
    /// gradient of its share, summed over the ranks by the trainer's exchange and averaged, must equal
    /// the gradient of the whole batch in one process. Every rank must call it.
    public static func dataParallelStep(cache: String, model: String, size: Int, batch: Int, seed: UInt64, group: ProcessGroup,
                                        threads: Int, repetitions: Int = 20, remote: RemoteOptions = RemoteOptions()) throws -> DataParallelResult {
        // The threads bound for this check only (Threads.with): nothing process-wide changes.
        return try Threads.with(threads) {
            let reader = try CacheReader.open(cache, remote: remote)
            let m = reader.manifest
            guard batch % group.size == 0 else {
                throw TrainError.invalidSetting(setting: "batch", reason: "\(batch) images cannot be split evenly among \(group.size) processes")
            }
            let network = try Network(.init(architecture: model, inputChannels: m.channels, classes: m.classes.count, seed: seed))
            let store = network.store
            func loader(rank: Int, worldSize: Int, images: Int) throws -> Loader {
                try Loader(cache: reader, configuration: LoaderConfiguration(
                    schedule: Fixed(size: size), batchSize: images, seed: seed, rank: rank, worldSize: worldSize, epochs: 1, workers: 1))
            }
            func gradient(of loader: Loader) throws -> Float {
                var it = try loader.batches(epoch: 0)
                guard let b = try it.next() else { throw TrainError.invalidSetting(setting: "batch", reason: "the cache holds fewer than \(batch) samples") }
                store.zeroGrads()
                network.context.training = true
                network.context.frozenBatchNorm = true
                defer { network.context.frozenBatchNorm = false }
                let x = network.setInput(b.images().floats, count: b.count, channels: b.channels, size: b.size)
                let logits = network.forward(x)
                let grad = Tensor(shape: [0])
                let loss = Losses.crossEntropy(logits: logits, labels: b.labels, grad: grad)
                network.backward(grad)
                return loss
            }
            // Running statistics other than the initial (0, 1), the same on every rank: one training
            // forward of the whole batch everywhere.
            do {
                var it = try loader(rank: 0, worldSize: 1, images: batch).batches(epoch: 0)
                if let b = try it.next() {
                    network.context.training = true
                    _ = network.forward(network.setInput(b.images().floats, count: b.count, channels: b.channels, size: b.size))
                }
            }
            // The split step: the trainer's exchange (gradients, statistics and scalars in one allreduce).
            let shareLoss = try gradient(of: loader(rank: group.rank, worldSize: group.size, images: batch / group.size))
            let splitLoss = Double(store.exchange(over: group, scalars: [shareLoss])[0]) / Double(group.size)
            let split = store.gradArray
            var result = DataParallelResult(processes: group.size, batch: batch, exchangeFloats: store.exchangeCount, relativeError: 0,
                                            worstTensor: "", overallRelativeError: 0, splitLoss: splitLoss, wholeLoss: splitLoss, allreduceSeconds: 0)
            if group.isRoot {
                result.wholeLoss = Double(try gradient(of: loader(rank: 0, worldSize: 1, images: batch)))
                let whole = store.gradArray
                func relative(_ range: Range<Int>) -> Double {
                    var d = 0.0, w = 0.0
                    for i in range { d += Double(split[i] - whole[i]) * Double(split[i] - whole[i]); w += Double(whole[i]) * Double(whole[i]) }
                    return (d / max(w, 1e-30)).squareRoot()
                }
                for s in store.slices {
                    let e = relative(s.offset..<(s.offset + s.count))
                    if e > result.relativeError { result.relativeError = e; result.worstTensor = s.name }
                }
                result.overallRelativeError = relative(0..<store.count)
            }
            // The allreduce alone, as a step makes it.
            var total = 0.0
            for r in 0...repetitions {
                let start = DispatchTime.now().uptimeNanoseconds
                store.withUnsafeMutableExchangeBlock { group.allreduceSum($0) }
                if r > 0 { total += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
            }
            result.allreduceSeconds = total / Double(max(repetitions, 1))
            let shared = group.broadcast(Array(try JSONEncoder().encode(result)), root: 0)
            return try JSONDecoder().decode(DataParallelResult.self, from: Data(shared))
        }
    }
}
