import ArgumentParser
import Foundation
import PyramidCache
import PyramidLoader

struct BatchesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batches",
        abstract: "List an epoch's batches as the loader serves them: sizes, sample indices and a digest of the pixels.",
        discussion: """
            pyramid batches CACHE --schedule trd:28,14,p=0.5 --batch 64 --epochs 10 --epoch 3 --limit 5
            pyramid batches CACHE --schedule parallel:28,20,14 --json

            Every batch is a pure function of the cache and these settings, so two machines, two \
            versions of Pyramid, or Pyramid's Swift and Python loaders (pyramid_loader) can be \
            compared by their digests: the XXH3-64 of each view's pixels as stored in the batch \
            (float32 NCHW, normalized, or uint8 NHWC with --output uint8) and of its labels.
            """)

    @Argument(help: "The cache: a directory or s3://bucket/prefix.")
    var cache: String

    @OptionGroup(title: "Steps")
    var stream: StreamArguments

    @OptionGroup(title: "Samples")
    var samples: SampleArguments

    @Option(parsing: .unconditional, help: "Seed of the order, crops, flips and schedule draws.")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Epochs of the run (TRD and progressive schedules plan with them).")
    var epochs: Int = 1

    @Option(parsing: .unconditional, help: "The epoch to list (from 0).")
    var epoch: Int = 0

    @Option(parsing: .unconditional, help: "Start at this stream position (a batch's next cursor).")
    var cursor: Int = 0

    @Option(parsing: .unconditional, help: "This process's rank, of --world-size.")
    var rank: Int = 0

    @Option(name: .customLong("world-size"), parsing: .unconditional, help: "Ranks sharing every step.")
    var worldSize: Int = 1

    @Option(help: "Pixels as float32 (NCHW, normalized), float32ChannelMajor (CNHW, normalized) or uint8 (NHWC).")
    var output: OutputFormat = .float32

    @Option(parsing: .unconditional, help: "At most this many batches (default: the whole epoch).")
    var limit: Int?

    @Flag(help: "One JSON object per batch.")
    var json = false

    func validate() throws {
        if epochs < 1 { throw ValidationError("--epochs: must be at least 1") }
        if epoch < 0 { throw ValidationError("--epoch: must be at least 0") }
        if cursor < 0 { throw ValidationError("--cursor: must be at least 0") }
        if let why = Bounds.check(worldSize, atMost: Bounds.worldSize) { throw ValidationError("--world-size: \(why)") }
        if rank < 0 || rank >= worldSize { throw ValidationError("--rank: must be in 0..<\(worldSize)") }
        if let limit, limit < 1 { throw ValidationError("--limit: must be at least 1") }
    }

    /// One line of `--json`.
    struct Line: Encodable {
        var epoch: Int, step: Int, sizes: [Int], count: Int, cursor: Int, nextCursor: Int, substitutions: Int
        /// XXH3-64 of each view's pixel bytes, in `sizes`' order, and of the Int32 labels.
        var digests: [String], labelsDigest: String
        var indices: [Int]
    }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let reader = try CacheReader.open(cache, remote: remoteOptions)
        let largest = reader.manifest.levelSizes.max()
        let loader = try Loader(cache: reader, configuration: LoaderConfiguration(
            schedule: try stream.parsedSchedule(largestLevel: largest), batchSize: try stream.batchPerProcess(worldSize), seed: seed,
            rank: rank, worldSize: worldSize, epochs: epochs, augmentation: try samples.parsedAugmentation(), output: output, order: samples.shuffle))
        var batches = try loader.batches(epoch: epoch, from: cursor)
        var listed = 0
        while listed < (limit ?? .max), let b = try batches.next() {
            listed += 1
            let digests = b.sizes.map { s -> String in
                let images = b.images(size: s)
                return RecordChecksum.hex(images.format.isFloat
                    ? RecordChecksum.xxh3(UnsafeRawBufferPointer(images.floats)) : RecordChecksum.xxh3(UnsafeRawBufferPointer(images.bytes)))
            }
            let labels = RecordChecksum.hex(b.labels.withUnsafeBytes { RecordChecksum.xxh3($0) })
            if json {
                try printJSON(Line(epoch: b.epoch, step: b.step, sizes: b.sizes, count: b.count, cursor: b.plan.cursor, nextCursor: b.nextCursor,
                                   substitutions: b.substitutions, digests: digests, labelsDigest: labels, indices: b.indices))
            } else {
                let first = b.indices.prefix(4).map(String.init).joined(separator: ",") + (b.indices.count > 4 ? ",…" : "")
                print("step \(b.step)  sizes \(b.sizes.map(String.init).joined(separator: ","))  \(b.count) samples  "
                      + "pixels \(digests.joined(separator: ","))  labels \(labels)  indices \(first)  next cursor \(b.nextCursor)")
            }
        }
    }
}
