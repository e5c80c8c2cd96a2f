import ArgumentParser
import Foundation
import PyramidCache
@_spi(Benchmark) import PyramidLoader

struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Time the loader over one epoch against limits measured in the same run.",
        discussion: """
            Measures, over exactly the records and output bytes of the same epoch: (1) a loop that \
            only reads and decompresses those records into reused buffers, with the same number of \
            threads; (2) a memcpy of the output bytes, batch by batch, with the same threads; (3) the \
            loader itself, its consumer doing nothing but take batches (or, with --consumer-us, \
            spinning that long per batch, to check that prefetch keeps the consumer from waiting). \
            Each is run --repeat times and the best is kept.

            --json prints one object: images, samples, records, outputBytes, loaderImagesPerSecond, \
            decodeOnlyImagesPerSecond, copyImagesPerSecond, ratioToDecodeOnly, ratioToCopy, \
            loaderSeconds, consumerWaitFraction, workers.
            """)

    @Argument(help: "The cache: a directory or s3://bucket/prefix.")
    var cache: String

    @OptionGroup(title: "Steps")
    var stream: StreamArguments

    @OptionGroup(title: "Samples")
    var samples: SampleArguments

    @Option(help: "Output: float32 (NCHW, normalized), float32ChannelMajor (CNHW, normalized) or uint8 (NHWC).")
    var output: OutputFormat = .float32

    @Option(parsing: .unconditional, help: "Worker threads (also used by the limit loops).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(parsing: .unconditional, help: "Batch buffers in flight (default: max(4, 2 x workers)).")
    var prefetch: Int?

    @Option(parsing: .unconditional, help: "Epoch to load.")
    var epoch: Int = 0

    @Option(parsing: .unconditional, help: "Busy work per batch in the consumer, microseconds: reports how long the consumer waited.")
    var consumerUs: Int = 0

    @Option(name: .customLong("repeat"), parsing: .unconditional, help: "Repetitions of each measurement; the best is reported.")
    var repetitions: Int = 3

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if workers < 1 { throw ValidationError("--workers: must be at least 1") }
        if consumerUs < 0 { throw ValidationError("--consumer-us: must not be negative") }
    }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let reader = try CacheReader.open(cache, remote: remoteOptions)
        let parsed = try stream.parsedSchedule(largestLevel: reader.manifest.levelSizes.max())
        let batch = try stream.batchPerProcess(1)
        let config = LoaderConfiguration(schedule: parsed, batchSize: batch, augmentation: try samples.parsedAugmentation(),
                                         output: output, prefetch: prefetch, workers: workers, order: samples.shuffle)
        let loader = try Loader(cache: reader, configuration: config)
        let m = try LoadBenchmark.measure(loader, epoch: epoch, repetitions: repetitions, consumerMicroseconds: consumerUs)
        if json { return try printJSON(m) }
        print("schedule         \(parsed), batch \(batch), \(loader.augmentation), \(output.rawValue), \(workers) workers, epoch \(epoch)")
        print("epoch            \(m.images) images, \(m.samples) samples, \(m.records) records, \(String(format: "%.1f", Double(m.outputBytes) / 1_048_576)) MiB out")
        print(String(format: "decode-only loop %10.0f images/s", m.decodeOnlyImagesPerSecond))
        print(String(format: "memcpy of output %10.0f images/s  (%.1f GB/s)", m.copyImagesPerSecond, m.copyImagesPerSecond * Double(m.outputBytes) / Double(m.images) / 1e9))
        print(String(format: "loader           %10.0f images/s  (%.3f s)", m.loaderImagesPerSecond, m.loaderSeconds))
        print(String(format: "loader / decode  %10.2f", m.ratioToDecodeOnly))
        print(String(format: "loader / memcpy  %10.2f", m.ratioToCopy))
        if consumerUs > 0 {
            print(String(format: "consumer         %d us of work per batch; waited %.1f%% of the epoch (%.3f s)", consumerUs,
                         100 * m.consumerWaitFraction, m.consumerWaitFraction * m.loaderSeconds))
        }
    }
}
