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
            MACs and time) and draws them in one chart (--chart, --png); --markdown prints that \
            comparison as a Markdown table instead. --reuse takes a run's eval JSON instead of \
            evaluating again when it is newer than the checkpoint and was made with the same \
            sizes and test cache (and the same --calibrate N, when N > 0).
            """)

    @Argument(help: "The run directory (or several, to compare them).")
    var runDirectories: [String]

    @Option(help: "Write a chart of every run's top-1 against test size to this SVG file (- or /dev/stdout: to standard output, the table to standard error).")
    var chart: String?

    @Option(help: "Also write that chart as PNG to this file.")
    var png: String?

    @Option(help: "best (highest validation top-1) or final.")
    var checkpoint: CheckpointChoice = .final

    @Option(help: "Test sizes, comma-separated.")
    var sizes: String = "28,24,20,16,14,12,36"

    @Option(help: "The test cache (default: the run's --test).")
    var test: String?

    @Option(parsing: .unconditional, help: "Batches of training data for BatchNorm calibration at each size (0: none).")
    var calibrate: Int = 0

    @Option(parsing: .unconditional, help: "Loader worker threads.")
    var workers: Int = 1

    @Option(parsing: .unconditional, help: "Batch parts computed in parallel.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print JSON instead of the table.")
    var json = false

    @Option(parsing: .unconditional, help: "Parallel runs: evaluate every size with BatchNorm bank K (0 = the largest training size) instead of its own or interpolated bank; saved as eval-CHECKPOINT-bankK.json.")
    var bank: Int?

    @Flag(help: "Print the runs' comparison as a Markdown table (one row per run).")
    var markdown = false

    @Flag(help: "Reuse RUNDIR/eval-CHECKPOINT.json when it is up to date (same sizes and test cache; same --calibrate N when N > 0).")
    var reuse = false

    func validate() throws {
        if calibrate < 0 { throw ValidationError("--calibrate: must not be negative") }
        if let bank, bank < 0 { throw ValidationError("--bank: must not be negative") }
        if bank != nil && reuse { throw ValidationError("--bank: not with --reuse (a forced-bank evaluation is saved apart)") }
        let piped = [chart, png].compactMap { $0 }.filter(isStandardOutput)
        if piped.count > 1 { throw ValidationError("--chart and --png: only one of them can go to standard output") }
        if !piped.isEmpty && (json || markdown) {
            throw ValidationError("\(chart.map(isStandardOutput) == true ? "--chart" : "--png"): goes to standard output, and so does --\(json ? "json" : "markdown"); write one of them to a file")
        }
    }

    /// The chart goes to standard output: the messages go to standard error.
    private var aside: Bool { [chart, png].compactMap { $0 }.contains(where: isStandardOutput) }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        reportKernelChoice()
        let remoteOptions = try remote.options()
        let sizeList = try parseIntList(sizes, flag: "sizes")
        var reports: [EvaluationReport] = []
        for runDirectory in runDirectories {
            let directory = URL(fileURLWithPath: runDirectory)
            if reuse, let previous = EvaluationReport.upToDate(directory: directory, checkpoint: checkpoint.rawValue, sizes: sizeList,
                                                                 testCache: test, calibrate: calibrate) {
                if !json && !markdown { say("\(runDirectory): reusing \(previous.0.path)", aside: aside) }
                reports.append(previous.1)
                continue
            }
            let report = try EvaluationReport.make(directory: directory, checkpoint: checkpoint.rawValue, sizes: sizeList, testCache: test,
                                                   calibrate: calibrate, workers: workers, threads: threads, forcedBank: bank, remote: remoteOptions)
            let stem = checkpoint.rawValue + (bank.map { "-bank\($0)" } ?? "")
            let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(report)
            try writeAtomically(data, to: directory.appendingPathComponent("eval-\(stem).json"))
            try writeAtomically(Data(report.svg.utf8), to: directory.appendingPathComponent("eval-\(stem).svg"))
            if json { print(String(decoding: data, as: UTF8.self)) } else if !markdown {
                say(report.table, terminator: "", aside: aside)
                say("wrote \(directory.appendingPathComponent("eval-\(stem).json").path) and .svg\n", aside: aside)
            }
            reports.append(report)
        }
        let names = runDirectories.map { URL(fileURLWithPath: $0).lastPathComponent }
        if markdown { print(EvaluationReport.markdown(reports, names: names)) } else if reports.count > 1 && !json { say(EvaluationReport.comparison(reports, names: names), aside: aside) }
        if chart != nil || png != nil {
            var series: [(String, [Evaluator.Result])] = []
            for (name, r) in zip(names, reports) {
                series.append(("\(name) (\(r.schedule))", r.results))
                if let c = r.calibrated { series.append(("\(name) calibrated", c)) }
            }
            let svg = EvaluationReport.chart(title: "top-1 by test size", series: series)
            if let chart { try writeOutput(Data(svg.utf8), to: chart) }
            if let png { try ImageWriter.writePNG(svg: svg, to: png) }
            if !json && !markdown { say("chart: " + [chart, png].compactMap { $0 }.joined(separator: ", "), aside: aside) }
        }
    }
}
