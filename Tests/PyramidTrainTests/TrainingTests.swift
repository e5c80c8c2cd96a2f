import Foundation
import PyramidCache
import PyramidLoader
import PyramidTestSupport
import Testing
@_spi(Benchmark) @testable import PyramidTrain

/// Every suite that runs the trainer: serialized as a whole, so that timing-sensitive tests (the
/// worker pool, chunk claiming) do not share the two cores with other trainings.
@Suite(.serialized) enum TrainerSuites {}

extension TrainerSuites {
@Suite struct TrainingTests {
    init() { Threads.configure(2) }

    /// RS-Nets forwards every size before the first backward: each branch must keep its own input.
    /// With convolution columns rebuilt in backward (more chunks than threads, as at 28 px and batch
    /// 128), a shared input made branch 0's stem gradient come from the last branch's images.
    @Test func eachBranchOfAParallelStepKeepsItsOwnInput() throws {
        let net = try Network(.init(architecture: "resnet8", inputChannels: 1, classes: 3, banks: 2, zeroInitResidual: false, seed: 2))
        net.convolutionTuning.chunkBytes = 2048  // several chunks per thread: backward rebuilds its columns from the input
        let n = 8
        let big = GradientCheck.random(n * 12 * 12, seed: 11), small = GradientCheck.random(n * 8 * 8, seed: 12)
        let labels: [Int32] = (0..<n).map { Int32($0 % 3) }
        let grad = Tensor(shape: [0])
        func stepGradient(alsoSmall: Bool) -> [Float] {
            net.store.zeroGrads()
            net.context.training = true
            net.context.bank = .bank(0)
            let x0 = big.withUnsafeBufferPointer { net.setInput($0, count: n, channels: 1, size: 12, branch: 0) }
            let z0 = net.forward(x0, branch: 0)
            if alsoSmall {
                net.context.bank = .bank(1)
                let x1 = small.withUnsafeBufferPointer { net.setInput($0, count: n, channels: 1, size: 8, branch: 1) }
                _ = net.forward(x1, branch: 1)
                net.context.bank = .bank(0)
            }
            _ = Losses.crossEntropy(logits: z0, labels: labels, grad: grad)
            net.backward(grad, branch: 0)
            return net.store.gradArray
        }
        let alone = stepGradient(alsoSmall: false), withOther = stepGradient(alsoSmall: true)
        let differing = zip(alone, withOther).filter { $0 != $1 }.count
        #expect(differing == 0, "branch 0's gradient changed in \(differing) of \(alone.count) values when branch 1 was forwarded before its backward")
    }

    @Test func resnet20MultiplyAddsAt32() throws {
        let net = try Network(.init(architecture: "resnet20", inputChannels: 3, classes: 10))
        // stem 442,368 + stage convs 3 x 11.8M + strided/shortcut convs, + FC 640 (counted by hand).
        #expect(net.macs(size: 32) == 40_813_184)
        #expect(net.store.count == 272_474)  // 0.27M parameters with option-B shortcuts
    }

    @Test func aSmallModelOverfitsASmallBatch() throws {
        let net = try Network(.init(architecture: "resnet8", inputChannels: 1, classes: 4, zeroInitResidual: false, seed: 1))
        let sgd = SGD(store: net.store, configuration: .init(momentum: 0.9, weightDecay: 0))
        let images = GradientCheck.random(16 * 64, seed: 4)
        let labels = (0..<16).map { Int32($0 % 4) }
        let grad = Tensor(shape: [0])
        var loss: Float = 0
        for _ in 0..<150 {
            net.store.zeroGrads()
            let x = images.withUnsafeBufferPointer { net.setInput($0, count: 16, channels: 1, size: 8) }
            loss = Losses.crossEntropy(logits: net.forward(x), labels: labels, grad: grad)
            net.backward(grad)
            sgd.step(lr: 0.05)
        }
        #expect(loss < 0.05, "loss after 150 steps: \(loss)")
        // Train-mode batch statistics: the same 16 images are all classified right.
        let x = images.withUnsafeBufferPointer { net.setInput($0, count: 16, channels: 1, size: 8) }
        #expect(Losses.hits(logits: net.forward(x), labels: labels).top1 == 16)
    }

    /// The `.auto` algorithm in a whole network: the 16×16 and 8×8 stages of a ResNet-8 at
    /// 16 px take the Winograd path, its 4×4 stage, strided layers and stem im2col, and a training
    /// step gives the same logits and gradients as all-im2col (to rounding), twice over bit for bit.
    @Test func automaticConvolutionsMatchIm2colInAWholeNetwork() throws {
        func step(_ algorithm: Conv2D.Algorithm) throws -> (logits: [Float], grads: [Float], winograd: [Bool]) {
            let net = try Network(.init(architecture: "resnet8", inputChannels: 1, classes: 4, zeroInitResidual: false, seed: 2))
            net.convolutionTuning.algorithm = algorithm
            // 32 px: the last stage's 64 channels run at 8x8, where auto picks Winograd on either
            // matrix-product backend; the stem (one channel) is always im2col.
            let images = GradientCheck.random(6 * 1024, seed: 5)
            let x = images.withUnsafeBufferPointer { net.setInput($0, count: 6, channels: 1, size: 32) }
            let logits = net.forward(x)
            let grad = Tensor(shape: [0])
            _ = Losses.crossEntropy(logits: logits, labels: (0..<6).map { Int32($0 % 4) }, grad: grad)
            net.store.zeroGrads()
            net.backward(grad)
            // Input side of each convolution: stem, then per block conv1, conv2 (and the shortcut).
            let sizes = [32, 32, 32, 32, 16, 32, 16, 8, 16]
            #expect(net.convolutions.count == sizes.count)
            return (logits.array, net.store.gradArray, zip(net.convolutions, sizes).map { $0.usesWinograd(height: $1, width: $1) })
        }
        let auto = try step(.auto), again = try step(.auto), im2col = try step(.im2col)
        #expect(auto.winograd.contains(true) && auto.winograd.contains(false), "\(auto.winograd)")
        #expect(!im2col.winograd.contains(true))
        #expect(auto.logits == again.logits && auto.grads == again.grads)
        let worst = zip(auto.grads + auto.logits, im2col.grads + im2col.logits).map { abs($0 - $1) / max(1e-2, abs($1)) }.max() ?? 0
        #expect(worst < 1e-3, "worst relative difference \(worst)")
        #expect(auto.grads != im2col.grads, "the Winograd path was not taken")
    }

    @Test func interpolatedBankAtTheMidpointIsTheAverageOfTwoBanks() {
        let store = ParameterStore(), context = ModelContext()
        let bn = BatchNorm2D(store, context, channels: 2, banks: 2, name: "bn")
        store.finalize()
        for i in 0..<store.count { store.values[i] = Float(i) * 0.37 - 1 }
        for i in 0..<store.stateCount { store.state[i] = 0.2 + Float(i) * 0.11 }
        let x = Tensor(shape: [2, 3, 2, 2], values: GradientCheck.random(24, seed: 8))
        context.training = false
        context.bank = .interpolate(0, 1, 0.5)
        let mid = bn.forward(x, branch: 0).array
        // A single bank holding the averages.
        let avgStore = ParameterStore(), avgContext = ModelContext()
        let avg = BatchNorm2D(avgStore, avgContext, channels: 2, banks: 1, name: "avg")
        avgStore.finalize()
        for c in 0..<2 {
            avgStore.values[avg.gamma[0] + c] = (store.values[bn.gamma[0] + c] + store.values[bn.gamma[1] + c]) / 2
            avgStore.values[avg.beta[0] + c] = (store.values[bn.beta[0] + c] + store.values[bn.beta[1] + c]) / 2
            avgStore.state[avg.runningMean[0] + c] = (store.state[bn.runningMean[0] + c] + store.state[bn.runningMean[1] + c]) / 2
            avgStore.state[avg.runningVar[0] + c] = (store.state[bn.runningVar[0] + c] + store.state[bn.runningVar[1] + c]) / 2
        }
        avgContext.training = false
        let expected = avg.forward(x, branch: 0).array
        #expect(zip(mid, expected).allSatisfy { abs($0 - $1) < 1e-5 })
        // And differs from either bank alone.
        context.bank = .bank(0)
        #expect(bn.forward(x, branch: 0).array != mid)
        #expect(Evaluator.bank(for: 22, trainedSizes: [28, 24, 20, 16, 12]) == .interpolate(1, 2, 0.5))
        #expect(Evaluator.bank(for: 36, trainedSizes: [28, 24, 20, 16, 12]) == .bank(0))
        #expect(Evaluator.bank(for: 8, trainedSizes: [28, 24, 20, 16, 12]) == .bank(4))
        #expect(Evaluator.bank(for: 16, trainedSizes: [28, 24, 20, 16, 12]) == .bank(3))
    }

    @Test func calibrationChangesRunningStatisticsAndNothingElse() throws {
        let net = try Network(.init(architecture: "resnet8", inputChannels: 1, classes: 3))
        let params = net.store.parameterArray, state = net.store.stateArray
        net.resetBatchNormStatistics()
        net.context.training = true
        net.context.calibrating = true
        var means: [Float] = []
        for b in 0..<3 {
            let images = GradientCheck.random(8 * 100, seed: UInt64(20 + b), scale: Float(b + 1))
            let x = images.withUnsafeBufferPointer { net.setInput($0, count: 8, channels: 1, size: 10) }
            // The stem BN sees the stem conv's output: record its batch mean of channel 0.
            let stemOut = net.convolutions[0].forward(x, branch: 5)
            let m = stemOut.count / 16
            means.append((0..<m).reduce(Float(0)) { $0 + stemOut.data[$1] } / Float(m))
            _ = net.forward(x, branch: 0)
            net.context.calibrationBatches += 1
        }
        #expect(net.store.parameterArray == params)
        #expect(net.store.stateArray != state)
        let stemMean = net.store.state[net.batchNorms[0].runningMean[0]]
        #expect(abs(stemMean - means.reduce(0, +) / 3) < 1e-4, "running mean \(stemMean), plain average \(means.reduce(0, +) / 3)")
    }
}

}

/// A tiny cache of 10x10 and 8x8 images for end-to-end training tests.
func tinyTrainingCache(_ dir: TempDirectory, count: Int = 96, name: String = "cache") throws -> String {
    var rng = SeededGenerator(seed: 3)
    let samples = (0..<count).map { i -> CacheFixture.Sample in
        let label = i % 3
        var levels: [[UInt8]] = []
        for s in [10, 8] {
            var pixels: [UInt8] = []
            for p in 0..<(s * s) {
                let bright = p % s < s / 3 * (label + 1)
                let noise = Int.random(in: 0...30, using: &rng)
                pixels.append(UInt8(clamping: (bright ? 180 : 40) + noise))
            }
            levels.append(pixels)
        }
        return CacheFixture.Sample(label: label, levels: levels)
    }
    let url = dir.url.appendingPathComponent(name)
    try CacheFixture.write(samples, levels: [10, 8], channels: 1, classes: 3, to: url)
    return url.path
}

extension TrainerSuites {
@Suite struct ProfileTests {
    /// `pyramid bench train --profile`: the stem has its own row, every other convolution lands in the
    /// row of its output plane (a stride-2 one in the stage it starts), every BatchNorm and residual sum in theirs, once per
    /// step, and the remainder row is what the rows leave of the step.
    @Test func everyLayerOfAStepLandsInItsRow() throws {
        let r = try TrainBenchmark.trainingSteps(model: "resnet20", size: 16, channels: 1, batch: 8, steps: 2, threads: 2, profile: true)
        let rows = try #require(r.layers)
        let row = Dictionary(uniqueKeysWithValues: rows.map { ($0.layer, $0) })
        // ResNet-20: the stem alone, stage 1's six at 16x16, six each at 8x8 and 4x4, two 1x1 shortcuts.
        #expect(row["stem 3x3 convolution, 16x16 output"]?.calls == 1)
        #expect(row["3x3 convolutions, 16x16 output"]?.calls == 6)
        #expect(row["3x3 convolutions, 8x8 output"]?.calls == 6)
        #expect(row["3x3 convolutions, 4x4 output"]?.calls == 6)
        #expect(row["1x1 shortcut convolutions"]?.calls == 2)
        // 21 BatchNorms (stem, two per block, two shortcuts) and 9 residual sums.
        #expect(row[LayerProfile.normalizationRow]?.calls == 30)
        #expect(rows.count == 7 && rows.last?.layer == LayerProfile.remainderRow)
        for r in rows.dropLast() { #expect(r.forwardSeconds > 0 && r.backwardSeconds > 0, "\(r)") }
        #expect(rows.last!.forwardSeconds > 0)
    }
}

@Suite struct RunTests {
    func configuration(_ cache: String, schedule: String = "trd:10,8,p=0.5", epochs: Int = 3) -> RunConfiguration {
        RunConfiguration(cache: cache, testCache: cache, model: .init(architecture: "resnet8", inputChannels: 1, classes: 3),
                         schedule: schedule, epochs: epochs, batch: 16,
                         learningRate: .init(kind: .cosine, base: 0.05), gradientSmoothing: schedule.hasPrefix("mixsize"),
                         seed: 7, workers: 1, threads: 2)
    }

    @Test(arguments: ["trd:10,8,p=0.5", "mixsize:8,10@0.5,0.5", "parallel:10,8"])
    func resumedRunIsBitIdenticalToAnUninterruptedOne(schedule: String) throws {
        let dir = TempDirectory("pyramid-train")
        let cache = try tinyTrainingCache(dir)
        let whole = dir.url.appendingPathComponent("whole"), split = dir.url.appendingPathComponent("split")
        let a = try Trainer(configuration: configuration(cache, schedule: schedule), directory: whole, resume: false)
        let logs = try a.run()
        #expect(logs.count == 3)
        // Stop after 4 steps of epoch 1 (the second), then resume twice over.
        var steps = 0
        let b = try Trainer(configuration: configuration(cache, schedule: schedule), directory: split, resume: false)
        #expect {
            try b.run(shouldStop: { steps += 1; return steps == 5 + b.loader.plan(epoch: 0).steps.count - 1 })
        } throws: { error in
            guard case TrainError.interrupted(_, let epoch, let cursor) = error else { return false }
            return epoch == 1 && cursor > 0
        }
        let saved = try JSONDecoder().decode(RunConfiguration.self, from: Data(contentsOf: split.appendingPathComponent(Trainer.configurationFile)))
        let c = try Trainer(configuration: saved, directory: split, resume: true)
        try c.run()
        let x = try Checkpoint.read(from: whole.appendingPathComponent(Trainer.checkpointFile))
        let y = try Checkpoint.read(from: split.appendingPathComponent(Trainer.checkpointFile))
        #expect(x.parameters == y.parameters)
        #expect(x.state == y.state)
        #expect(x.velocity == y.velocity)
        #expect(x.header.steps == y.header.steps && x.header.gradientSmoothing == y.header.gradientSmoothing)
        if schedule.hasPrefix("parallel") { #expect(logs.last?.alpha?.count == 2) }
    }

    /// An interrupted and resumed run logs the same lines as an uninterrupted one (the epoch's sums
    /// travel in the checkpoint), but for wall-clock time.
    @Test func aResumedRunLogsTheUninterruptedRunsLines() throws {
        let dir = TempDirectory("pyramid-log")
        let cache = try tinyTrainingCache(dir)
        let whole = dir.url.appendingPathComponent("whole"), split = dir.url.appendingPathComponent("split")
        let logs = try Trainer(configuration: configuration(cache), directory: whole, resume: false).run()
        var steps = 0
        let b = try Trainer(configuration: configuration(cache), directory: split, resume: false)
        #expect(throws: TrainError.self) { try b.run(shouldStop: { steps += 1; return steps == b.loader.plan(epoch: 0).steps.count + 3 }) }
        try Trainer(configuration: try RunConfiguration.load(from: split), directory: split, resume: true).run()
        func lines(_ run: URL) throws -> [Trainer.EpochLog] {
            try String(contentsOf: run.appendingPathComponent(Trainer.logFile), encoding: .utf8).split(separator: "\n")
                .map { try JSONDecoder().decode(Trainer.EpochLog.self, from: Data($0.utf8)) }
        }
        let a = try lines(whole), c = try lines(split)
        #expect(a.count == 3 && c.count == 3 && logs.count == 3)
        for (x, y) in zip(a, c) {
            #expect(x.loss == y.loss && x.trainTop1 == y.trainTop1 && x.macs == y.macs && x.cumulativeMacs == y.cumulativeMacs, "epoch \(x.epoch)")
            #expect(x.sizes == y.sizes && x.validationTop1 == y.validationTop1 && x.learningRate == y.learningRate && y.partial == nil, "epoch \(x.epoch)")
        }
    }

    @Test func evaluationReportShape() throws {
        let dir = TempDirectory("pyramid-eval")
        let cache = try tinyTrainingCache(dir)
        let run = dir.url.appendingPathComponent("run")
        try Trainer(configuration: configuration(cache, schedule: "parallel:10,8", epochs: 1), directory: run, resume: false).run()
        let report = try EvaluationReport.make(directory: run, checkpoint: "final", sizes: [10, 9, 8, 12], testCache: nil, calibrate: 2, workers: 1, threads: 2)
        #expect(report.results.map(\.size) == [10, 9, 8, 12])
        #expect(report.results.map(\.batchNorm) == ["bank 0", "interpolate 0-1 @0.50", "bank 1", "bank 0"])
        #expect(report.calibrated?.count == 4 && report.calibrated!.allSatisfy { $0.calibrationBatches == 2 })
        #expect(report.alpha?.count == 2 && report.ensembleTop1 != nil)
        #expect(report.results.allSatisfy { $0.samples == 96 && $0.top1 >= 0 && $0.top1 <= $0.top5 })
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any]
        #expect(Set(json!.keys).isSuperset(of: ["results", "calibrated", "alpha", "ensembleTop1", "trainingMacs", "schedule"]))
        #expect(report.svg.hasPrefix("<svg") && report.svg.contains("polyline"))
    }

    /// `--shared-bn`: a parallel run with one BatchNorm (the RS-Nets ablation) has the state of a
    /// single-bank model, evaluates every size with it, and still learns α and the ensemble.
    /// `--bank K` forces a bank; `upToDate` reuses a report only when it still describes the run.
    @Test func sharedBatchNormForcedBanksAndReusedReports() throws {
        let dir = TempDirectory("pyramid-shared-bn")
        let cache = try tinyTrainingCache(dir)
        let shared = dir.url.appendingPathComponent("shared"), fixed = dir.url.appendingPathComponent("fixed")
        var config = configuration(cache, schedule: "parallel:10,8", epochs: 1)
        config.sharedBatchNorm = true
        let trainer = try Trainer(configuration: config, directory: shared, resume: false)
        _ = try trainer.run()
        let single = try Trainer(configuration: configuration(cache, schedule: "fixed:10", epochs: 1), directory: fixed, resume: false)
        #expect(trainer.network.configuration.banks == 1)
        #expect(trainer.network.store.stateCount == single.network.store.stateCount)
        let report = try EvaluationReport.make(directory: shared, checkpoint: "final", sizes: [10, 9, 8], testCache: nil, calibrate: 0, workers: 1, threads: 2)
        #expect(report.results.map(\.batchNorm) == ["running", "running", "running"])
        #expect(report.alpha?.count == 2 && report.ensembleTop1 != nil)
        #expect(throws: TrainError.self) {
            try EvaluationReport.make(directory: shared, checkpoint: "final", sizes: [10], testCache: nil, calibrate: 0, workers: 1, threads: 2, forcedBank: 1)
        }

        // Private banks: 8 px uses its own bank (1) unless bank 0 is forced.
        let privateRun = dir.url.appendingPathComponent("private")
        try Trainer(configuration: configuration(cache, schedule: "parallel:10,8", epochs: 1), directory: privateRun, resume: false).run()
        let own = try EvaluationReport.make(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 0, workers: 1, threads: 2)
        let forced = try EvaluationReport.make(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 0, workers: 1, threads: 2, forcedBank: 0)
        #expect(own.results[0].batchNorm == "bank 1" && forced.results[0].batchNorm == "bank 0")

        // Reuse: only a saved report newer than the checkpoint, for the same sizes (and calibration).
        let url = privateRun.appendingPathComponent("eval-final.json")
        #expect(EvaluationReport.upToDate(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 0) == nil)
        try JSONEncoder().encode(own).write(to: url)
        #expect(EvaluationReport.upToDate(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 0)?.1.results.map(\.size) == [8])
        #expect(EvaluationReport.upToDate(directory: privateRun, checkpoint: "final", sizes: [8, 10], testCache: nil, calibrate: 0) == nil)
        #expect(EvaluationReport.upToDate(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 5) == nil)
        let older = Date(timeIntervalSinceNow: -3600)
        try FileManager.default.setAttributes([.modificationDate: older], ofItemAtPath: url.path)
        #expect(EvaluationReport.upToDate(directory: privateRun, checkpoint: "final", sizes: [8], testCache: nil, calibrate: 0) == nil)
    }

    @Test func aNonFiniteLossStopsTheRunAndKeepsTheLastCheckpoint() throws {
        let dir = TempDirectory("pyramid-nan")
        let cache = try tinyTrainingCache(dir)
        let run = dir.url.appendingPathComponent("run")
        var config = configuration(cache, schedule: "fixed:10", epochs: 2)
        config.learningRate = .init(kind: .constant, base: 1e12)
        config.optimizer.weightDecay = 0
        let trainer = try Trainer(configuration: config, directory: run, resume: false)
        #expect {
            try trainer.run()
        } throws: { error in
            guard case TrainError.nonFinite(let epoch, let step, _) = error else { return false }
            return epoch == 0 && step >= 1 && "\(error)".contains("epoch \(epoch), step \(step)")
        }
        // The checkpoint on disk is the last good one (here: the initial weights), and finite.
        let c = try Checkpoint.read(from: run.appendingPathComponent(Trainer.checkpointFile))
        #expect(c.header.epochsDone == 0 && c.parameters.allSatisfy(\.isFinite))
    }

    @Test func aCorruptRecordStopsTrainingOrIsSubstituted() throws {
        let dir = TempDirectory("pyramid-corrupt")
        let cache = try tinyTrainingCache(dir)
        let record = try CacheReader(url: URL(fileURLWithPath: cache)).makeSession().withRecord(index: 5, level: 10) { Array($0) }
        #expect(try CacheFixture.flipByte(in: try CacheFixture.shardFile(cache, level: 10), inside: record, offset: record.count - 6))
        var config = configuration(cache, schedule: "fixed:10", epochs: 1)
        config.testCache = nil
        #expect {
            try Trainer(configuration: config, directory: dir.url.appendingPathComponent("fail"), resume: false).run()
        } throws: { "\($0)".contains("index 5, level 10") }
        config.corruptRecords = .substitute
        let logs = try Trainer(configuration: config, directory: dir.url.appendingPathComponent("sub"), resume: false).run()
        #expect(logs.first?.substitutions == 1)
    }
}
}
