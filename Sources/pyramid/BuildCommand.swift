import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a multi-resolution cache from an image folder, a list file, CIFAR binaries or IDX files.",
        discussion: """
            SOURCE is one of (detected, or named with --format):
              folder   root/<class>/<image>; classes are the sorted folder names. Anything libvips \
            loads (JPEG, PNG, WebP, TIFF, GIF, ...).
              list     a text file of `path<TAB>label` lines (paths relative to the file).
              cifar10  a folder with data_batch_1..5.bin and test_batch.bin, or one .bin batch.
              cifar100 a folder with train.bin and test.bin, or one .bin file.
              idx      a folder with <split>-images-idx3-ubyte[.gz] and labels (MNIST, Fashion-MNIST), \
            or the images file.

            Every level of a sample comes from one crop: the centred square (--crop center) or the \
            whole image (--crop full, short side = level). A bad image (unreadable, truncated, not an \
            image, over --max-pixels) is skipped and listed in CACHE/build-report.json; --strict \
            stops at the first one instead; libvips' warnings go into the report, per file, never to \
            the terminal. Ctrl-C stops after the current commit (so does a full disk, named as such); \
            --resume finishes the build and gives the same cache as an uninterrupted one. One build \
            writes an output directory at a time (a lock file, .pyramid.lock, holds its PID).

            Levels from folders and list files of 64 px and more are stored as JPEG q90 by default \
            (a sixth of the lossless bytes for photos); smaller levels, IDX and CIFAR stay lossless \
            (zstd). --codec chooses per level. Every record carries a checksum (XXH3-64).

            Under mpirun (mpirun -np N pyramid build ...), the N processes share the shards \
            (rank r builds shards r, r+N, ...; with fewer shards than processes the extra ranks wait), \
            rank 0 writes the manifest after all of them, and the cache is byte-identical to a \
            one-process build with the same --shards. --out must be one directory every rank sees (a \
            shared filesystem across machines). Rank 0 prints progress as a line every 10 seconds. \
            A rank that fails stops every rank; --resume continues with any number of processes.

            --out s3://bucket/prefix builds into a local staging directory (--staging; default \
            staging/ under the cache root: $PYRAMID_CACHE_DIR, else $XDG_CACHE_HOME/pyramid, else \
            ~/.cache/pyramid), uploads each shard as soon as it is finished (one-process builds; under \
            mpirun at the end), then publishes as pyramid push does (shards and labels, the manifest \
            last, objects already there skipped) and removes the staging directory. --resume continues \
            an interrupted build or upload from the staging directory; a location that already holds a \
            cache is refused without --overwrite.

            Exit status: 0 built (possibly with skipped items), 1 error, 130 interrupted.
            """)

    @Argument(help: "The source dataset (folder, list file, CIFAR binaries or IDX files).")
    var source: String

    @Option(name: [.short, .customLong("out")], help: "The cache directory to create, or s3://bucket/prefix to build and publish.")
    var out: String

    @Option(help: "With --out s3://…: the local directory the build is staged in (default: under the cache root).")
    var staging: String?

    @Option(help: "Level sizes in pixels, comma-separated (any order; stored largest first).")
    var levels: String = "224,192,160,128,96"

    @Option(help: "Source format (default: detected).")
    var format: SourceFormat?

    @Option(help: "Split to read from CIFAR and IDX folders.")
    var split: Split = .train

    @Option(name: .customLong("class-names"), help: "Class names for integer labels: comma-separated, or @FILE with one per line.")
    var classNames: String?

    @Option(parsing: .unconditional, help: "Channels to store: 1 (grey) or 3 (sRGB). Default: the source's (1 for IDX, 3 otherwise).")
    var channels: Int?

    @Option(help: "center: the centred square of the short side; full: the whole image, aspect kept.")
    var crop: BuildOptions.Crop = .center

    @Option(parsing: .unconditional, help: "Store this much context around the crop (≥ 1): the stored short side is round(level × margin). 1.143 stores short side = level/0.875 for the usual centre-crop evaluation.")
    var margin: Double = 1.0

    @Option(parsing: .unconditional, help: "Number of LMDB shards (default: from --shard-size, at least one per process under mpirun; with --resume, the interrupted build's).")
    var shards: Int?

    @Option(help: ArgumentHelp("Aimed bytes per shard when --shards is not given, e.g. 128MiB: the count is the estimated cache size (raw pixels at each level, halved for zstd levels, a tenth for JPEG ones) over this. Remote caches are fetched and evicted a shard at a time.", valueName: "size"))
    var shardSize: String = "128MiB"

    @Option(parsing: .unconditional, help: "Worker threads decoding and encoding, per process (default: the number of cores, divided among the processes on this machine under mpirun).")
    var workers: Int = Processes.coresPerProcess

    @Option(name: .customLong("zstd-level"), parsing: .unconditional, help: "zstd compression level (-7...19; negative levels are faster).")
    var zstdLevel: Int = 1

    @Flag(help: "Train a zstd dictionary per level (helps small images most).")
    var dictionary = false

    @Option(help: "Pixel filter before zstd: none or sub (PNG-style left-neighbour delta; helps photos).")
    var filter: RecordHeader.Filter = .none

    @Option(help: ArgumentHelp(
        "How levels are stored: auto, one codec for every level, or one per level (largest first, comma-separated).",
        discussion: "A codec is zstd (lossless) or jpeg[:Q] (JPEG at quality Q, 1...100, default 90; 4:2:0 chroma). auto: jpeg:90 for levels of 64 px and more from folders and list files, zstd for smaller levels and for IDX and CIFAR. Example: --levels 224,160,96,32 --codec jpeg:90,jpeg:90,jpeg:90,zstd.",
        valueName: "codec"))
    var codec: String = "auto"

    @Option(name: .customLong("max-pixels"), parsing: .unconditional, help: "Refuse images whose header claims more pixels than this (decompression bombs), before decoding.")
    var maxPixels: Int = 100_000_000

    @Flag(help: "Stop at the first bad input instead of skipping it.")
    var strict = false

    @Flag(help: "Finish an interrupted build in --out.")
    var resume = false

    @Flag(help: "Replace an existing cache or interrupted build in --out.")
    var overwrite = false

    @Option(parsing: .unconditional, help: "Use only the first N source items.")
    var limit: Int?

    @Option(name: .customLong("cache-version"), parsing: .unconditional,
            help: "The cache format to write: 3 (each level of a shard in a file of its own, so a run reads, fetches and keeps only the levels it uses) or 2 (one file per shard, for readers older than format 3).")
    var cacheVersion: Int = Manifest.defaultBuildVersion

    @Flag(help: "No progress line and no summary.")
    var quiet = false

    @Flag(help: "Print the build report as JSON on standard output.")
    var json = false

    func validate() throws {
        if resume && overwrite { throw ValidationError("--resume and --overwrite cannot be used together") }
        if parseByteSize(shardSize) == nil { throw ValidationError("--shard-size: \"\(shardSize)\" is not a size (examples: 64MiB, 256MB, 100000000)") }
        _ = try parseCodecList(codec)
    }

    /// The build's options, validated.
    func makeOptions() throws -> BuildOptions {
        var o = BuildOptions(levels: try parseIntList(levels, flag: "levels"))
        o.channels = channels
        o.crop = crop
        o.margin = margin
        o.shards = try shardCount()
        o.workers = workers
        o.zstdLevel = zstdLevel
        o.dictionary = dictionary
        o.filter = filter
        o.codecs = try parseCodecList(codec)
        o.maxPixels = maxPixels
        o.strict = strict
        o.mode = resume ? .resume : overwrite ? .overwrite : .create
        o.limit = limit
        o.formatVersion = cacheVersion
        try o.validate()
        return o
    }

    /// `--shards`, or its default: the interrupted build's count with --resume, else one per process.
    func shardCount() throws -> Int {
        if let shards { return shards }
        if resume, let interrupted = Builder.interruptedShardCount(at: URL(fileURLWithPath: try outputDirectory())) { return interrupted }
        return Processes.distributed ? try Processes.group().size : 1
    }

    /// --out as a remote location (nil: a directory).
    func remoteOut() throws -> S3Location? { S3Location.isRemote(out) ? try S3Location(out) : nil }

    /// Where the build writes: --out, or for s3:// the staging directory.
    func outputDirectory() throws -> String {
        guard let location = try remoteOut() else { return out }
        return staging ?? RemoteOptions().root().appendingPathComponent("staging").appendingPathComponent(location.directoryName).path
    }

    func run() throws {
        let group = try Processes.group()
        let remote = try remoteOut()
        let output = try outputDirectory()
        let publisher = try remote.map { try StagedPublisher(location: $0, staging: URL(fileURLWithPath: output)) }
        if let remote, let publisher {
            let staged = URL(fileURLWithPath: output)
            let interrupted = Builder.interruptedShardCount(at: staged) != nil
                || FileManager.default.fileExists(atPath: staged.appendingPathComponent(Manifest.fileName).path)
            // --resume continues a build staged here; it never starts one over a published cache.
            if group.isRoot, !overwrite, !(resume && interrupted), try publisher.client.head(remote, Manifest.fileName) != nil {
                throw Failure.failure(resume
                    ? "--out: \(remote) already holds a cache, and \(output) holds no interrupted build of it to resume (--overwrite replaces it)"
                    : "--out: \(remote) already holds a cache (--overwrite replaces it)")
            }
            // A finished build whose upload was interrupted: only the upload is left.
            if resume, Builder.interruptedShardCount(at: URL(fileURLWithPath: output)) == nil,
               FileManager.default.fileExists(atPath: URL(fileURLWithPath: output).appendingPathComponent(Manifest.fileName).path) {
                if group.isRoot { try publisher.publish(quiet: quiet || json) }
                return
            }
        }
        var options = try makeOptions()
        if group.isRoot && shards != nil && options.shards < group.size {
            let idle = group.size - options.shards == 1 ? "rank \(options.shards) has" : "ranks \(options.shards)...\(group.size - 1) have"
            printError("warning: \(options.shards) shard\(options.shards == 1 ? "" : "s") for \(group.size) processes: \(idle) nothing to build (--shards \(group.size) or more uses them all)")
        }
        var names: [String]? = nil
        if let classNames {
            if classNames.hasPrefix("@") {
                let file = String(classNames.dropFirst())
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw Failure.usage("--class-names: cannot read \(file)")
                }
                names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            } else {
                names = classNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
        }
        let catalog = try SourceFormat.open(path: source, format: format, split: split.rawValue, classNames: names)
        let interrupted = resume && Builder.interruptedShardCount(at: URL(fileURLWithPath: output)) != nil
        if shards == nil && !interrupted, let target = parseByteSize(shardSize) {
            options.shards = max(options.shards, Builder.shardCount(catalog: catalog, options: options, bytesPerShard: target))
        }
        let builder = try Builder(catalog: catalog, options: options, output: URL(fileURLWithPath: output))
        builder.toolVersion = Pyramid.version
        if let publisher, group.isRoot { builder.shardFinished = { publisher.shardFinished($0) } }
        builder.recordedOptions = [
            "levels": levels, "crop": crop.rawValue, "margin": String(margin), "shards": String(options.shards), "workers": String(workers), "processes": String(group.size),
            "zstd-level": String(zstdLevel), "dictionary": String(dictionary), "filter": filter.name,
            "codec": builder.codecList,
            "max-pixels": String(maxPixels), "strict": String(strict), "limit": limit.map(String.init) ?? "",
            "channels": String(builder.channels), "split": split.rawValue,
        ]
        installInterruptHandler()
        let progress = ProgressLine(quiet: quiet || !group.isRoot, periodicLines: group.size > 1)
        let report: BuildReport
        do {
            defer { progress.finish() }
            report = try builder.run(group: group, progress: { p in
                if p.phase == "dictionary" {
                    progress.update("training dictionaries", done: 0, total: p.total, force: true)
                } else {
                    progress.update("build", done: p.processed, total: p.total, doneThisRun: p.processedThisRun,
                                    extra: p.skipped > 0 ? "\(p.skipped) skipped" : "", force: p.processed == p.total)
                }
            }, isCancelled: { interruptRequested })
        }
        guard group.isRoot else { return }
        if json {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else if !quiet {
            print(report.summary)
        }
        try publisher?.publish(quiet: quiet || json)
    }
}

