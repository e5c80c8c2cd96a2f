import ArgumentParser
import Foundation
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
            and .svg.
            """)

    @Argument(help: "The run directory.")
    var runDirectory: String

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
            print("wrote \(directory.appendingPathComponent("eval-\(checkpoint).json").path) and .svg")
        }
    }
}
