import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache
import PyramidLoader
import PyramidTrain

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Pyramid against limits measured in the same run.",
        subcommands: [BenchBuildCommand.self, BenchLoadCommand.self, BenchTrainCommand.self, BenchConvCommand.self])
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

struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Time the loader over one epoch against limits measured in the same run.",
        discussion: """
            Measures, over exactly the records and output bytes of the same epoch: (1) a loop that \
            only reads and decompresses those records into reused buffers, with the same number of \
            threads; (2) a memcpy of the output bytes, batch by batch, with the same threads; (3) the \
            loader itself, its consumer doing nothing but take batches (or, with --consumer-us, \
            spinning that long per batch, to check that prefetch keeps the consumer from waiting).
            Each is run --repeat times and the best is kept.
            """)

    @Argument(help: "The cache directory.")
    var cache: String

    @Option(help: "The resolution schedule (\(ScheduleParser.syntax)).")
    var schedule: String

    @Option(help: "Base images per step.")
    var batch: Int = 128

    @Option(help: "Augmentation (\(Augmentation.syntax)); default: the cache's training augmentation.")
    var augment: String?

    @Option(help: "Output: float32 (NCHW, normalized) or uint8 (NHWC).")
    var output: String = "float32"

    @Option(help: "Worker threads (also used by the limit loops).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Batch buffers in flight (default: max(4, 2 x workers)).")
    var prefetch: Int?

    @Option(help: "Epoch to load.")
    var epoch: Int = 0

    @Option(help: "Busy work per batch in the consumer, microseconds: reports how long the consumer waited.")
    var consumerUs: Int = 0

    @Option(name: .customLong("repeat"), help: "Repetitions of each measurement; the best is reported.")
    var repetitions: Int = 3

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch: must be at least 1") }
        if workers < 1 { throw ValidationError("--workers: must be at least 1") }
        if OutputFormat(rawValue: output) == nil { throw ValidationError("--output: must be float32 or uint8, not '\(output)'") }
        if consumerUs < 0 { throw ValidationError("--consumer-us: must not be negative") }
    }

    func run() throws {
        let reader = try CacheReader(url: URL(fileURLWithPath: cache))
        let parsed = try ScheduleParser.parse(schedule, largestLevel: reader.manifest.levelSizes.max())
        let augmentation = try augment.map(Augmentation.parse)
        let config = LoaderConfiguration(schedule: parsed, batchSize: batch, augmentation: augmentation,
                                         output: OutputFormat(rawValue: output)!, prefetch: prefetch, workers: workers)
        let loader = try Loader(cache: reader, configuration: config)
        let records = LoadBenchmark.records(of: loader, epoch: epoch)
        let plan = loader.plan(epoch: epoch)
        let images = plan.images, steps = plan.steps.count
        let samples = plan.steps.reduce(0) { $0 + $1.globalImages * $1.duplicates }
        let outBytes = LoadBenchmark.outputBytes(of: loader, epoch: epoch)
        var decode = Double.infinity, copy = Double.infinity, load = Double.infinity, waited = 0.0
        for _ in 0..<max(1, repetitions) {
            decode = min(decode, try LoadBenchmark.decodeOnly(reader, records: records, threads: workers))
            copy = min(copy, LoadBenchmark.copy(bytes: outBytes, block: outBytes / max(1, steps), threads: workers))
            let (seconds, wait) = try timeLoader(loader)
            if seconds < load { load = seconds; waited = wait }
        }
        let rate = Double(images) / load, decodeRate = Double(images) / decode, copyRate = Double(images) / copy
        if json {
            let result: [String: Double] = [
                "images": Double(images), "samples": Double(samples), "records": Double(records.count), "outputBytes": Double(outBytes),
                "loaderImagesPerSecond": rate, "decodeOnlyImagesPerSecond": decodeRate, "copyImagesPerSecond": copyRate,
                "ratioToDecodeOnly": rate / decodeRate, "ratioToCopy": rate / copyRate, "consumerWaitFraction": waited / load,
                "workers": Double(workers),
            ]
            let encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            return
        }
        print("schedule         \(parsed), batch \(batch), \(loader.augmentation), \(output), \(workers) workers, epoch \(epoch)")
        print("epoch            \(images) images, \(samples) samples, \(records.count) records, \(String(format: "%.1f", Double(outBytes) / 1_048_576)) MiB out")
        print(String(format: "decode-only loop %10.0f images/s", decodeRate))
        print(String(format: "memcpy of output %10.0f images/s  (%.1f GB/s)", copyRate, Double(outBytes) / copy / 1e9))
        print(String(format: "loader           %10.0f images/s  (%.3f s)", rate, load))
        print(String(format: "loader / decode  %10.2f", rate / decodeRate))
        print(String(format: "loader / memcpy  %10.2f", rate / copyRate))
        if consumerUs > 0 {
            print(String(format: "consumer         %d us of work per batch; waited %.1f%% of the epoch (%.3f s)", consumerUs, 100 * waited / load, waited))
        }
    }

    /// One epoch through the loader; returns wall seconds and the time the consumer spent waiting.
    private func timeLoader(_ loader: Loader) throws -> (Double, Double) {
        let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        let start = clock()
        var it = try loader.batches(epoch: epoch)
        var waited = 0.0, sink: Float = 0
        while true {
            let before = clock()
            guard let batch = try it.next() else { break }
            waited += clock() - before
            if batch.format == .float32 { sink += batch.images().floats[0] }
            if consumerUs > 0 {
                let until = clock() + Double(consumerUs) / 1e6
                while clock() < until {}
            }
        }
        if sink.isNaN { print("") }
        return (clock() - start, waited)
    }
}

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps on synthetic batches against the sgemm peak measured in the same run.",
        discussion: """
            Runs full training steps (forward, cross-entropy, backward, SGD) of a model on random \
            images, times each, and reports images/s of the median step (the machine may be shared; \
            a neighbour's burst lengthens a few steps), achieved GFLOP/s (a step counted as three forward passes \
            of direct-convolution MACs; Winograd layers multiply less, so with them this is an effective rate) \
            and its ratio to cblas_sgemm on 1024x1024 matrices run the same way (one single-threaded \
            product per thread).
            """)

    @Option(help: "Model.")
    var model: String = "resnet20"

    @Option(help: "Image sizes, comma-separated.")
    var sizes: String = "28,14"

    @Option(help: "Channels.")
    var channels: Int = 1

    @Option(help: "Batch.")
    var batch: Int = 128

    @Option(help: "Timed steps per size.")
    var steps: Int = 10

    @Option(help: "Threads (batch parts).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "3x3 stride-1 convolutions: auto (Winograd on even planes of 8x8 and more, else im2col), im2col or winograd.")
    var conv: String = "auto"

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        guard let algorithm = Conv2D.Algorithm(rawValue: conv) else {
            throw Failure.usage("--conv: '\(conv)' is not one of auto, im2col, winograd")
        }
        Conv2D.algorithm = algorithm
        let peak = TrainBenchmark.sgemmPeak(threads: threads)
        var rows: [[String: Double]] = []
        for s in try parseIntList(sizes, flag: "sizes") {
            let r = try TrainBenchmark.trainingSteps(model: model, size: s, channels: channels, batch: batch, steps: steps, threads: threads)
            rows.append(["size": Double(s), "imagesPerSecond": r.imagesPerSecond, "macs": Double(r.macs), "gflops": r.gflops, "ratioToPeak": r.gflops / peak])
            if !json {
                print(String(format: "%@ %dx%dx%d batch %d: %7.1f images/s  %.1f MMACs/image  %6.1f GFLOP/s  %.2f of sgemm peak", model as NSString,
                             s, s, channels, batch, r.imagesPerSecond, Double(r.macs) / 1e6, r.gflops, r.gflops / peak))
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["sgemmPeakGflops": peak, "threads": threads, "results": rows], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "sgemm peak (1024^3, %d thread%@): %.1f GFLOP/s", threads, threads == 1 ? "" : "s", peak))
        }
    }
}

struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Time single 3x3 convolution layers with each method against the sgemm peak.",
        discussion: """
            Runs forward and backward (weight and input gradients) of one 3x3, padding-1 convolution \
            layer on a random batch with im2col + sgemm and with Winograd F(2x2,3x3) (16 sgemms of \
            depth CIN), marking with * the one training picks by default; the methods alternate \
            --repetitions times and the fastest forward and backward of each is reported, in \
            milliseconds and as a fraction of the cblas_sgemm peak measured in the same run (before \
            and after the layers, the higher kept; a \
            training step's convolution work counted as 3 forward passes, 2 FLOPs per MAC of the \
            direct convolution, so Winograd, which multiplies less, can pass 1.0). A layer \
            is CIN:COUT@SIZE, with /2 for stride 2 (e.g. 16:32@28/2; stride-2 layers use im2col only).
            """)

    @Option(help: "Layers, comma-separated CIN:COUT@SIZE[/2]; default: ResNet-20's 3x3 stride-1 layers at 28 px.")
    var layers: String = "16:16@28,32:32@14,64:64@7"

    @Option(help: "Batch.")
    var batch: Int = 128

    @Option(help: "Threads (batch parts).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Timed repetitions of each method (the fastest is reported).")
    var repetitions: Int = 9

    func run() throws {
        // The peak before and after the layers, the higher kept: a neighbour's burst during one
        // measurement would otherwise make every ratio too high.
        var peak = TrainBenchmark.sgemmPeak(threads: threads)
        var rows: [(String, Conv2D.Algorithm, Conv2D.Algorithm, TrainBenchmark.ConvolutionResult)] = []
        for spec in layers.split(separator: ",") {
            let parts = spec.split(whereSeparator: { ":@/".contains($0) }).compactMap { Int($0) }
            guard parts.count == 3 || (parts.count == 4 && parts[3] == 2), parts[..<3].allSatisfy({ $0 > 0 }) else {
                throw Failure.usage("--layers: '\(spec)' is not CIN:COUT@SIZE[/2]")
            }
            let stride = parts.count == 4 ? 2 : 1
            let methods: [Conv2D.Algorithm] = stride == 1 ? [.im2col, .winograd] : [.im2col]
            let auto = Conv2D.automaticAlgorithm(inChannels: parts[0], outChannels: parts[1], kernel: 3, stride: stride, height: parts[2], width: parts[2])
            for r in TrainBenchmark.convolution(inChannels: parts[0], outChannels: parts[1], size: parts[2], stride: stride,
                                                batch: batch, threads: threads, repetitions: repetitions, methods: methods) {
                rows.append((String(spec), r.method, auto, r))
            }
        }
        peak = max(peak, TrainBenchmark.sgemmPeak(threads: threads))
        print(String(format: "sgemm peak (1024^3, %d thread%@, best before and after): %.1f GFLOP/s", threads, threads == 1 ? "" : "s", peak))
        print("layer           method      forward ms  backward ms  of peak  (* auto)")
        for (spec, method, auto, r) in rows {
            let gflops = Double(r.macs) * 2 * 3 / (r.forward + r.backward) / 1e9
            print(spec.padding(toLength: 16, withPad: " ", startingAt: 0) + method.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: " %10.2f  %11.2f  %7.2f", r.forward * 1e3, r.backward * 1e3, gflops / peak) + (method == auto ? "  *" : ""))
        }
    }
}
