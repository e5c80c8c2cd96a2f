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

    /// What one training step did, summed over the ranks.
    struct StepOutcome {
        /// The mean loss of the step's images (all ranks).
        var loss: Float
        var hits: Int
        var images: Int
        /// Some rank asked to stop after this step.
        var stop: Bool
    }

    /// One training step on this rank's share of a batch: forward, loss (cross-entropy, or MRED
    /// over the parallel sizes), backward, the ranks' exchange, gradient smoothing and the SGD
    /// update — unless the loss is not finite, when the parameters are left as they were.
    /// - Parameters:
    ///   - views: float32 images, normalized, laid out as `layout` says: one view of `size` px, or
    ///     one per parallel size (largest first).
    ///   - stop: this rank's request to stop after the step (carried to every rank).
    func step(views: [UnsafeBufferPointer<Float>], layout: Network.InputLayout = .samplesFirst, count: Int, channels: Int, size: Int,
              labels: [Int32], lr: Float, stop: Bool) -> StepOutcome {
        let ctx = network.context
        network.store.zeroGrads()
        ctx.training = true
        ctx.calibrating = false
        var loss: Float
        var hits = 0
        if let parallel = schedule.parallelSizes, let mred, let alpha = alphaOffset {
            var logits: [Tensor] = []
            for (b, s) in parallel.enumerated() {
                ctx.bank = .bank(network.bank(b))
                let x = network.setInput(views[b], count: count, channels: channels, size: s, branch: b, layout: layout)
                logits.append(network.forward(x, branch: b))
            }
            for b in parallel.indices { gradTensors[b].reshape(logits[b].shape) }
            let terms = mred.loss(logits: logits, labels: labels, alpha: network.store.values + alpha,
                                  alphaGrad: network.store.grads + alpha, grads: gradTensors)
            loss = terms.total
            hits = Losses.hits(logits: logits[0], labels: labels).top1
            for b in parallel.indices {
                ctx.bank = .bank(network.bank(b))
                network.backward(gradTensors[b], branch: b)
            }
        } else {
            ctx.bank = .bank(0)
            let x = network.setInput(views[0], count: count, channels: channels, size: size, layout: layout)
            let logits = network.forward(x, branch: 0)
            loss = Losses.crossEntropy(logits: logits, labels: labels, smoothing: configuration.labelSmoothing, grad: gradTensors[0])
            hits = Losses.hits(logits: logits, labels: labels).top1
            network.backward(gradTensors[0], branch: 0)
        }
        var outcome = StepOutcome(loss: loss, hits: hits, images: count, stop: stop)
        if group.size > 1 { (outcome.loss, outcome.hits, outcome.images, outcome.stop) = exchange(loss: loss, hits: hits, images: count, stop: stop) }
        guard outcome.loss.isFinite else { return outcome }
        smoothing?.apply(to: network.store)
        optimizer.step(lr: lr)
        return outcome
    }

    /// One data-parallel exchange (``ParameterStore/exchange(over:scalars:)``), timed.
    /// - Returns: the mean loss, the summed hits and images, and whether any rank asked to stop.
    func exchange(loss: Float, hits: Int, images: Int, stop: Bool) -> (Float, Int, Int, Bool) {
        let started = DispatchTime.now().uptimeNanoseconds
        let sums = network.store.exchange(over: group, scalars: [loss, Float(hits), Float(images), stop ? 1 : 0])
        allreduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return (sums[0] / Float(group.size), Int(sums[1].rounded()), Int(sums[2].rounded()), sums[3] > 0)
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
    ///
    /// The run computes with its configuration's `threads` parts (``Threads/with(_:_:)``), without
    /// changing the process's default.
    @discardableResult
    public func run(progress: ((Progress) -> Void)? = nil, onEpoch: ((EpochLog) -> Void)? = nil,
                    shouldStop: () -> Bool = { false }) throws -> [EpochLog] {
        try Threads.with(configuration.threads) { try runEpochs(progress: progress, onEpoch: onEpoch, shouldStop: shouldStop) }
    }

    private func runEpochs(progress: ((Progress) -> Void)?, onEpoch: ((EpochLog) -> Void)?, shouldStop: () -> Bool) throws -> [EpochLog] {
        let lock = try openRunDirectory()
        defer { withExtendedLifetime(lock) {} }
        var logs: [EpochLog] = []
        for epoch in header.nextEpoch..<configuration.epochs {
            let cursor = epoch == header.nextEpoch ? header.nextCursor : 0
            let c = configuration
            if c.resetSmoothingAtMilestones && c.learningRate.kind == .multistep && c.learningRate.milestones.contains(epoch) && cursor == 0 {
                smoothing?.reset()
            }
            let entry = try finishEpoch(try trainEpoch(epoch, from: cursor, progress: progress, shouldStop: shouldStop))
            logs.append(entry)
            onEpoch?(entry)
        }
        return logs
    }

    /// Rank 0 locks the run directory (a second run training it is refused) and, for a new run,
    /// writes `run.json` and the first checkpoint. The lock lives as long as the value returned.
    private func openRunDirectory() throws -> DirectoryLock? {
        guard group.isRoot else { return nil }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lock = try DirectoryLock(directory: directory)
        if header.steps == 0 && header.nextCursor == 0 && header.nextEpoch == 0 {
            try configuration.save(in: directory)
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(Self.logFile))
            try saveCheckpoint()
        }
        return lock
    }

    /// Trains `epoch` from stream position `cursor` and returns its log line (without validation).
    /// A resumed epoch continues the sums it was interrupted with; a stop request writes a
    /// checkpoint at the step and throws ``TrainError/interrupted(directory:epoch:cursor:)``.
    private func trainEpoch(_ epoch: Int, from cursor: Int, progress: ((Progress) -> Void)?, shouldStop: () -> Bool) throws -> EpochLog {
        let c = configuration
        let sizesOfParallel = schedule.parallelSizes
        let fullSteps = loader.plan(epoch: epoch).steps.count
        // Counted before the iterator exists: its workers start reading (and fetching) at once.
        let readBefore = loader.cache.bytesRead
        let remoteBefore = loader.cache.store?.statistics
        var it = try loader.batches(epoch: epoch, from: cursor)
        let started = Date()
        let allreduceBefore = allreduceSeconds
        let resumedSums = cursor > 0 ? header.epochProgress : nil
        var sums = resumedSums ?? Checkpoint.EpochProgress(lossSum: 0, steps: 0, hits: 0, seen: 0, macs: 0, seconds: 0, sizes: [])
        let earlierSeconds = sums.seconds
        var lr: Float = 0
        header.epochProgress = nil
        while let batch = try it.next() {
            lr = c.learningRate.rate(epoch: epoch, step: batch.step, stepsInEpoch: fullSteps, epochs: c.epochs)
            // The views point into the batch's buffers: it must live through the step.
            let outcome = withExtendedLifetime(batch) {
                step(views: (sizesOfParallel ?? [batch.size]).map { batch.images(size: $0).floats },
                     layout: batch.format == .float32ChannelMajor ? .channelsFirst : .samplesFirst, count: batch.count,
                     channels: batch.channels, size: batch.size, labels: batch.labels, lr: lr, stop: shouldStop())
            }
            guard outcome.loss.isFinite else { throw TrainError.nonFinite(epoch: epoch, step: batch.step, loss: outcome.loss) }
            let stepMacs = Double(outcome.images) * Double(batch.sizes.reduce(0) { $0 + macs($1) })
            header.steps += 1
            header.trainingMacs += stepMacs
            sums.add(loss: outcome.loss, hits: outcome.hits, images: outcome.images, macs: stepMacs, sizes: batch.sizes)
            let elapsed = Date().timeIntervalSince(started)
            sums.seconds = earlierSeconds + elapsed
            progress?(Progress(epoch: epoch, epochs: c.epochs, step: batch.step + 1, steps: fullSteps, loss: sums.lossSum / Double(sums.steps),
                               imagesPerSecond: Double(sums.seen) / max(sums.seconds, 1e-9), size: batch.size))
            if outcome.stop {
                header.nextEpoch = epoch
                header.nextCursor = batch.nextCursor
                header.wallSeconds += elapsed
                header.gradientSmoothing = smoothing
                header.epochProgress = sums
                if group.isRoot { try saveCheckpoint() }
                throw TrainError.interrupted(directory: directory.path, epoch: epoch, cursor: batch.nextCursor)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        header.wallSeconds += seconds
        sums.seconds = earlierSeconds + seconds
        var entry = EpochLog(epoch: epoch, loss: sums.lossSum / Double(max(sums.steps, 1)), trainTop1: Double(sums.hits) / Double(max(sums.seen, 1)),
                             learningRate: Double(lr), imagesPerSecond: Double(sums.seen) / max(sums.seconds, 1e-9), seconds: sums.seconds,
                             sizes: sums.sizes, macs: sums.macs, cumulativeMacs: header.trainingMacs,
                             partial: cursor > 0 && resumedSums == nil ? true : nil, alpha: network.ensembleWeights?.map(Double.init),
                             substitutions: nil)
        let substitutions = Int(group.sum(Double(loader.substitutions.count)))
        entry.substitutions = substitutions == 0 ? nil : substitutions
        if group.size > 1 { (entry.allreduceSeconds, entry.processes) = (allreduceSeconds - allreduceBefore, group.size) }
        if let store = loader.cache.store, let remoteBefore { entry.remote = store.statistics.since(remoteBefore) }
        entry.bytesRead = loader.cache.bytesRead - readBefore
        return entry
    }

    /// Validates the finished epoch of `entry` (with a test cache), moves the run's position to
    /// the next epoch, and (rank 0) writes the checkpoints and the log line. Returns the entry
    /// with its validation.
    private func finishEpoch(_ entry: EpochLog) throws -> EpochLog {
        var entry = entry
        if let test = configuration.testCache {
            let evaluator = try Evaluator(network: network, testCache: test, workers: configuration.workers, group: group, remote: remote)
            let size = schedule.referenceSize
            entry.validationTop1 = try evaluator.evaluate(size: size, bank: .bank(0)).top1
            entry.validationSize = size
        }
        header.epochsDone = entry.epoch + 1
        header.nextEpoch = entry.epoch + 1
        header.nextCursor = 0
        header.gradientSmoothing = smoothing
        if let v = entry.validationTop1, v > (header.bestTop1 ?? -1) {
            header.bestTop1 = v
            header.bestEpoch = entry.epoch
            if group.isRoot { try saveCheckpoint(Self.bestCheckpointFile) }
        }
        if group.isRoot {
            try saveCheckpoint()
            try appendLog(entry)
        }
        return entry
    }

}
