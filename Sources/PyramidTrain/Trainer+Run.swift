import Foundation
import PyramidCache
import PyramidLoader

extension Trainer {
    /// Forward multiply-adds of one image at `size` (cached).
    func macs(_ size: Int) -> Int {
        if let m = macsPerSize[size] { return m }
        let m = network.macs(size: size)
        macsPerSize[size] = m
        return m
    }

    func saveCheckpoint(_ name: String = Trainer.checkpointFile) throws {
        let store = network.store
        try Checkpoint(header: header, parameters: store.parameterArray, state: store.stateArray, velocity: optimizer.velocity)
            .write(to: directory.appendingPathComponent(name))
    }

    private func appendLog(_ entry: EpochLog) throws {
        let url = directory.appendingPathComponent(Self.logFile)
        let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(entry)
        line.append(0x0A)
        if let handle = try? FileHandle(forWritingTo: url) {
            defer { try? handle.close() }
            handle.seekToEndOfFile()
            handle.write(line)
        } else {
            try line.write(to: url)
        }
    }

    /// Where the loader continues: (epoch, stream cursor).
    public var loaderPosition: (epoch: Int, cursor: Int) { (header.nextEpoch, header.nextCursor) }

    /// Trains the remaining epochs.
    /// - Parameters:
    ///   - progress: called after every step.
    ///   - onEpoch: called with each finished epoch's log line.
    ///   - shouldStop: polled after every step; when true, a checkpoint with the loader position is
    ///     written and ``TrainError/interrupted(directory:epoch:cursor:)`` is thrown.
    /// - Returns: the log of the epochs trained by this call.
    /// - Throws: ``TrainError/nonFinite(epoch:step:loss:)`` (the last checkpoint is kept), loader errors,
    ///   `CacheError.locked` when another process is training in the same directory.
    @discardableResult
    public func run(progress: ((Progress) -> Void)? = nil, onEpoch: ((EpochLog) -> Void)? = nil,
                    shouldStop: () -> Bool = { false }) throws -> [EpochLog] {
        // One writer per run directory: a second process training (or resuming) it is refused.
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lock = try DirectoryLock(directory: directory)
        defer { withExtendedLifetime(lock) {} }
        if header.steps == 0 && header.nextCursor == 0 && header.nextEpoch == 0 {
            try configuration.save(in: directory)
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(Self.logFile))
            try saveCheckpoint()
        }
        let c = configuration
        let sizesOfParallel = (schedule as? Parallel)?.sizes
        let ctx = network.context
        var logs: [EpochLog] = []
        let gradTensors = (0..<max(1, sizesOfParallel?.count ?? 1)).map { _ in Tensor(shape: [0]) }
        for epoch in header.nextEpoch..<c.epochs {
            let cursor = epoch == header.nextEpoch ? header.nextCursor : 0
            let fullSteps = loader.plan(epoch: epoch).steps.count
            if c.resetSmoothingAtMilestones && c.learningRate.kind == .multistep && c.learningRate.milestones.contains(epoch) && cursor == 0 {
                smoothing?.reset()
            }
            var it = try loader.batches(epoch: epoch, from: cursor)
            let started = Date()
            var lossSum = 0.0, steps = 0, hits = 0, seen = 0, epochMacs = 0.0, lr: Float = 0, earlierSeconds = 0.0
            var sizes = Set<Int>()
            // A resumed epoch continues the sums it was interrupted with.
            let resumedSums = cursor > 0 ? header.epochProgress : nil
            if let p = resumedSums {
                (lossSum, steps, hits, seen, epochMacs, earlierSeconds) = (p.lossSum, p.steps, p.hits, p.seen, p.macs, p.seconds)
                sizes = Set(p.sizes)
            }
            header.epochProgress = nil
            while let batch = try it.next() {
                lr = c.learningRate.rate(epoch: epoch, step: batch.step, stepsInEpoch: fullSteps, epochs: c.epochs)
                network.store.zeroGrads()
                ctx.training = true
                ctx.calibrating = false
                var loss: Float
                if let parallel = sizesOfParallel, let mred, let alpha = alphaOffset {
                    var logits: [Tensor] = []
                    for (b, s) in parallel.enumerated() {
                        ctx.bank = .bank(network.bank(b))
                        let x = network.setInput(batch.images(size: s).floats, count: batch.count, channels: batch.channels, size: s, branch: b)
                        logits.append(network.forward(x, branch: b))
                    }
                    for (b, g) in gradTensors.enumerated() { g.reshape(logits[b].shape) }
                    let terms = mred.loss(logits: logits, labels: batch.labels, alpha: network.store.values + alpha,
                                          alphaGrad: network.store.grads + alpha, grads: gradTensors)
                    loss = terms.total
                    hits += Losses.hits(logits: logits[0], labels: batch.labels).top1
                    for b in parallel.indices {
                        ctx.bank = .bank(network.bank(b))
                        network.backward(gradTensors[b], branch: b)
                    }
                } else {
                    ctx.bank = .bank(0)
                    let x = network.setInput(batch.images().floats, count: batch.count, channels: batch.channels, size: batch.size)
                    let logits = network.forward(x, branch: 0)
                    loss = Losses.crossEntropy(logits: logits, labels: batch.labels, smoothing: c.labelSmoothing, grad: gradTensors[0])
                    hits += Losses.hits(logits: logits, labels: batch.labels).top1
                    network.backward(gradTensors[0], branch: 0)
                }
                guard loss.isFinite else { throw TrainError.nonFinite(epoch: epoch, step: batch.step, loss: loss) }
                smoothing?.apply(to: network.store)
                optimizer.step(lr: lr)
                header.steps += 1
                steps += 1
                lossSum += Double(loss)
                seen += batch.count
                let stepMacs = Double(batch.count) * Double(batch.sizes.reduce(0) { $0 + macs($1) })
                epochMacs += stepMacs
                header.trainingMacs += stepMacs
                batch.sizes.forEach { sizes.insert($0) }
                let elapsed = Date().timeIntervalSince(started)
                progress?(Progress(epoch: epoch, epochs: c.epochs, step: batch.step + 1, steps: fullSteps, loss: lossSum / Double(steps),
                                   imagesPerSecond: Double(seen) / max(earlierSeconds + elapsed, 1e-9), size: batch.size))
                if shouldStop() {
                    header.nextEpoch = epoch
                    header.nextCursor = batch.nextCursor
                    header.wallSeconds += elapsed
                    header.gradientSmoothing = smoothing
                    header.epochProgress = Checkpoint.EpochProgress(lossSum: lossSum, steps: steps, hits: hits, seen: seen, macs: epochMacs,
                                                         seconds: earlierSeconds + elapsed, sizes: sizes.sorted(by: >))
                    try saveCheckpoint()
                    throw TrainError.interrupted(directory: directory.path, epoch: epoch, cursor: batch.nextCursor)
                }
            }
            let seconds = Date().timeIntervalSince(started)
            let epochSeconds = earlierSeconds + seconds
            var entry = EpochLog(epoch: epoch, loss: lossSum / Double(max(steps, 1)), trainTop1: Double(hits) / Double(max(seen, 1)),
                                 learningRate: Double(lr), imagesPerSecond: Double(seen) / max(epochSeconds, 1e-9), seconds: epochSeconds,
                                 sizes: sizes.sorted(by: >), macs: epochMacs, cumulativeMacs: header.trainingMacs,
                                 partial: cursor > 0 && resumedSums == nil ? true : nil, alpha: network.ensembleWeights?.map(Double.init),
                                 substitutions: loader.substitutions.isEmpty ? nil : loader.substitutions.count)
            if let test = c.testCache {
                let evaluator = try Evaluator(network: network, testCache: test, workers: c.workers)
                let size = schedule.referenceSize
                let result = try evaluator.evaluate(size: size, bank: .bank(0))
                entry.validationTop1 = result.top1
                entry.validationSize = size
            }
            header.epochsDone = epoch + 1
            header.nextEpoch = epoch + 1
            header.nextCursor = 0
            header.wallSeconds += seconds
            header.gradientSmoothing = smoothing
            if let v = entry.validationTop1, v > (header.bestTop1 ?? -1) {
                header.bestTop1 = v
                header.bestEpoch = epoch
                try saveCheckpoint(Self.bestCheckpointFile)
            }
            try saveCheckpoint()
            try appendLog(entry)
            logs.append(entry)
            onEpoch?(entry)
        }
        return logs
    }
}
