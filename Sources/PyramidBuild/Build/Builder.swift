import Foundation
import PyramidCache

/// Progress of a running build, for a progress line.
public struct BuildProgress: Sendable {
    /// `dictionary` while training dictionaries, then `build`.
    public var phase: String
    /// Source items done (written or skipped), including earlier interrupted runs.
    public var processed: Int
    public var total: Int
    public var written: Int
    public var skipped: Int
    /// Items processed by this run (for its rate).
    public var processedThisRun: Int
}

/// Builds a cache from a listed source.
///
/// Work is split into chunks of consecutive source items; worker threads render (libvips) and
/// encode (zstd or JPEG) chunks in any order, and the calling thread commits them strictly in source order,
/// one LMDB transaction per chunk, into the shard that owns them. Sample indices are assigned at
/// commit time, so they are consecutive whatever is skipped, and the records' bytes do not depend
/// on the number of workers or shards. Each commit also stores the shard's progress, so a build
/// killed at any moment resumes from its last commit (`--resume`) and ends byte-identical to an
/// uninterrupted one. The manifest is written last, atomically.
public final class Builder {
    public let catalog: SourceCatalog
    public let options: BuildOptions
    public let output: URL
    public let channels: Int
    /// Build options as the user gave them, recorded in the manifest.
    public var recordedOptions: [String: String] = [:]
    public var toolVersion = "0.1.0"
    /// The file an unfinished build keeps in its output directory (what a resume continues from).
    public static let stateFileName = BuildState.fileName

    let levels: [Int]
    /// The codec of each level, largest first.
    public let codecs: [LevelCodec]
    /// ``codecs`` as `--codec` writes them: `jpeg:90,zstd`.
    public var codecList: String { codecs.map(\.description).joined(separator: ",") }
    let chunkSize: Int

    public init(catalog: SourceCatalog, options: BuildOptions, output: URL) throws {
        try options.validate()
        var catalog = catalog
        if let limit = options.limit { catalog.truncate(to: limit) }
        self.catalog = catalog
        self.options = options
        self.output = output
        channels = options.channels ?? catalog.naturalChannels
        levels = options.sortedLevels
        codecs = options.levelCodecs(photoSource: catalog.isPhotoSource)
        chunkSize = catalog.chunkSize
    }

    /// Options that decide the cache's bytes; a resume must repeat them.
    var fingerprint: [String: String] {
        [
            "format": catalog.source.format, "source": catalog.source.path, "split": catalog.source.split ?? "",
            "items": String(catalog.count), "levels": levels.map(String.init).joined(separator: ","),
            "channels": String(channels), "crop": options.crop.rawValue, "margin": String(options.margin),
            "zstd-level": String(options.zstdLevel), "filter": options.filter.name,
            "dictionary": String(options.dictionary), "shards": String(options.shards),
            "max-pixels": String(options.maxPixels), "codecs": codecList,
            "format-version": String(Manifest.currentFormatVersion),
        ]
    }

    // MARK: - Run

    /// Runs the build.
    /// - Parameters:
    ///   - progress: called after every commit, on the calling thread.
    ///   - isCancelled: polled between commits; when it returns true the build stops after the
    ///     current commit and throws ``BuildError/interrupted(committed:total:output:)``.
    /// - Returns: the report, also written to `build-report.json`.
    public func run(progress: (BuildProgress) -> Void = { _ in },
                    isCancelled: @escaping () -> Bool = { false }) throws -> BuildReport {
        try Vips.start()
        let started = Date()
        if options.strict, let first = catalog.refused.first { throw BuildError.badInput(path: first.path, reason: first.reason) }
        let (resumed, lock) = try prepareOutput()
        defer { withExtendedLifetime(lock) {} }
        if catalog.count == 0 { throw BuildError.empty(path: catalog.source.path) }

        // Dictionaries first: trained from a fixed sample of the source, so they do not depend on workers.
        var state: BuildState
        var dictionarySeconds = 0.0
        if let resumed {
            state = resumed
        } else {
            let t0 = Date()
            progress(BuildProgress(phase: "dictionary", processed: 0, total: catalog.count, written: 0, skipped: 0, processedThisRun: 0))
            let dictionaries = options.dictionary ? try trainDictionaries() : [:]
            dictionarySeconds = Date().timeIntervalSince(t0)
            state = BuildState(buildID: UUID().uuidString, fingerprint: fingerprint,
                               dictionaries: dictionaries, priorSeconds: 0)
            try state.write(to: output)
        }
        var dicts: [Int: RecordDictionary] = [:]
        for (key, b64) in state.dictionaries {
            guard let size = Int(key), let data = Data(base64Encoded: b64) else { continue }
            dicts[size] = try RecordDictionary(bytes: [UInt8](data), compressionLevel: Int32(options.zstdLevel))
        }

        // Shards and their committed progress.
        let total = catalog.count
        let shardCount = options.shards
        let ranges = (0..<shardCount).map { k in (k * total / shardCount)..<((k + 1) * total / shardCount) }
        var writers: [ShardWriter] = []
        var shardProgress: [ShardProgress] = []
        for k in 0..<shardCount {
            let writer = try ShardWriter(directory: output.appendingPathComponent(shardDirectoryName(k)), levels: levels)
            let stored = try writer.meta(ShardProgress.metaKey).flatMap { try? JSONDecoder().decode(ShardProgress.self, from: Data($0)) }
            writers.append(writer)
            shardProgress.append(stored ?? ShardProgress(cursor: ranges[k].lowerBound, channels: channels, classes: catalog.classes.count, levels: levels.count))
        }
        // Shards commit in order, so a shard after an incomplete one must be empty.
        if let firstOpen = shardProgress.firstIndex(where: { !$0.complete }) {
            for k in (firstOpen + 1)..<shardCount where shardProgress[k].count > 0 || shardProgress[k].cursor != ranges[k].lowerBound {
                throw BuildError.occupiedOutput(path: writers[k].directory.path, content: .recordsAfterUnfinishedShard)
            }
        }

        // Chunks still to do, in global source order.
        var chunks: [(shard: Int, range: Range<Int>)] = []
        for k in 0..<shardCount where !shardProgress[k].complete {
            var start = shardProgress[k].cursor
            if start == ranges[k].upperBound { chunks.append((k, start..<start)) } // only the closing commit is left
            while start < ranges[k].upperBound {
                let end = min(start + chunkSize, ranges[k].upperBound)
                chunks.append((k, start..<end)); start = end
            }
        }
        var nextIndex = shardProgress.reduce(0) { $0 + $1.count }
        let doneBefore = shardProgress.enumerated().reduce(0) { $0 + ($1.element.cursor - ranges[$1.offset].lowerBound) }
        var processed = doneBefore
        var written = shardProgress.reduce(0) { $0 + $1.count }
        var skippedTotal = shardProgress.reduce(0) { $0 + $1.skipped }

        // Workers render and encode; this thread commits in order.
        let queue = ChunkQueue(count: chunks.count, window: options.workers * 2 + 2)
        let rendererOptions = options
        let dictionaries = dicts
        var threads: [Thread] = []
        for _ in 0..<min(options.workers, max(chunks.count, 1)) {
            let thread = Thread { [catalog, levels, codecs, channels, chunks] in
                let renderer = ChunkRenderer(catalog: catalog, options: rendererOptions, channels: channels)
                let encoders = zip(levels, codecs).map { size, codec in
                    RecordEncoder(codec: codec, compressionLevel: rendererOptions.zstdLevel, filter: rendererOptions.filter, dictionary: dictionaries[size])
                }
                while let id = queue.take() {
                    let chunk = chunks[id]
                    queue.put(id, Result { try Self.encodeChunk(Array(chunk.range), renderer: renderer, encoders: encoders, channels: channels) })
                }
                Vips.threadShutdown()
            }
            thread.stackSize = 8 << 20
            thread.start()
            threads.append(thread)
        }
        defer { queue.stop(); for t in threads { while !t.isFinished { usleep(1000) } } }

        for (id, chunk) in chunks.enumerated() {
            guard let result = queue.result(id, isCancelled: isCancelled) else {
                state.priorSeconds += Date().timeIntervalSince(started)
                try? state.write(to: output)
                throw BuildError.interrupted(committed: processed, total: total, output: output.path)
            }
            let encoded = try result.get()
            if options.strict, let first = encoded.skipped.first { throw BuildError.badInput(path: first.1.path, reason: first.1.reason) }
            let k = chunk.shard
            var p = shardProgress[k]
            var batch = ShardWriter.Batch()
            for sample in encoded.samples {
                for (l, record) in sample.records.enumerated() {
                    batch.records.append((nextIndex, levels[l], record))
                    p.bytes[l] += record.count
                    p.rawBytes[l] += sample.rawBytes[l]
                }
                batch.labels.append((nextIndex, sample.label))
                for c in 0..<channels { p.sums[c] += sample.sums[c]; p.squares[c] += sample.squares[c] }
                p.pixels += sample.pixelCount
                if sample.label < p.labelCounts.count { p.labelCounts[sample.label] += 1 }
                nextIndex += 1
            }
            for (position, item) in encoded.skipped {
                batch.meta.append((skipKey(position), Array((try? JSONEncoder().encode(item)) ?? Data())))
            }
            for (position, item) in encoded.warned {
                batch.meta.append((warningKey(position), Array((try? JSONEncoder().encode(item)) ?? Data())))
            }
            p.count += encoded.samples.count
            p.skipped += encoded.skipped.count
            p.cursor = chunk.range.upperBound
            if p.cursor == ranges[k].upperBound {
                p.complete = true
                let info = ShardInfo(number: k, firstIndex: nextIndex - p.count, count: p.count, levels: levels, channels: channels, buildID: state.buildID)
                batch.meta.append((ShardInfo.metaKey, info.encoded()))
            }
            batch.meta.append((ShardProgress.metaKey, p.encoded()))
            try writers[k].commit(batch)
            shardProgress[k] = p
            processed += chunk.range.count
            written += encoded.samples.count
            skippedTotal += encoded.skipped.count
            progress(BuildProgress(phase: "build", processed: processed, total: total, written: written,
                                   skipped: skippedTotal, processedThisRun: processed - doneBefore))
        }
        for writer in writers { try writer.sync() }
        let seconds = Date().timeIntervalSince(started)
        return try finish(writers: writers, progress: shardProgress, state: state, seconds: seconds,
                          dictionarySeconds: dictionarySeconds, itemsThisRun: processed - doneBefore, resumed: resumed != nil)
    }
}
