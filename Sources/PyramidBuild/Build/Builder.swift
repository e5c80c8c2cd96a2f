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
    public var toolVersion = pyramidVersion
    /// When set, a one-process build finishes each shard as soon as its last sample is committed
    /// (its final keys and shard description: every earlier shard's count is known by then) and
    /// calls this with its number, on the committing thread; the shard file does not change
    /// afterwards. Under mpirun shards are finished at the end and this is not called.
    public var shardFinished: ((Int) -> Void)?
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
            "format-version": String(options.formatVersion), "keys": "source-position",
        ]
    }

    /// Shards for about `bytesPerShard` bytes each, from an estimate of the cache's size: the raw
    /// pixels of every level (square stored sides), halved for zstd levels, a tenth for JPEG levels
    /// (what Fashion-MNIST and photos compress to, within 2x). At most 4096.
    public static func shardCount(catalog: SourceCatalog, options: BuildOptions, bytesPerShard: Int) -> Int {
        let channels = Double(options.channels ?? catalog.naturalChannels)
        let codecs = options.levelCodecs(photoSource: catalog.isPhotoSource)
        let levels = options.sortedLevels
        var perSample = 0.0
        for (i, level) in levels.enumerated() {
            let side = Double(options.storedSide(level))
            let ratio = i < codecs.count && codecs[i] != .zstd ? 0.1 : 0.5
            perSample += side * side * channels * ratio
        }
        let total = perSample * Double(min(catalog.count, options.limit ?? Int.max))
        return max(1, min(4096, Int((total / Double(max(bytesPerShard, 1))).rounded(.up))))
    }

    /// The shard count of the interrupted build in `output`, if there is one.
    public static func interruptedShardCount(at output: URL) -> Int? {
        BuildState.load(from: output)?.fingerprint["shards"].flatMap { Int($0) }
    }

    // MARK: - Run

    /// Runs the build, alone or as one rank of `group` (`mpirun -np N pyramid build`).
    ///
    /// With several ranks, rank `r` builds the shards `k` with `k mod N = r` (a rank without a
    /// shard only waits), rank 0 alone prepares the output directory, trains the dictionaries and
    /// writes the manifest after every rank has finished, and the records are byte-identical to a
    /// one-process build with the same shards. While a shard is built its records are keyed from
    /// its first source position, which every rank knows in advance; at the end, once every
    /// shard's count is known, each rank renumbers its shards' keys to their sample indices (no
    /// work unless an earlier shard skipped items).
    /// - Parameters:
    ///   - group: the processes of the build (`SingleProcess` alone).
    ///   - progress: called on rank 0 after every commit (and while waiting for the other ranks),
    ///     with the counts of every rank.
    ///   - isCancelled: polled between commits; when it returns true the build stops after the
    ///     current commit and throws ``BuildError/interrupted(committed:total:output:)``.
    /// - Returns: the report (rank 0 writes it to `build-report.json`; every rank returns it).
    /// - Throws: rank 0's errors; on the other ranks ``BuildError/peerFailed(rank:)`` when rank 0
    ///   could not start the build.
    public func run(group: ProcessGroup = SingleProcess(), progress: (BuildProgress) -> Void = { _ in },
                    isCancelled: @escaping () -> Bool = { false }) throws -> BuildReport {
        try Vips.start()
        let started = Date()
        if options.strict, let first = catalog.refused.first { throw BuildError.badInput(path: first.path, reason: first.reason) }
        if catalog.count == 0 { throw BuildError.empty(path: catalog.source.path) }

        // Rank 0 prepares the directory (lock, mode, dictionaries) and hands the state to every rank.
        var lock: DirectoryLock?
        defer { withExtendedLifetime(lock) {} }
        let setup: Result<(state: BuildState, resumed: Bool, dictionarySeconds: Double), Error> = group.isRoot
            ? Result { try prepare(lock: &lock, progress: progress) } : .failure(BuildError.peerFailed(rank: 0))
        let shared = try shareSetup(setup, group: group)
        var state = shared.state
        var shards = try openShards(rank: group.rank, of: group.size)
        let chunks = pendingChunks(shards)
        let doneBefore = shards.reduce(0) { $0 + $1.progress.cursor - $1.range.lowerBound }
        var tally = RankTally(items: shards.reduce(0) { $0 + $1.range.count }, processed: doneBefore, processedBefore: doneBefore,
                              written: shards.reduce(0) { $0 + $1.progress.count },
                              skipped: shards.reduce(0) { $0 + $1.progress.skipped })
        var board = ProgressBoard(ranks: group.size, total: catalog.count)
        func report(finished: Bool = false) {
            if group.isRoot {
                board.update(rank: 0, tally, finished: finished)
                for (rank, values) in group.collectPosts() { board.update(rank: rank, values) }
                progress(board.progress)
            } else {
                group.post(tally.values(finished: finished))
            }
        }
        report()

        // Workers render and encode; this thread commits in order.
        var finished = Set<Int>()  // shards given their final keys already (shardFinished)
        let queue = ChunkQueue(count: chunks.count, window: options.workers * 2 + 2)
        let workers = startWorkers(chunks: chunks.map(\.range), dictionaries: try dictionaries(of: state), queue: queue)
        defer { queue.stop(); workers.join() }
        for (id, chunk) in chunks.enumerated() {
            guard let result = queue.result(id, isCancelled: isCancelled) else {
                state.priorSeconds += Date().timeIntervalSince(started)
                if group.isRoot { try? state.write(to: output) }
                throw BuildError.interrupted(committed: tally.processed, total: catalog.count, output: output.path)
            }
            let encoded = try result.get()
            if options.strict, let first = encoded.skipped.first { throw BuildError.badInput(path: first.1.path, reason: first.1.reason) }
            try commit(encoded, range: chunk.range, to: &shards[chunk.shard])
            if let shardFinished, group.size == 1, shards[chunk.shard].progress.complete {
                let shard = shards[chunk.shard]
                let first = shards.filter { $0.number < shard.number }.reduce(0) { $0 + $1.progress.count }
                try renumber(shard: shard.number, writer: shard.writer, progress: shard.progress, firstIndex: first, buildID: state.buildID)
                finished.insert(shard.number)
                shardFinished(shard.number)
            }
            tally.processed += chunk.range.count
            tally.written += encoded.samples.count
            tally.skipped += encoded.skipped.count
            report()
        }
        for shard in shards { try shard.writer.sync() }
        report(finished: true)

        // Every shard's count decides where each shard's sample indices start.
        let all = try gatherShards(writers: Dictionary(uniqueKeysWithValues: shards.map { ($0.number, $0.writer) }),
                                   progress: Dictionary(uniqueKeysWithValues: shards.map { ($0.number, $0.progress) }),
                                   group: group, board: &board, progress: progress)
        var firstIndex = Array(repeating: 0, count: options.shards)
        for k in 1..<max(options.shards, 1) { firstIndex[k] = firstIndex[k - 1] + all.progress[k - 1].count }
        for shard in shards where !finished.contains(shard.number) {
            try renumber(shard: shard.number, writer: shard.writer, progress: shard.progress, firstIndex: firstIndex[shard.number], buildID: state.buildID)
        }
        group.barrier()  // every rank's shards are final before the manifest

        var reportBytes: [UInt8] = []
        if group.isRoot {
            let r = try finish(progress: all.progress, skippedItems: all.skipped, warnedItems: all.warned, state: state,
                               seconds: Date().timeIntervalSince(started), dictionarySeconds: shared.dictionarySeconds,
                               itemsThisRun: board.processedThisRun, resumed: shared.resumed, processes: group.size)
            reportBytes = Array(try JSONEncoder().encode(r))
        }
        let bytes = group.broadcast(reportBytes, root: 0)
        return try JSONDecoder().decode(BuildReport.self, from: Data(bytes))
    }

    /// Rank 0's set-up: the output directory locked and checked, and the build's state — an
    /// interrupted build's, or a new one with its trained dictionaries, written to `build-state.json`.
    private func prepare(lock: inout DirectoryLock?, progress: (BuildProgress) -> Void)
        throws -> (state: BuildState, resumed: Bool, dictionarySeconds: Double) {
        let (resumed, l) = try prepareOutput()
        lock = l
        if let resumed { return (resumed, true, 0) }
        let t0 = Date()
        var dictionaries: [String: String] = [:]
        if options.dictionary {
            progress(BuildProgress(phase: "dictionary", processed: 0, total: catalog.count, written: 0, skipped: 0, processedThisRun: 0))
            dictionaries = try trainDictionaries()
        }
        let state = BuildState(buildID: UUID().uuidString, fingerprint: fingerprint, dictionaries: dictionaries, priorSeconds: 0)
        try state.write(to: output)
        return (state, false, Date().timeIntervalSince(t0))
    }

    /// The zstd dictionaries of `state`, by level size.
    private func dictionaries(of state: BuildState) throws -> [Int: RecordDictionary] {
        var dicts: [Int: RecordDictionary] = [:]
        for (key, b64) in state.dictionaries {
            guard let size = Int(key), let data = Data(base64Encoded: b64) else { continue }
            dicts[size] = try RecordDictionary(bytes: [UInt8](data), compressionLevel: Int32(options.zstdLevel))
        }
        return dicts
    }

    /// A shard this rank builds: its number, its source positions, its writer and what it committed.
    struct LocalShard {
        let number: Int
        let range: Range<Int>
        let writer: ShardWriter
        var progress: ShardProgress
    }

    /// This rank's shards (rank r builds shards r, r + N, …), with the progress each committed.
    private func openShards(rank: Int, of ranks: Int) throws -> [LocalShard] {
        let total = catalog.count, count = options.shards
        return try (0..<count).filter { $0 % ranks == rank }.map { k in
            let range = (k * total / count)..<((k + 1) * total / count)
            let writer = try ShardWriter(directory: output.appendingPathComponent(shardDirectoryName(k)), levels: levels,
                                         formatVersion: options.formatVersion)
            let stored = try writer.meta(ShardProgress.metaKey).flatMap { try? JSONDecoder().decode(ShardProgress.self, from: Data($0)) }
            return LocalShard(number: k, range: range, writer: writer,
                              progress: stored ?? ShardProgress(cursor: range.lowerBound, channels: channels, classes: catalog.classes.count,
                                                                levels: levels.count))
        }
    }

    /// The chunks still to do, in source order: (index into `shards`, source positions). A shard
    /// whose items are all done but whose closing commit is not gets one empty chunk.
    private func pendingChunks(_ shards: [LocalShard]) -> [(shard: Int, range: Range<Int>)] {
        var chunks: [(shard: Int, range: Range<Int>)] = []
        for (i, shard) in shards.enumerated() where !shard.progress.complete {
            var start = shard.progress.cursor
            if start == shard.range.upperBound { chunks.append((i, start..<start)) }
            while start < shard.range.upperBound {
                let end = min(start + chunkSize, shard.range.upperBound)
                chunks.append((i, start..<end)); start = end
            }
        }
        return chunks
    }

    /// Starts the threads that render and encode `chunks`, handing each result to `queue`.
    private func startWorkers(chunks: [Range<Int>], dictionaries: [Int: RecordDictionary], queue: ChunkQueue) -> WorkerThreads {
        let options = self.options
        return WorkerThreads(count: min(options.workers, chunks.count), name: "pyramid-build") { [catalog, levels, codecs, channels] _ in
            let renderer = ChunkRenderer(catalog: catalog, options: options, channels: channels)
            let encoders = zip(levels, codecs).map { size, codec in
                RecordEncoder(codec: codec, compressionLevel: options.zstdLevel, filter: options.filter, dictionary: dictionaries[size])
            }
            while let id = queue.take() {
                queue.put(id, Result { try Self.encodeChunk(Array(chunks[id]), renderer: renderer, encoders: encoders, channels: channels) })
            }
            Vips.threadShutdown()
        }
    }

    /// Commits one encoded chunk (source positions `range`) to `shard` in one transaction: its
    /// records and labels, its skipped and warned items, and the shard's updated progress.
    private func commit(_ encoded: EncodedChunk, range: Range<Int>, to shard: inout LocalShard) throws {
        var p = shard.progress
        var batch = ShardWriter.Batch()
        for sample in encoded.samples {
            let key = p.keyBase + p.count
            for (l, record) in sample.records.enumerated() {
                batch.records.append((key, levels[l], record))
                p.bytes[l] += record.count
                p.rawBytes[l] += sample.rawBytes[l]
            }
            batch.labels.append((key, sample.label))
            for c in 0..<channels { p.sums[c] += sample.sums[c]; p.squares[c] += sample.squares[c] }
            p.pixels += sample.pixelCount
            if sample.label < p.labelCounts.count { p.labelCounts[sample.label] += 1 }
            p.count += 1
        }
        for (position, item) in encoded.skipped {
            batch.meta.append((skipKey(position), Array((try? JSONEncoder().encode(item)) ?? Data())))
        }
        for (position, item) in encoded.warned {
            batch.meta.append((warningKey(position), Array((try? JSONEncoder().encode(item)) ?? Data())))
        }
        p.skipped += encoded.skipped.count
        p.cursor = range.upperBound
        p.complete = p.cursor == shard.range.upperBound
        batch.meta.append((ShardProgress.metaKey, p.encoded()))
        try shard.writer.commit(batch)
        shard.progress = p
    }

}
