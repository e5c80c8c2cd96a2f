import Foundation
import PyramidCache
import PyramidLoader

/// `pyramid eval`'s work: accuracy of a run's checkpoint at a list of test sizes, with the
/// BatchNorm handling of its method (docs/design.md, "Evaluation"), as a table, JSON and an SVG chart.
public struct EvaluationReport: Codable, Sendable {
    public var run: String
    public var checkpoint: String
    public var epochsDone: Int
    public var schedule: String
    public var testCache: String
    public var results: [Evaluator.Result]
    /// With calibration (`--calibrate N`): the same sizes after recalibrating BatchNorm.
    public var calibrated: [Evaluator.Result]?
    /// RS-Nets: softmax(α), largest training size first, and the ensemble's accuracy over the
    /// training sizes.
    public var alpha: [Double]?
    public var ensembleTop1: Double?
    public var ensembleTop5: Double?
    public var trainingMacs: Double
    /// Wall time of the training, summed over resumed parts.
    public var trainingSeconds: Double

    /// The run's saved report (and its file) when it is newer than the checkpoint it evaluated and
    /// was made with these sizes and test cache (nil: the run's own) and, when `calibrate` > 0,
    /// calibrated with that many batches (a calibrated report also holds the plain results); nil otherwise.
    public static func upToDate(directory: URL, checkpoint: String, sizes: [Int], testCache: String?,
                                calibrate: Int) -> (URL, EvaluationReport)? {
        let url = directory.appendingPathComponent("eval-\(checkpoint).json")
        let file = checkpoint == "best" ? Trainer.bestCheckpointFile : Trainer.checkpointFile
        let fm = FileManager.default
        guard let data = try? Data(contentsOf: url), let report = try? JSONDecoder().decode(EvaluationReport.self, from: data),
              let evaluated = (try? fm.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
              let trained = (try? fm.attributesOfItem(atPath: directory.appendingPathComponent(file).path))?[.modificationDate] as? Date,
              evaluated > trained, report.results.map(\.size) == sizes,
              calibrate == 0 || report.calibrated?.first?.calibrationBatches == calibrate
        else { return nil }
        if let testCache, report.testCache != testCache { return nil }
        if testCache == nil, let config = try? RunConfiguration.load(from: directory), config.testCache != report.testCache { return nil }
        return (url, report)
    }

    /// Evaluates the run in `directory`.
    /// - Parameters:
    ///   - directory: the run directory (`run.json` and checkpoints).
    ///   - checkpoint: `final` or `best`.
    ///   - sizes: the test sizes.
    ///   - testCache: the test cache; nil: the run's `--test`.
    ///   - calibrate: batches of BatchNorm calibration per size (0: none).
    ///   - workers: loader threads.
    ///   - threads: batch parts computed in parallel.
    ///   - forcedBank: evaluate every size with this BatchNorm bank instead of the bank
    ///     (or interpolation) the size would use — to see what the right bank is worth.
    public static func make(directory: URL, checkpoint: String, sizes: [Int], testCache: String?, calibrate: Int,
                            workers: Int, threads: Int, forcedBank: Int? = nil, remote: RemoteOptions = RemoteOptions()) throws -> EvaluationReport {
        try Threads.with(threads) {
            try evaluate(directory: directory, checkpoint: checkpoint, sizes: sizes, testCache: testCache, calibrate: calibrate,
                         workers: workers, forcedBank: forcedBank, remote: remote)
        }
    }

    private static func evaluate(directory: URL, checkpoint: String, sizes: [Int], testCache: String?, calibrate: Int,
                                 workers: Int, forcedBank: Int?, remote: RemoteOptions) throws -> EvaluationReport {
        let config = try RunConfiguration.load(from: directory)
        guard let test = testCache ?? config.testCache else {
            throw TrainError.invalidSetting(setting: "testCache", reason: "the run has no test cache; give one")
        }
        let network = try Network(config.model)
        let file = checkpoint == "best" ? Trainer.bestCheckpointFile : Trainer.checkpointFile
        let checkpointURL = directory.appendingPathComponent(file)
        let c = try Checkpoint.read(from: checkpointURL)
        try c.load(into: network.store, from: checkpointURL)
        let evaluator = try Evaluator(network: network, testCache: test, workers: workers, remote: remote)
        let trainReader = try CacheReader.open(config.cache, remote: remote)
        let schedule = try config.parsedSchedule(largestLevel: trainReader.manifest.levelSizes.max())
        let testManifest = try Manifest.load(location: test, remote: remote)
        for s in sizes { try Loader.checkServable(size: s, manifest: testManifest) }
        let trainedSizes = schedule.parallelSizes ?? []
        // Banks per trained size (private BatchNorm); a shared-BatchNorm parallel run has one.
        let bankSizes = network.configuration.banks > 1 ? trainedSizes : []
        if let forcedBank, !(0..<network.configuration.banks).contains(forcedBank) {
            throw TrainError.invalidSetting(setting: "forcedBank", reason: "the run has \(network.configuration.banks) BatchNorm bank(s); \(forcedBank) is not one of them")
        }
        var results: [Evaluator.Result] = []
        var calibrated: [Evaluator.Result] = []
        for s in sizes {
            let bank = forcedBank.map { ModelContext.Bank.bank($0) }
                ?? (bankSizes.isEmpty ? ModelContext.Bank.bank(0) : Evaluator.bank(for: s, trainedSizes: bankSizes))
            results.append(try evaluator.evaluate(size: s, bank: bank))
            if calibrate > 0 {
                // Calibrate the bank the size uses (interpolated sizes: the nearest bank).
                var b = 0
                switch bank {
                case .bank(let k): b = k
                case .interpolate(let x, let y, let t): b = t < 0.5 ? x : y
                }
                let saved = try evaluator.calibrate(size: s, trainCache: trainReader, batches: calibrate, seed: config.seed,
                                                    augmentation: try config.augment.map(Augmentation.parse), bank: b)
                var r = try evaluator.evaluate(size: s, bank: .bank(b))
                r.calibrationBatches = calibrate
                r.batchNorm = bankSizes.isEmpty ? "calibrated" : "bank \(b) calibrated"
                calibrated.append(r)
                evaluator.restore(saved)
            }
        }
        var ensemble: (Double, Double)?
        if !trainedSizes.isEmpty, let w = network.ensembleWeights {
            ensemble = try Self.ensemble(network: network, test: test, sizes: trainedSizes, weights: w, workers: workers, remote: remote)
        }
        return EvaluationReport(run: directory.path, checkpoint: file, epochsDone: c.header.epochsDone, schedule: config.schedule,
                                testCache: test, results: results, calibrated: calibrate > 0 ? calibrated : nil,
                                alpha: network.ensembleWeights?.map(Double.init), ensembleTop1: ensemble?.0, ensembleTop5: ensemble?.1,
                                trainingMacs: c.header.trainingMacs, trainingSeconds: c.header.wallSeconds)
    }

    /// The ensemble `Σ softmax(α)_s · z_s` over the training sizes, each with its own bank.
    static func ensemble(network: Network, test: String, sizes: [Int], weights: [Float], workers: Int, remote: RemoteOptions) throws -> (Double, Double) {
        let reader = try CacheReader.open(test, remote: remote)
        let loader = try Loader(cache: reader, configuration: LoaderConfiguration(
            schedule: Parallel(sizes: sizes), batchSize: 256, workers: workers, shuffle: false, dropLast: false))
        let ctx = network.context
        ctx.training = false
        defer { ctx.bank = .bank(0) }
        var top1 = 0, top5 = 0, n = 0
        var it = try loader.batches(epoch: 0)
        while let batch = try it.next() {
            guard batch.count > 0 else { continue }
            let k = network.configuration.classes
            let combined = Tensor(shape: [batch.count, k])
            for (b, s) in sizes.enumerated() {
                ctx.bank = .bank(network.bank(b))
                let x = network.setInput(batch.images(size: s).floats, count: batch.count, channels: batch.channels, size: s,
                                         branch: Network.Branch.ensemble)
                let z = network.forward(x, branch: Network.Branch.ensemble)
                for i in 0..<combined.count { combined.data[i] += weights[b] * z.data[i] }
            }
            let h = Losses.hits(logits: combined, labels: batch.labels)
            top1 += h.top1; top5 += h.topK; n += batch.count
        }
        return (Double(top1) / Double(max(n, 1)), Double(top5) / Double(max(n, 1)))
    }
}
