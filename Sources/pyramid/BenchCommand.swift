import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Pyramid against limits measured in the same run.",
        subcommands: [BenchBuildCommand.self])
}

struct BenchBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Time a complete build against a loop that only decodes and resizes the same images.",
        discussion: """
            Runs the build's decode-and-resize stage alone (same chunks, same workers, no zstd, no \
            LMDB), then a complete build into a temporary directory, and prints both rates and their \
            ratio. Storing should not cost more than resizing: a ratio of 0.5 or more is the goal.
            """)

    @Argument(help: "The source dataset.")
    var source: String

    @Option(help: "Level sizes, comma-separated.")
    var levels: String = "28,24,20,16,14,12"

    @Option(help: "Worker threads.")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Use only the first N source items.")
    var limit: Int?

    @Option(help: "Pixel filter: none or sub.")
    var filter: String = "none"

    @Flag(help: "Train zstd dictionaries.")
    var dictionary = false

    @Option(name: .customLong("repeat"), help: "Repetitions of each measurement; the best is reported.")
    var repetitions: Int = 1

    @Option(help: "Where to build (default: a temporary directory, removed afterwards).")
    var scratch: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        var options = BuildOptions(levels: try parseIntList(levels, flag: "levels"))
        options.workers = workers
        options.limit = limit
        options.filter = filter == "sub" ? .sub : .none
        options.dictionary = dictionary
        options.mode = .overwrite
        try options.validate()
        let catalog = try SourceFormat.open(path: source, format: nil, split: "train", classNames: nil)
        let dir = URL(fileURLWithPath: scratch ?? NSTemporaryDirectory()).appendingPathComponent("pyramid-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var resizeRate = 0.0, buildRate = 0.0, buildSeconds = Double.infinity
        var report: BuildReport?
        for _ in 0..<max(1, repetitions) {
            let (items, seconds) = try RenderLoop.run(catalog: catalog, options: options)
            resizeRate = max(resizeRate, Double(items) / seconds)
            let started = Date()
            let r = try Builder(catalog: catalog, options: options, output: dir).run()
            let s = Date().timeIntervalSince(started)
            if s < buildSeconds { buildSeconds = s; report = r }
            buildRate = max(buildRate, Double(r.samplesWritten) / s)
        }
        let ratio = buildRate / resizeRate
        guard let report else { return }
        if json {
            let result: [String: Double] = [
                "items": Double(report.samplesWritten), "resizeOnlyItemsPerSecond": resizeRate,
                "buildItemsPerSecond": buildRate, "buildSeconds": buildSeconds, "ratio": ratio,
                "bytesPerSample": Double(report.levels.reduce(0) { $0 + $1.bytes }) / Double(max(report.samplesWritten, 1)),
            ]
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "resize-only loop   %9.0f items/s", resizeRate))
            print(String(format: "complete build     %9.0f items/s  (%d items in %.2f s, %d workers)", buildRate, report.samplesWritten, buildSeconds, workers))
            print(String(format: "build / resize     %9.2f", ratio))
        }
    }
}
