import ArgumentParser
import Foundation
@_spi(Benchmark) import PyramidBuild

struct BenchBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Time a complete build against a loop that only decodes and resizes the same images.",
        discussion: """
            Runs the build's decode-and-resize stage alone (same chunks, same workers, no zstd, no \
            LMDB), then a complete build into a temporary directory, and prints both rates and their \
            ratio. Storing should not cost more than resizing: a ratio of 0.5 or more is the goal.

            --json prints one object: items, resizeOnlyItemsPerSecond, buildItemsPerSecond, \
            buildSeconds, ratio, bytesPerSample, workers.
            """)

    @Argument(help: "The source dataset.")
    var source: String

    @Option(help: "Level sizes, comma-separated.")
    var levels: String = "28,24,20,16,14,12"

    @Option(parsing: .unconditional, help: "Worker threads.")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(parsing: .unconditional, help: "Use only the first N source items.")
    var limit: Int?

    @Option(help: "Pixel filter: none or sub.")
    var filter: String = "none"

    @Option(help: "Level codecs, as for pyramid build: auto, one codec, or one per level.")
    var codec: String = "auto"

    func validate() throws {
        if filter != "none" && filter != "sub" { throw ValidationError("--filter: must be none or sub, not '\(filter)'") }
        _ = try parseCodecList(codec)
    }

    @Flag(help: "Train zstd dictionaries.")
    var dictionary = false

    @Option(name: .customLong("repeat"), parsing: .unconditional, help: "Repetitions of each measurement; the best is reported.")
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
        options.codecs = try parseCodecList(codec)
        let catalog = try SourceFormat.open(path: source, format: nil, split: "train", classNames: nil)
        let dir = URL(fileURLWithPath: scratch ?? NSTemporaryDirectory()).appendingPathComponent("pyramid-bench-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = try BuildBenchmark.measure(catalog: catalog, options: options, output: dir, repetitions: repetitions)
        if json { return try printJSON(m) }
        print(String(format: "resize-only loop   %9.0f items/s", m.resizeOnlyItemsPerSecond))
        print(String(format: "complete build     %9.0f items/s  (%d items in %.2f s, %d workers)", m.buildItemsPerSecond, m.items, m.buildSeconds, workers))
        print(String(format: "build / resize     %9.2f", m.ratio))
    }
}
