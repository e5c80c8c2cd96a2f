import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache
import PyramidTrain

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy of a trained run at a list of test sizes: table, JSON and SVG chart.",
        discussion: """
            Each test size t views the test cache's evaluation crop resized to t x t. BatchNorm: \
            running statistics for single-BatchNorm runs (fixed, TRD, MixSize, progressive); for \
            parallel (RS-Nets) runs, the bank of t, the interpolation of its two neighbouring banks, \
            or the nearest bank outside the trained sizes, plus the alpha-weighted ensemble. \
            --calibrate N also re-estimates BatchNorm at each t from N batches of augmented \
            training data (MixSize's calibration) and reports both. Writes RUNDIR/eval-<checkpoint>.json \
            and .svg. With several runs, also prints them side by side (top-1 per size, training \
            MACs and time) and draws them in one chart (--chart, --png).
            """)

    @Argument(help: "The run directory (or several, to compare them).")
    var runDirectories: [String]

    @Option(help: "Write a chart of every run's top-1 against test size to this SVG file.")
    var chart: String?

    @Option(help: "Also write that chart as PNG to this file.")
    var png: String?

    @Option(help: "best (highest validation top-1) or final.")
    var checkpoint: String = "final"

    @Option(help: "Test sizes, comma-separated.")
    var sizes: String = "28,24,20,16,14,12,36"

    @Option(help: "The test cache (default: the run's --test).")
    var test: String?

    @Option(help: "Batches of training data for BatchNorm calibration at each size (0: none).")
    var calibrate: Int = 0

    @Option(help: "Loader worker threads.")
    var workers: Int = 1

    @Option(help: "Batch parts computed in parallel.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print JSON instead of the table.")
    var json = false

    func validate() throws {
        if checkpoint != "best" && checkpoint != "final" { throw ValidationError("--checkpoint: must be best or final") }
        if calibrate < 0 { throw ValidationError("--calibrate: must not be negative") }
    }

    func run() throws {
        let sizeList = try parseIntList(sizes, flag: "sizes")
        var reports: [EvaluationReport] = []
        for runDirectory in runDirectories {
            let directory = URL(fileURLWithPath: runDirectory)
            let report: EvaluationReport
            do {
                report = try EvaluationReport.make(directory: directory, checkpoint: checkpoint, sizes: sizeList, testCache: test,
                                                   calibrate: calibrate, workers: workers, threads: threads)
            } catch let error as TrainError { throw ValidationError(error.description) }
            let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(report)
            try writeAtomically(data, to: directory.appendingPathComponent("eval-\(checkpoint).json"))
            try writeAtomically(Data(report.svg.utf8), to: directory.appendingPathComponent("eval-\(checkpoint).svg"))
            if json { print(String(decoding: data, as: UTF8.self)) } else {
                print(report.table, terminator: "")
                print("wrote \(directory.appendingPathComponent("eval-\(checkpoint).json").path) and .svg\n")
            }
            reports.append(report)
        }
        let names = runDirectories.map { URL(fileURLWithPath: $0).lastPathComponent }
        if reports.count > 1 && !json { print(Self.comparison(reports, names: names)) }
        if chart != nil || png != nil {
            var series: [(String, [Evaluator.Result])] = []
            for (name, r) in zip(names, reports) {
                series.append(("\(name) (\(r.schedule))", r.results))
                if let c = r.calibrated { series.append(("\(name) calibrated", c)) }
            }
            let svg = EvaluationReport.chart(title: "top-1 by test size", series: series)
            if let chart { try writeAtomically(Data(svg.utf8), to: URL(fileURLWithPath: chart)) }
            if let png { try ImageWriter.writePNG(svg: svg, to: png) }
            if !json { print("chart: " + [chart, png].compactMap { $0 }.joined(separator: ", ")) }
        }
    }

    /// Runs side by side: top-1 per test size, then what each run's training cost.
    static func comparison(_ reports: [EvaluationReport], names: [String]) -> String {
        let width = max(19, names.map(\.count).max()! + 2)
        func cell(_ t: String) -> String { String(repeating: " ", count: max(0, width - t.count)) + t }
        var out = "top-1 by test size\n" + "  size  MMACs/image" + names.map(cell).joined() + "\n"
        for (i, r) in reports[0].results.enumerated() {
            out += String(format: "  %4d  %11.1f", r.size, Double(r.macs) / 1e6)
            out += reports.map { cell(String(format: "%.2f%%", 100 * $0.results[i].top1)) }.joined() + "\n"
        }
        let base = reports[0].trainingMacs
        out += "  training MACs    " + reports.map { cell(String(format: "%.3g (%.2fx)", $0.trainingMacs, $0.trainingMacs / max(base, 1))) }.joined() + "\n"
        out += "  training time    " + reports.map { cell(String(format: "%.0f s", $0.trainingSeconds)) }.joined() + "\n"
        return out
    }
}
