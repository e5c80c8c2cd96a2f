import Foundation
import PyramidCache
import PyramidLoader

/// Accuracy of a network at a test size (docs/design.md, "Evaluation"): the cache's evaluation view resized to
/// `t × t`, BatchNorm from running statistics (one bank, or two interpolated), optionally
/// recalibrated at `t` on augmented training data first (MixSize's calibration).
public final class Evaluator {
    /// One test size's result.
    public struct Result: Codable, Equatable, Sendable {
        public var size: Int
        public var top1: Double
        public var top5: Double
        public var samples: Int
        /// Forward multiply-adds per image.
        public var macs: Int
        /// How BatchNorm was set: "bank 0", "interpolate 1-2 @0.5", "running", …
        public var batchNorm: String
        /// Calibration batches run before evaluating (0: none).
        public var calibrationBatches: Int
    }

    public let network: Network
    let testCache: CacheReader
    let workers: Int
    /// The processes sharing the work: each evaluates its rank's part of the test set and the
    /// counts are summed; calibration averages the ranks' statistics.
    let group: ProcessGroup

    public init(network: Network, testCache: String, workers: Int = 2, group: ProcessGroup = SingleProcess(),
                remote: RemoteOptions = RemoteOptions()) throws {
        self.network = network
        self.testCache = try CacheReader.open(testCache, remote: remote)
        self.workers = workers
        self.group = group
        guard self.testCache.manifest.channels == network.configuration.inputChannels,
              self.testCache.manifest.classes.count == network.configuration.classes else {
            throw TrainError.incompatibleCache(path: testCache, channels: self.testCache.manifest.channels,
                                               classes: self.testCache.manifest.classes.count,
                                               modelChannels: network.configuration.inputChannels, modelClasses: network.configuration.classes)
        }
    }

    /// Top-1/top-5 at `size` with `bank`.
    public func evaluate(size: Int, bank: ModelContext.Bank, batchSize: Int = 256) throws -> Result {
        let loader = try Loader(cache: testCache, configuration: LoaderConfiguration(
            schedule: Fixed(size: size), batchSize: batchSize, rank: group.rank, worldSize: group.size, augmentation: nil,
            output: .float32ChannelMajor, workers: workers, shuffle: false, dropLast: false))
        let ctx = network.context
        let saved = (ctx.training, ctx.bank)
        defer { (ctx.training, ctx.bank) = saved }
        ctx.training = false
        ctx.bank = bank
        var top1 = 0, top5 = 0, n = 0
        var it = try loader.batches(epoch: 0)
        while let batch = try it.next() {
            guard batch.count > 0 else { continue }
            let x = network.setInput(batch.images().floats, count: batch.count, channels: batch.channels, size: size,
                                     branch: Network.Branch.evaluation, layout: .channelsFirst)
            let logits = network.forward(x, branch: Network.Branch.evaluation)
            let h = Losses.hits(logits: logits, labels: batch.labels)
            top1 += h.top1; top5 += h.topK; n += batch.count
        }
        if group.size > 1 {
            var counts = [Double(top1), Double(top5), Double(n)]
            group.allreduceSum(&counts)
            (top1, top5, n) = (Int(counts[0]), Int(counts[1]), Int(counts[2]))
        }
        let label: String
        switch bank {
        case .bank(let b): label = network.configuration.banks > 1 ? "bank \(b)" : "running"
        case .interpolate(let a, let b, let t): label = String(format: "interpolate %d-%d @%.2f", a, b, t)
        }
        return Result(size: size, top1: Double(top1) / Double(max(n, 1)), top5: Double(top5) / Double(max(n, 1)), samples: n,
                      macs: network.macs(size: size), batchNorm: label, calibrationBatches: 0)
    }

    /// Re-estimates BatchNorm statistics at `size` from `batches` batches of augmented training
    /// data (docs/design.md, "MixSize": reset, plain average of batch statistics, train mode, no gradients).
    /// Returns the state before, for ``restore(_:)``.
    public func calibrate(size: Int, trainCache: CacheReader, batches: Int, batchSize: Int = 256, seed: UInt64 = 0,
                          augmentation: Augmentation? = nil, bank: Int = 0) throws -> [Float] {
        let before = network.store.stateArray
        let loader = try Loader(cache: trainCache, configuration: LoaderConfiguration(
            schedule: Fixed(size: size), batchSize: max(1, batchSize / group.size), seed: seed &+ 0xCA1, rank: group.rank,
            worldSize: group.size, augmentation: augmentation, output: .float32ChannelMajor, workers: workers))
        let ctx = network.context
        let saved = (ctx.training, ctx.bank, ctx.calibrating)
        defer { (ctx.training, ctx.bank, ctx.calibrating) = saved }
        network.resetBatchNormStatistics()
        ctx.training = true
        ctx.calibrating = true
        ctx.bank = .bank(bank)
        var done = 0, epoch = 0
        while done < batches {
            var it = try loader.batches(epoch: epoch)
            var any = false
            while done < batches, let batch = try it.next() {
                any = true
                let x = network.setInput(batch.images().floats, count: batch.count, channels: batch.channels, size: size,
                                         branch: Network.Branch.calibration, layout: .channelsFirst)
                _ = network.forward(x, branch: Network.Branch.calibration)
                ctx.calibrationBatches += 1
                done += 1
            }
            if !any { break }
            epoch += 1
        }
        // Each rank averaged its share of every batch: the mean of the ranks' averages is the
        // average over the whole batches.
        if group.size > 1 {
            network.store.withUnsafeMutableParameters { _, _, state in
                group.allreduceSum(state)
                for i in state.indices { state[i] /= Float(group.size) }
            }
        }
        return before
    }

    /// Puts back BatchNorm state saved by ``calibrate(size:trainCache:batches:batchSize:seed:augmentation:bank:)``.
    public func restore(_ state: [Float]) {
        state.withUnsafeBufferPointer { network.store.state.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// The bank choice for a test size given the training sizes of the banks (largest first):
    /// the bank of that size, the interpolation of its two neighbours, or the nearest bank outside
    /// the trained range (RS-Nets §4.3; docs/design.md, "RS-Nets").
    public static func bank(for size: Int, trainedSizes: [Int]) -> ModelContext.Bank {
        if let i = trainedSizes.firstIndex(of: size) { return .bank(i) }
        guard let largest = trainedSizes.first, let smallest = trainedSizes.last else { return .bank(0) }
        if size > largest { return .bank(0) }
        if size < smallest { return .bank(trainedSizes.count - 1) }
        // Neighbours: a (larger) at index i, b (smaller) at i+1.
        let i = trainedSizes.lastIndex(where: { $0 > size })!
        let big = trainedSizes[i], small = trainedSizes[i + 1]
        let towardsSmall = Float(big - size) / Float(big - small)
        return .interpolate(i, i + 1, towardsSmall)
    }
}
