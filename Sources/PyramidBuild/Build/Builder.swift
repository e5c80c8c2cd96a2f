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
/// encode (zstd) chunks in any order, and the calling thread commits them strictly in source order,
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

    private let levels: [Int]
    private let chunkSize: Int

    public init(catalog: SourceCatalog, options: BuildOptions, output: URL) throws {
        try options.validate()
        var catalog = catalog
        if let limit = options.limit { catalog.truncate(to: limit) }
        self.catalog = catalog
        self.options = options
        self.output = output
        channels = options.channels ?? catalog.naturalChannels
        levels = options.sortedLevels
        chunkSize = catalog.chunkSize
    }

    /// Options that decide the cache's bytes; a resume must repeat them.
    private var fingerprint: [String: String] {
        [
            "format": catalog.source.format, "source": catalog.source.path, "split": catalog.source.split ?? "",
            "items": String(catalog.count), "levels": levels.map(String.init).joined(separator: ","),
            "channels": String(channels), "crop": options.crop.rawValue, "margin": String(options.margin),
            "zstd-level": String(options.zstdLevel), "filter": options.filter.name,
            "dictionary": String(options.dictionary), "shards": String(options.shards),
            "max-pixels": String(options.maxPixels),
        ]
    }

    // MARK: - Output directory

    /// Decides what to do with the output directory; returns the state to resume from, if any.
    private func prepareOutput() throws -> BuildState? {
        let fm = FileManager.default
        let path = output.path
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw BuildError.output(path: path, reason: "exists and is not a directory") }
            let names = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            let complete = names.contains(Manifest.fileName)
            let interrupted = names.contains(BuildState.fileName)
            let ours = Set(names).subtracting([Manifest.fileName, BuildState.fileName, BuildReport.fileName])
                .allSatisfy { $0.hasPrefix("shard-") || $0.hasPrefix(".") }
            if !names.isEmpty && !complete && !interrupted {
                throw BuildError.occupiedOutput(path: path, content: .foreignFiles)
            }
            switch options.mode {
            case .overwrite where complete || interrupted:
                guard ours else { throw BuildError.occupiedOutput(path: path, content: .foreignFiles) }
                for name in names { try? fm.removeItem(atPath: (path as NSString).appendingPathComponent(name)) }
            case .resume where complete:
                throw BuildError.occupiedOutput(path: path, content: .completeCache)
            case .resume where interrupted:
                guard let state = BuildState.load(from: output) else {
                    throw BuildError.occupiedOutput(path: path, content: .unreadableState)
                }
                for (key, now) in fingerprint where state.fingerprint[key] != now {
                    throw BuildError.resumeMismatch(option: key, was: state.fingerprint[key] ?? "?", now: now)
                }
                return state
            case .create where complete:
                throw BuildError.occupiedOutput(path: path, content: .completeCache)
            case .create where interrupted:
                throw BuildError.occupiedOutput(path: path, content: .interruptedBuild)
            default: break
            }
        } else {
            try? fm.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            if mkdir(path, 0o755) != 0 {
                throw BuildError.output(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
        if access(path, W_OK) != 0 { throw BuildError.output(path: path, reason: "not writable") }
        return nil
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
        let resumed = try prepareOutput()
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
            let thread = Thread { [catalog, levels, channels, chunks] in
                let renderer = ChunkRenderer(catalog: catalog, options: rendererOptions, channels: channels)
                let encoders = levels.map { RecordEncoder(compressionLevel: rendererOptions.zstdLevel, filter: rendererOptions.filter, dictionary: dictionaries[$0]) }
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

    // MARK: - Work of one chunk (worker threads)

    struct EncodedSample {
        var label: Int
        var records: [[UInt8]]
        var rawBytes: [Int]
        var sums: [UInt64]
        var squares: [UInt64]
        var pixelCount: UInt64
    }

    struct EncodedChunk {
        var samples: [EncodedSample]
        var skipped: [(Int, SkippedItem)]
    }

    static func encodeChunk(_ positions: [Int], renderer: ChunkRenderer, encoders: [RecordEncoder], channels: Int) throws -> EncodedChunk {
        let (rendered, skipped) = try renderer.render(positions)
        var samples: [EncodedSample] = []
        samples.reserveCapacity(rendered.count)
        for sample in rendered {
            var records: [[UInt8]] = []
            var raw: [Int] = []
            for (l, level) in sample.levels.enumerated() {
                records.append(try level.pixels.withUnsafeBytes {
                    try encoders[l].encode(pixels: $0, width: level.width, height: level.height, channels: channels)
                })
                raw.append(level.pixels.count)
            }
            var sums = [UInt64](repeating: 0, count: channels), squares = sums
            let top = sample.levels[0].pixels
            top.withUnsafeBufferPointer { px in
                var i = 0
                while i < px.count {
                    for c in 0..<channels { let v = UInt64(px[i + c]); sums[c] += v; squares[c] += v * v }
                    i += channels
                }
            }
            samples.append(EncodedSample(label: sample.label, records: records, rawBytes: raw, sums: sums,
                                         squares: squares, pixelCount: UInt64(top.count / channels)))
        }
        return EncodedChunk(samples: samples, skipped: skipped)
    }

    // MARK: - Dictionaries

    /// Trains one dictionary per level from evenly spaced source items (the same items for any
    /// number of workers or shards), on the bytes zstd will see (after the filter).
    private func trainDictionaries() throws -> [String: String] {
        let renderer = ChunkRenderer(catalog: catalog, options: options, channels: channels)
        let topBytes = options.storedSide(levels[0]) * options.storedSide(levels[0]) * channels
        let want = min(catalog.count, 4000, max(64, (8 << 20) / max(topBytes, 1)))
        let positions = (0..<want).map { $0 * catalog.count / want }
        var samplesPerLevel = Array(repeating: [[UInt8]](), count: levels.count)
        for start in stride(from: 0, to: positions.count, by: chunkSize) {
            let (rendered, _) = try renderer.render(Array(positions[start..<min(start + chunkSize, positions.count)]))
            for sample in rendered {
                for (l, level) in sample.levels.enumerated() {
                    var bytes = level.pixels
                    if options.filter == .sub {
                        bytes.withUnsafeMutableBytes { RecordFilter.applySub($0, width: level.width, height: level.height, channels: channels) }
                    }
                    samplesPerLevel[l].append(bytes)
                }
            }
        }
        var out: [String: String] = [:]
        for (l, size) in levels.enumerated() {
            if let dict = RecordDictionary.train(samples: samplesPerLevel[l]) { out[String(size)] = Data(dict).base64EncodedString() }
        }
        return out
    }

    // MARK: - Finish

    private func finish(writers: [ShardWriter], progress: [ShardProgress], state: BuildState, seconds: Double,
                        dictionarySeconds: Double, itemsThisRun: Int, resumed: Bool) throws -> BuildReport {
        var skipped = catalog.refused
        for writer in writers {
            for (_, value) in try writer.metaEntries(prefix: "skip/") {
                if let item = try? JSONDecoder().decode(SkippedItem.self, from: Data(value)) { skipped.append(item) }
            }
        }
        var shards: [Manifest.Shard] = []
        var first = 0
        for (k, p) in progress.enumerated() {
            shards.append(Manifest.Shard(name: shardDirectoryName(k), firstIndex: first, count: p.count))
            first += p.count
        }
        let pixels = Double(progress.reduce(UInt64(0)) { $0 + $1.pixels })
        var mean: [Double] = [], std: [Double] = []
        for c in 0..<channels {
            let s = Double(progress.reduce(UInt64(0)) { $0 + $1.sums[c] })
            let q = Double(progress.reduce(UInt64(0)) { $0 + $1.squares[c] })
            let m = pixels > 0 ? s / pixels : 0
            mean.append(m / 255)
            std.append((max(0, q / max(pixels, 1) - m * m)).squareRoot() / 255)
        }
        var histogram = Array(repeating: 0, count: catalog.classes.count)
        for p in progress { for (i, n) in p.labelCounts.enumerated() where i < histogram.count { histogram[i] += n } }
        let count = first
        if count == 0 { throw BuildError.empty(path: catalog.source.path) }
        var levelEntries: [Manifest.Level] = []
        var levelReports: [BuildReport.LevelReport] = []
        for (l, size) in levels.enumerated() {
            let bytes = progress.reduce(0) { $0 + $1.bytes[l] }
            let raw = progress.reduce(0) { $0 + $1.rawBytes[l] }
            let dict = state.dictionaries[String(size)]
            levelEntries.append(Manifest.Level(size: size, storedShortSide: options.storedSide(size), bytes: bytes, rawBytes: raw, dictionary: dict))
            levelReports.append(.init(size: size, storedShortSide: options.storedSide(size), bytes: bytes, rawBytes: raw,
                                      bytesPerSample: Double(bytes) / Double(count), compressionRatio: Double(raw) / Double(max(bytes, 1)),
                                      dictionaryBytes: dict.flatMap { Data(base64Encoded: $0)?.count } ?? 0))
        }
        let total = state.priorSeconds + seconds
        let report = BuildReport(
            source: catalog.source.path, format: catalog.source.format, output: output.path, sourceItems: catalog.count,
            samplesWritten: count, skippedCount: skipped.count, skipped: skipped, levels: levelReports,
            workers: options.workers, shards: options.shards, seconds: seconds, totalSeconds: total,
            dictionarySeconds: dictionarySeconds, itemsPerSecond: Double(itemsThisRun) / max(seconds, 1e-9), resumed: resumed)
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(report), to: output.appendingPathComponent(BuildReport.fileName))

        var recorded = recordedOptions
        recorded["buildID"] = state.buildID
        let formatter = ISO8601DateFormatter()
        let manifest = Manifest(
            toolVersion: toolVersion, createdAt: formatter.string(from: Date()), source: catalog.source,
            classes: catalog.classes, sampleCount: count, channels: channels, levels: levelEntries,
            shape: .init(crop: options.crop.rawValue, margin: options.margin),
            codec: .init(level: options.zstdLevel, filter: options.filter.name), shards: shards, mean: mean, std: std,
            labelHistogram: histogram, skipped: skipped.count, buildOptions: recorded, buildSeconds: total)
        try manifest.write(to: output)
        try? FileManager.default.removeItem(at: output.appendingPathComponent(BuildState.fileName))
        return report
    }
}

/// Hands chunk numbers to workers (at most `window` ahead of the committer) and results back in order.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private let count: Int
    private let window: Int
    private var nextToTake = 0
    private var nextToCommit = 0
    private var stopped = false
    private var results: [Int: Result<Builder.EncodedChunk, Error>] = [:]

    init(count: Int, window: Int) { self.count = count; self.window = window }

    /// The next chunk to work on, or nil when there is none or the build stopped.
    func take() -> Int? {
        condition.lock(); defer { condition.unlock() }
        while !stopped && nextToTake < count && nextToTake - nextToCommit >= window { condition.wait() }
        guard !stopped, nextToTake < count else { return nil }
        nextToTake += 1
        return nextToTake - 1
    }

    func put(_ id: Int, _ result: Result<Builder.EncodedChunk, Error>) {
        condition.lock(); results[id] = result; condition.broadcast(); condition.unlock()
    }

    /// Waits for chunk `id`; nil if `isCancelled` turns true first.
    func result(_ id: Int, isCancelled: () -> Bool) -> Result<Builder.EncodedChunk, Error>? {
        condition.lock(); defer { condition.unlock() }
        while results[id] == nil {
            if isCancelled() { return nil }
            _ = condition.wait(until: Date().addingTimeInterval(0.05))
        }
        if isCancelled() { return nil }
        nextToCommit = id + 1
        condition.broadcast()
        return results.removeValue(forKey: id)
    }

    func stop() { condition.lock(); stopped = true; condition.broadcast(); condition.unlock() }
}
