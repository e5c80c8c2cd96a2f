import Foundation
import PyramidCache
import PyramidLoader

/// `pyramid eval`'s work: accuracy of a run's checkpoint at a list of test sizes, with the
/// BatchNorm handling of its method (ALGORITHMS.md §5), as a table, JSON and an SVG chart.
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
                            workers: Int, threads: Int, forcedBank: Int? = nil) throws -> EvaluationReport {
        let config = try RunConfiguration.load(from: directory)
        guard let test = testCache ?? config.testCache else {
            throw TrainError.invalidSetting(setting: "testCache", reason: "the run has no test cache; give one")
        }
        Threads.configure(threads)
        let network = try Network(config.model)
        let file = checkpoint == "best" ? Trainer.bestCheckpointFile : Trainer.checkpointFile
        let checkpointURL = directory.appendingPathComponent(file)
        let c = try Checkpoint.read(from: checkpointURL)
        try c.load(into: network.store, from: checkpointURL)
        let evaluator = try Evaluator(network: network, testCache: test, workers: workers)
        let trainReader = try CacheReader(url: URL(fileURLWithPath: config.cache))
        let schedule = try config.parsedSchedule(largestLevel: trainReader.manifest.levelSizes.max())
        let testManifest = try Manifest.load(from: URL(fileURLWithPath: test))
        for s in sizes { try Loader.checkServable(size: s, manifest: testManifest) }
        let trainedSizes = (schedule as? Parallel)?.sizes ?? []
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
            ensemble = try Self.ensemble(network: network, test: test, sizes: trainedSizes, weights: w, workers: workers)
        }
        return EvaluationReport(run: directory.path, checkpoint: file, epochsDone: c.header.epochsDone, schedule: config.schedule,
                                testCache: test, results: results, calibrated: calibrate > 0 ? calibrated : nil,
                                alpha: network.ensembleWeights?.map(Double.init), ensembleTop1: ensemble?.0, ensembleTop5: ensemble?.1,
                                trainingMacs: c.header.trainingMacs, trainingSeconds: c.header.wallSeconds)
    }

    /// The ensemble `Σ softmax(α)_s · z_s` over the training sizes, each with its own bank.
    static func ensemble(network: Network, test: String, sizes: [Int], weights: [Float], workers: Int) throws -> (Double, Double) {
        let reader = try CacheReader(url: URL(fileURLWithPath: test))
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
                let x = network.setInput(batch.images(size: s).floats, count: batch.count, channels: batch.channels, size: s)
                let z = network.forward(x, branch: Network.probeBranch - 3)
                for i in 0..<combined.count { combined.data[i] += weights[b] * z.data[i] }
            }
            let h = Losses.hits(logits: combined, labels: batch.labels)
            top1 += h.top1; top5 += h.topK; n += batch.count
        }
        return (Double(top1) / Double(max(n, 1)), Double(top5) / Double(max(n, 1)))
    }

    /// A plain-text table.
    public var table: String {
        var out = "run \(run) (\(checkpoint), \(epochsDone) epochs, \(schedule)); test cache \(testCache)\n"
        out += String(format: "training forward MACs: %.3g\n", trainingMacs)
        out += "  size    top-1    top-5   MMACs/image  BatchNorm"
        if calibrated != nil { out += "                 calibrated top-1" }
        out += "\n"
        for (i, r) in results.enumerated() {
            let bn = r.batchNorm.count < 24 ? r.batchNorm + String(repeating: " ", count: 24 - r.batchNorm.count) : r.batchNorm
            out += String(format: "  %4d  %6.2f%%  %6.2f%%  %12.2f  ", r.size, 100 * r.top1, 100 * r.top5, Double(r.macs) / 1e6) + bn
            if let c = calibrated?[i] { out += String(format: "  %6.2f%%", 100 * c.top1) }
            out += "\n"
        }
        if let a = alpha { out += "alpha  " + a.map { String(format: "%.3f", $0) }.joined(separator: " ") + "\n" }
        if let e1 = ensembleTop1, let e5 = ensembleTop5 { out += String(format: "ensemble  top-1 %.2f%%  top-5 %.2f%%\n", 100 * e1, 100 * e5) }
        return out
    }

    /// An SVG line chart of top-1 against test size (and calibrated top-1 when present).
    public var svg: String {
        var series: [(String, [Evaluator.Result])] = [(alpha == nil ? "running statistics" : "per-size banks", results)]
        if let c = calibrated { series.append(("calibrated", c)) }
        return Self.chart(title: "top-1 by test size: \(schedule)", series: series,
                          reference: ensembleTop1.map { ("ensemble (training sizes)", $0) })
    }

    /// A chart of several series of results against test size, with an optional horizontal line.
    public static func chart(title: String, series: [(String, [Evaluator.Result])], reference: (String, Double)? = nil) -> String {
        // The plot is 600 px wide; the legend is a column to its right, as wide as its longest label.
        let labels = series.map(\.0) + (reference.map { [$0.0] } ?? [])
        let legend = 40 + 7.0 * Double(labels.map(\.count).max() ?? 0)
        let plotWidth = 600.0, w = plotWidth + legend, left = 60.0, right = 20.0, top = 30.0, bottom = 50.0
        let h = max(360.0, top + 18 * Double(labels.count) + 20)
        let allResults = series.flatMap(\.1)
        let sizes = allResults.map { Double($0.size) }
        let all = allResults.map(\.top1) + (reference.map { [$0.1] } ?? [])
        let lo = max(0, (all.min() ?? 0) - 0.05), hi = min(1, (all.max() ?? 1) + 0.02)
        let xmin = sizes.min() ?? 0, xmax = max(sizes.max() ?? 1, xmin + 1)
        let plotRight = plotWidth - right
        func x(_ v: Double) -> Double { left + (v - xmin) / (xmax - xmin) * (plotRight - left) }
        func y(_ v: Double) -> Double { top + (hi - v) / max(hi - lo, 1e-6) * (h - top - bottom) }
        func esc(_ t: String) -> String { t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"18\">\(esc(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(plotRight)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for v in Set(sizes).sorted() { s += "<text x=\"\(x(v) - 8)\" y=\"\(h - bottom + 18)\">\(Int(v))</text>\n" }
        for k in 0...4 {
            let v = lo + Double(k) / 4 * (hi - lo)
            s += String(format: "<text x=\"8\" y=\"%.1f\">%.1f%%</text>\n", y(v) + 4, 100 * v)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y(v), plotRight, y(v))
        }
        s += "<text x=\"\(plotWidth / 2 - 30)\" y=\"\(h - 12)\">test size (px)</text>\n"
        // Ten colours, then the same colours dashed.
        let colors = ["#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#2ca02c"]
        func legendEntry(_ row: Int, _ label: String, _ color: String, _ dash: String) -> String {
            let ly = top + 18 * Double(row) + 6
            return String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"%@/>\n",
                          plotWidth, ly, plotWidth + 24, ly, color as NSString, dash as NSString)
                + "<text x=\"\(plotWidth + 30)\" y=\"\(ly + 4)\" fill=\"\(color)\">\(esc(label))</text>\n"
        }
        for (row, (label, rs)) in series.enumerated() {
            let color = colors[row % colors.count], dash = row >= colors.count ? " stroke-dasharray=\"6 3\"" : ""
            let pts = rs.sorted { $0.size < $1.size }.map { String(format: "%.1f,%.1f", x(Double($0.size)), y($0.top1)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(pts)\"/>\n"
            for r in rs { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", x(Double(r.size)), y(r.top1), color as NSString) }
            s += legendEntry(row, label, color, dash)
        }
        if let (label, e) = reference {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"6 4\"/>\n", left, y(e), plotRight, y(e))
            s += legendEntry(series.count, label, "#2ca02c", " stroke-dasharray=\"6 4\"")
        }
        s += "</svg>\n"
        return s
    }
}
