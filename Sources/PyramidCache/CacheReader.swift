import CLMDB
import Foundation
import Synchronization

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

    /// Shards by number; nil for a shard this reader was not asked to open (or, for a remote
    /// cache, every shard: those are opened while fetched, in `remoteShards`).
    let shards: [OpenShard?]
    /// Where a remote cache's shards come from; nil for a local cache.
    public let store: (any ShardStore)?
    /// A remote cache's open shards and how many holders each has.
    private let remoteShards: Mutex<[RemoteShard]>
    struct RemoteShard { var open: OpenShard?; var pins = 0 }
    let dictionaries: [Int: RecordDictionary]
    let filter: RecordHeader.Filter
    /// Each level's codec, by size.
    let codecs: [Int: LevelCodec]

    /// Opens the cache at `url`: every shard, or only shard `onlyShard` (the others then throw
    /// ``CacheError/shardMismatch(path:reason:)`` when read).
    /// - Throws: ``CacheError/missingManifest(path:)``, ``CacheError/unsupportedVersion(path:found:supported:)``,
    ///   ``CacheError/shardMismatch(path:reason:)``, ``CacheError/truncatedFile(path:size:expected:)`` and LMDB
    ///   errors, each naming the file.
    public convenience init(url: URL, onlyShard: Int? = nil) throws {
        try self.init(url: url, onlyShard: onlyShard, store: nil)
    }

    /// Opens the local copy at `url` of a remote cache whose shards `store` fetches: no shard is
    /// opened until it is pinned (``pin(_:)``) or read.
    public convenience init(url: URL, store: any ShardStore) throws {
        try self.init(url: url, onlyShard: nil, store: store)
    }

    private init(url: URL, onlyShard: Int?, store: (any ShardStore)?) throws {
        self.url = url
        self.store = store
        manifest = try Manifest.load(from: url)
        remoteShards = Mutex(Array(repeating: RemoteShard(), count: manifest.shards.count))
        guard manifest.codec.name == "zstd", let filter = RecordHeader.Filter(name: manifest.codec.filter) else {
            throw CacheError.invalidManifest(path: url.appendingPathComponent(Manifest.fileName).path,
                                             reason: "unknown codec \(manifest.codec.name) with filter \(manifest.codec.filter)")
        }
        self.filter = filter
        codecs = Dictionary(uniqueKeysWithValues: manifest.levels.map { ($0.size, $0.levelCodec) })
        var opened: [OpenShard?] = []
        for (number, shard) in manifest.shards.enumerated() {
            guard store == nil, onlyShard == nil || onlyShard == number else { opened.append(nil); continue }
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

    /// Shard `number`, open. A remote shard that is not pinned is fetched and kept to the end.
    func shard(_ number: Int) throws -> OpenShard {
        if let s = shards[number] { return s }
        guard store != nil else {
            throw CacheError.shardMismatch(path: url.appendingPathComponent(manifest.shards[number].name).path, reason: "not opened by this reader")
        }
        if let s = remoteShards.withLock({ $0[number].open }) { return s }
        try pin([number])  // never unpinned: a one-off read (export, inspect, a substitution)
        guard let s = remoteShards.withLock({ $0[number].open }) else {
            throw CacheError.shardMismatch(path: url.appendingPathComponent(manifest.shards[number].name).path, reason: "not opened by this reader")
        }
        return s
    }

    /// True for a remote cache (shards fetched by ``store``).
    public var isRemote: Bool { store != nil }

    /// Makes remote shards `numbers` local and open, and keeps them so until ``unpin(_:)``
    /// (waits for downloads). Nothing for a local cache.
    /// - Throws: ``RemoteError`` when a shard cannot be fetched, and the checks of opening a shard.
    public func pin(_ numbers: some Collection<Int>) throws {
        guard let store else { return }
        var done: [Int] = []
        do {
            for n in numbers {
                try store.acquire(n)
                done.append(n)
                try remoteShards.withLock { table in
                    if table[n].open == nil {
                        let info = manifest.shards[n]
                        table[n].open = try Self.openShard(url.appendingPathComponent(info.name), number: n, shard: info, manifest: manifest)
                    }
                    table[n].pins += 1
                }
            }
        } catch {
            unpin(done)
            throw error
        }
    }

    /// Ends one ``pin(_:)`` of each shard. A shard nobody holds is closed and may be evicted.
    /// Sessions must not hold reads on them (``ReadSession/endReads()``).
    public func unpin(_ numbers: some Collection<Int>) {
        guard let store else { return }
        for n in numbers {
            remoteShards.withLock { table in
                // A pin whose open failed never counted.
                guard table[n].pins > 0 else { return }
                table[n].pins -= 1
                if table[n].pins == 0 { table[n].open = nil }
            }
            store.release(n)
        }
    }

    /// Makes a reading context for one thread.
    public func makeSession() -> ReadSession { ReadSession(reader: self) }

    /// All labels, indexed by sample index.
    /// - Complexity: O(samples); reads the small `labels` databases only.
    public func labels() throws -> [Int32] {
        if let store { return try store.labels() }
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
    /// The shards this session reads (kept open by the session while it reads them).
    private var opened: [CacheReader.OpenShard?]
    private var decoders: [Int: RecordDecoder] = [:]

    init(reader: CacheReader) {
        self.reader = reader
        txns = Array(repeating: nil, count: reader.manifest.shards.count)
        opened = Array(repeating: nil, count: reader.manifest.shards.count)
    }

    deinit { endReads() }

    /// Ends this session's reads, so that a remote cache's shards can be closed and evicted
    /// (the next read starts new ones).
    public func endReads() {
        for (i, t) in txns.enumerated() where t != nil { mdb_txn_abort(t); txns[i] = nil }
        for i in opened.indices { opened[i] = nil }
    }

    private func shard(_ number: Int) throws -> CacheReader.OpenShard {
        if let s = opened[number] { return s }
        let s = try reader.shard(number)
        opened[number] = s
        return s
    }

    private func txn(_ shard: Int) throws -> OpaquePointer? {
        if let t = txns[shard] { return t }
        var t: OpaquePointer?
        let s = try self.shard(shard)
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
        guard let dbi = try self.shard(shard).levelDBs[level] else {
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
        if rc != 0 {
            // A failed get (damaged pages) leaves its transaction unusable (MDB_BAD_TXN for every
            // later read): end it, so the next read of this shard starts afresh.
            mdb_txn_abort(t)
            txns[shard] = nil
        }
        try lmdbCheck(rc, "mdb_get", try self.shard(shard).env.path)
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
        let labelsDB = try self.shard(shard).labelsDB
        let rc = withIndexKey(index) { key in mdb_get(t, labelsDB, &key, &value) }
        if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: shard, index: index, level: 0) }
        try lmdbCheck(rc, "mdb_get", try self.shard(shard).env.path)
        guard value.mv_size == 4 else { throw CacheError.corruptRecord(shard: shard, index: index, level: 0, reason: "label of \(value.mv_size) bytes") }
        return Int(UnsafeRawBufferPointer(start: value.mv_data, count: 4).loadUnaligned(as: Int32.self).littleEndian)
    }

    /// Walks a database of a shard in key order.
    func forEach(shard: Int, database: MDB_dbi, _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let t = try txn(shard)
        let path = try self.shard(shard).env.path
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
        guard let dbi = try self.shard(shard).levelDBs[level] else {
            throw CacheError.unknownLevel(level: level, available: reader.manifest.levelSizes)
        }
        try forEach(shard: shard, database: dbi, body)
    }

    /// Decoder for `level`, for callers that walk records with ``forEachRecord(shard:level:_:)``.
    public func recordDecoder(level: Int) -> RecordDecoder { decoder(level) }
}
