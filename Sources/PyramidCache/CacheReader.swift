import CLMDB
import Foundation

/// Opens a finished cache for reading.
///
/// Opening checks the manifest version and that every shard matches the manifest (its identity,
/// its levels and its record counts), so a mismatch is reported once, naming the shard, instead
/// of surfacing as odd samples later. A `CacheReader` is thread-safe; each reading thread makes its
/// own ``ReadSession`` with ``makeSession()``.
///
/// `@unchecked Sendable`: every stored property is immutable after `init`; the LMDB environments
/// are opened `MDB_NOTLS` and only read, each thread through its own read transaction.
public final class CacheReader: @unchecked Sendable {
    /// The cache directory.
    public let url: URL
    /// The decoded manifest.
    public let manifest: Manifest

    struct OpenShard {
        let env: LMDBEnvironment
        let info: Manifest.Shard
        let levelDBs: [Int: MDB_dbi]
        let labelsDB: MDB_dbi
        let metaDB: MDB_dbi
    }

    /// Shards by number; nil for a shard this reader was not asked to open.
    let shards: [OpenShard?]
    let dictionaries: [Int: RecordDictionary]
    let filter: RecordHeader.Filter
    /// Each level's codec, by size.
    let codecs: [Int: LevelCodec]

    /// Opens the cache at `url`: every shard, or only shard `onlyShard` (the others then throw
    /// ``CacheError/shardMismatch(path:reason:)`` when read).
    /// - Throws: ``CacheError/missingManifest(path:)``, ``CacheError/unsupportedVersion(path:found:supported:)``,
    ///   ``CacheError/shardMismatch(path:reason:)``, ``CacheError/truncatedFile(path:size:expected:)`` and LMDB
    ///   errors, each naming the file.
    public init(url: URL, onlyShard: Int? = nil) throws {
        self.url = url
        manifest = try Manifest.load(from: url)
        guard manifest.codec.name == "zstd", let filter = RecordHeader.Filter(name: manifest.codec.filter) else {
            throw CacheError.invalidManifest(path: url.appendingPathComponent(Manifest.fileName).path,
                                             reason: "unknown codec \(manifest.codec.name) with filter \(manifest.codec.filter)")
        }
        self.filter = filter
        codecs = Dictionary(uniqueKeysWithValues: manifest.levels.map { ($0.size, $0.levelCodec) })
        var opened: [OpenShard?] = []
        for (number, shard) in manifest.shards.enumerated() {
            guard onlyShard == nil || onlyShard == number else { opened.append(nil); continue }
            opened.append(try Self.openShard(url.appendingPathComponent(shard.name), number: number, shard: shard, manifest: manifest))
        }
        shards = opened
        var dicts: [Int: RecordDictionary] = [:]
        for level in manifest.levels {
            if let bytes = level.dictionaryBytes {
                dicts[level.size] = try RecordDictionary(bytes: bytes, compressionLevel: Int32(manifest.codec.level))
            }
        }
        dictionaries = dicts
    }

    private static func openShard(_ dir: URL, number: Int, shard: Manifest.Shard, manifest: Manifest) throws -> OpenShard {
        let path = dir.path
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("data.mdb").path) else {
            throw CacheError.shardMismatch(path: path, reason: "data.mdb is missing")
        }
        let env = try LMDBEnvironment(path: path, readOnly: true, maxDatabases: manifest.levels.count + 2, mapSize: 0)
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(env.env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin", path)
        // Database handles opened in a transaction survive only if it commits (an abort closes them).
        var committed = false
        defer { if !committed { mdb_txn_abort(txn) } }
        func open(_ name: String) throws -> MDB_dbi {
            var dbi: MDB_dbi = 0
            let rc = mdb_dbi_open(txn, name, 0, &dbi)
            if rc == MDB_NOTFOUND { throw CacheError.shardMismatch(path: path, reason: "no database \(name)") }
            try lmdbCheck(rc, "mdb_dbi_open(\(name))", path)
            var stat = MDB_stat()
            try lmdbCheck(mdb_stat(txn, dbi, &stat), "mdb_stat", path)
            if name != ShardDatabase.meta && stat.ms_entries != shard.count {
                throw CacheError.shardMismatch(path: path, reason: "\(name) holds \(stat.ms_entries) records, the manifest says \(shard.count)")
            }
            return dbi
        }
        var levelDBs: [Int: MDB_dbi] = [:]
        for level in manifest.levels { levelDBs[level.size] = try open(level.databaseName) }
        let labelsDB = try open(ShardDatabase.labels)
        let metaDB = try open(ShardDatabase.meta)
        // The shard's own description must agree with the manifest.
        var key = Array(ShardInfo.metaKey.utf8)
        let info: ShardInfo? = key.withUnsafeMutableBytes { kb in
            var k = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress); var v = MDB_val()
            guard mdb_get(txn, metaDB, &k, &v) == MDB_SUCCESS else { return nil }
            return try? JSONDecoder().decode(ShardInfo.self, from: Data(bytes: v.mv_data, count: v.mv_size))
        }
        guard let info else { throw CacheError.shardMismatch(path: path, reason: "no shard description in its meta database") }
        guard info.formatVersion == manifest.formatVersion else {
            throw CacheError.unsupportedVersion(path: path, found: info.formatVersion, supported: manifest.formatVersion)
        }
        let expected = manifest.buildOptions["buildID"]
        if info.number != number || info.firstIndex != shard.firstIndex || info.count != shard.count
            || info.levels != manifest.levelSizes || info.channels != manifest.channels
            || (expected != nil && info.buildID != expected) {
            throw CacheError.shardMismatch(
                path: path,
                reason: "shard says number \(info.number), indices \(info.firstIndex)..<\(info.firstIndex + info.count), levels \(info.levels), build \(info.buildID); manifest says number \(number), indices \(shard.firstIndex)..<\(shard.firstIndex + shard.count), levels \(manifest.levelSizes), build \(expected ?? "?")")
        }
        committed = true
        try lmdbCheck(mdb_txn_commit(txn), "mdb_txn_commit", path)
        return OpenShard(env: env, info: shard, levelDBs: levelDBs, labelsDB: labelsDB, metaDB: metaDB)
    }

    /// Shard `number`, open.
    func shard(_ number: Int) throws -> OpenShard {
        guard let s = shards[number] else {
            throw CacheError.shardMismatch(path: url.appendingPathComponent(manifest.shards[number].name).path, reason: "not opened by this reader")
        }
        return s
    }

    /// Makes a reading context for one thread.
    public func makeSession() -> ReadSession { ReadSession(reader: self) }

    /// All labels, indexed by sample index.
    /// - Complexity: O(samples); reads the small `labels` databases only.
    public func labels() throws -> [Int32] {
        let session = makeSession()
        var out = [Int32](repeating: -1, count: manifest.sampleCount)
        for (number, open) in shards.enumerated() {
            guard let open else { continue }  // a shard this reader did not open
            try session.forEach(shard: number, database: open.labelsDB) { index, value in
                guard index >= 0, index < out.count, value.count == 4 else {
                    throw CacheError.corruptRecord(shard: number, index: index, level: 0, reason: "bad label entry")
                }
                out[index] = value.loadUnaligned(as: Int32.self).littleEndian
            }
        }
        return out
    }
}

/// A single thread's view of a cache: long-lived read transactions and a decoder (zstd or TurboJPEG
/// context) per level.
///
/// Not thread-safe: make one per thread with ``CacheReader/makeSession()``. Records are decompressed
/// straight from LMDB's memory map into the caller's buffer; nothing else is copied.
public final class ReadSession {
    /// The reader this session reads from.
    public let reader: CacheReader
    private var txns: [OpaquePointer?]
    private var decoders: [Int: RecordDecoder] = [:]

    init(reader: CacheReader) {
        self.reader = reader
        txns = Array(repeating: nil, count: reader.shards.count)
    }

    deinit { for t in txns where t != nil { mdb_txn_abort(t) } }

    private func txn(_ shard: Int) throws -> OpaquePointer? {
        if let t = txns[shard] { return t }
        var t: OpaquePointer?
        let s = try reader.shard(shard)
        try lmdbCheck(mdb_txn_begin(s.env.env, nil, UInt32(MDB_RDONLY), &t), "mdb_txn_begin", s.env.path)
        txns[shard] = t
        return t
    }

    private func decoder(_ level: Int) -> RecordDecoder {
        if let d = decoders[level] { return d }
        let d = RecordDecoder(codec: reader.codecs[level] ?? .zstd, dictionary: reader.dictionaries[level], filter: reader.filter,
                              recordVersion: UInt8(reader.manifest.formatVersion))
        decoders[level] = d
        return d
    }

    private func locate(_ index: Int, _ level: Int) throws -> (shard: Int, dbi: MDB_dbi) {
        guard let shard = reader.manifest.shardNumber(of: index) else {
            throw CacheError.indexOutOfRange(index: index, count: reader.manifest.sampleCount)
        }
        guard let dbi = try reader.shard(shard).levelDBs[level] else {
            throw CacheError.unknownLevel(level: level, available: reader.manifest.levelSizes)
        }
        return (shard, dbi)
    }

    /// Calls `body` with the stored bytes of a record (header, payload and, in version 2, checksum),
    /// valid only inside `body`.
    public func withRecord<R>(index: Int, level: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let (shard, dbi) = try locate(index, level)
        let t = try txn(shard)
        var value = MDB_val()
        let rc = withIndexKey(index) { key in mdb_get(t, dbi, &key, &value) }
        if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: shard, index: index, level: level) }
        try lmdbCheck(rc, "mdb_get", try reader.shard(shard).env.path)
        return try body(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }

    /// The header of a record, without decompressing it.
    public func header(index: Int, level: Int) throws -> RecordHeader {
        let shard = reader.manifest.shardNumber(of: index) ?? -1
        return try withRecord(index: index, level: level) { bytes in
            switch RecordDecoder.header(of: bytes) {
            case .success(let h): return h
            case .failure(let f): throw CacheError.corruptRecord(shard: shard, index: index, level: level, reason: f.reason)
            }
        }
    }

    /// The header of a record when its pixels would not fit in `capacity` bytes, nil when they fit
    /// (or when the cache's levels are square and `capacity` holds a stored square: no lookup then).
    public func header(index: Int, level: Int, ifLargerThan capacity: Int) throws -> RecordHeader? {
        if reader.manifest.shape.square, let l = try? reader.manifest.level(level),
           l.storedShortSide * l.storedShortSide * reader.manifest.channels <= capacity {
            return nil
        }
        let h = try header(index: index, level: level)
        return h.pixelCount > capacity ? h : nil
    }

    /// Decodes sample `index` at `level` into `destination` (interleaved HWC, 8 bits per channel).
    /// - Returns: the record header (its width, height and channels give the shape written).
    /// - Throws: ``CacheError/corruptRecord(shard:index:level:reason:)`` when the checksum, header or size is wrong.
    public func read(index: Int, level: Int, into destination: UnsafeMutableRawBufferPointer) throws -> RecordHeader {
        let shard = reader.manifest.shardNumber(of: index) ?? -1
        let channels = reader.manifest.channels
        let decoder = decoder(level)
        return try withRecord(index: index, level: level) { bytes in
            switch decoder.decode(bytes, into: destination) {
            case .success(let h):
                guard h.channels == channels else {
                    throw CacheError.corruptRecord(shard: shard, index: index, level: level, reason: "record has \(h.channels) channels, the cache \(channels)")
                }
                return h
            case .failure(let f):
                throw CacheError.corruptRecord(shard: shard, index: index, level: level, reason: f.reason)
            }
        }
    }

    /// Decodes sample `index` at `level` into a new array. Convenient; ``read(index:level:into:)`` avoids the allocation.
    public func image(index: Int, level: Int) throws -> (header: RecordHeader, pixels: [UInt8]) {
        let h = try header(index: index, level: level)
        var pixels = [UInt8](repeating: 0, count: h.pixelCount)
        let header = try pixels.withUnsafeMutableBytes { try read(index: index, level: level, into: $0) }
        return (header, pixels)
    }

    /// The label of sample `index`.
    public func label(of index: Int) throws -> Int {
        guard let shard = reader.manifest.shardNumber(of: index) else {
            throw CacheError.indexOutOfRange(index: index, count: reader.manifest.sampleCount)
        }
        let t = try txn(shard)
        var value = MDB_val()
        let labelsDB = try reader.shard(shard).labelsDB
        let rc = withIndexKey(index) { key in mdb_get(t, labelsDB, &key, &value) }
        if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: shard, index: index, level: 0) }
        try lmdbCheck(rc, "mdb_get", try reader.shard(shard).env.path)
        guard value.mv_size == 4 else { throw CacheError.corruptRecord(shard: shard, index: index, level: 0, reason: "label of \(value.mv_size) bytes") }
        return Int(UnsafeRawBufferPointer(start: value.mv_data, count: 4).loadUnaligned(as: Int32.self).littleEndian)
    }

    /// Walks a database of a shard in key order.
    func forEach(shard: Int, database: MDB_dbi, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let t = try txn(shard)
        let path = try reader.shard(shard).env.path
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(t, database, &cursor), "mdb_cursor_open", path)
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val(), value = MDB_val()
        var rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
        while rc == MDB_SUCCESS {
            try body(indexFromKey(key) ?? -1, UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
            rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { try lmdbCheck(rc, "mdb_cursor_get", path) }
    }

    /// Walks one level of one shard in index order, handing each record's stored bytes to `body`.
    public func forEachRecord(shard: Int, level: Int, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        guard let dbi = try reader.shard(shard).levelDBs[level] else {
            throw CacheError.unknownLevel(level: level, available: reader.manifest.levelSizes)
        }
        try forEach(shard: shard, database: dbi, body)
    }

    /// Decoder for `level`, for callers that walk records with ``forEachRecord(shard:level:_:)``.
    public func recordDecoder(level: Int) -> RecordDecoder { decoder(level) }
}
