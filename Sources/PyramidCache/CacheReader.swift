import CLMDB
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Synchronization

/// Opens a finished cache for reading.
///
/// Opening checks the manifest version and that every shard file matches the manifest (its
/// identity, its levels and its record counts), so a mismatch is reported once, naming the file,
/// instead of surfacing as odd samples later. A version 3 cache's level files are opened (and
/// checked) when a level is first read: a run at one size never opens another level's file. A
/// `CacheReader` is thread-safe; each reading thread makes its own ``ReadSession`` with
/// ``makeSession()``.
///
/// `@unchecked Sendable`: the stored properties are immutable after `init` or behind a `Mutex`;
/// the LMDB environments are opened `MDB_NOTLS` and only read, each thread through its own read
/// transaction.
public final class CacheReader: @unchecked Sendable {
    /// The cache directory.
    public let url: URL
    /// The decoded manifest.
    public let manifest: Manifest

    /// One open shard file (see ``Manifest/files``) and its databases by name.
    final class OpenFile: @unchecked Sendable {
        let env: LMDBEnvironment
        let dbs: [String: MDB_dbi]
        /// A packed level file's pack table (``LevelPack``); nil: one record per key.
        let packs: LevelPack.Table?
        init(env: LMDBEnvironment, dbs: [String: MDB_dbi], packs: LevelPack.Table?) { self.env = env; self.dbs = dbs; self.packs = packs }
    }

    /// ``Manifest/files`` once.
    let files: [Manifest.CacheFile]
    /// The only shard this reader reads, when it was asked to (`pyramid verify`'s children).
    private let onlyShard: Int?
    /// A local cache's files opened so far, by file id.
    private let local: Mutex<[Int: OpenFile]>
    /// Where a remote cache's files come from; nil for a local cache.
    public let store: (any ShardStore)?
    /// A remote cache's open files and how many holders each has, by file id.
    private let remoteFiles: Mutex<[RemoteFile]>
    struct RemoteFile { var open: OpenFile?; var pins = 0 }
    let dictionaries: [Int: RecordDictionary]
    let filter: RecordHeader.Filter
    /// Each level's codec, by size.
    let codecs: [Int: LevelCodec]
    private let recordBytes = Atomic<Int>(0)
    /// Record bytes read through this reader's sessions so far (every level, all threads).
    public var bytesRead: Int { recordBytes.load(ordering: .relaxed) }
    func countRead(_ bytes: Int) { recordBytes.add(bytes, ordering: .relaxed) }

    /// Opens the cache at `url`: every shard, or only shard `onlyShard` (the others then throw
    /// ``CacheError/shardMismatch(path:reason:)`` when read).
    /// - Throws: ``CacheError/missingManifest(path:)``, ``CacheError/unsupportedVersion(path:found:supported:)``,
    ///   ``CacheError/shardMismatch(path:reason:)``, ``CacheError/truncatedFile(path:size:expected:)`` and LMDB
    ///   errors, each naming the file.
    public convenience init(url: URL, onlyShard: Int? = nil) throws {
        try self.init(url: url, onlyShard: onlyShard, store: nil)
    }

    /// Opens the local copy at `url` of a remote cache whose files `store` fetches: no file is
    /// opened until it is pinned (``pin(_:)``) or read.
    public convenience init(url: URL, store: any ShardStore) throws {
        try self.init(url: url, onlyShard: nil, store: store)
    }

    private init(url: URL, onlyShard: Int?, store: (any ShardStore)?) throws {
        self.url = url
        self.store = store
        self.onlyShard = onlyShard
        manifest = try Manifest.load(from: url)
        files = manifest.files
        local = Mutex([:])
        remoteFiles = Mutex(Array(repeating: RemoteFile(), count: files.count))
        guard manifest.codec.name == "zstd", let filter = RecordHeader.Filter(name: manifest.codec.filter) else {
            throw CacheError.invalidManifest(path: url.appendingPathComponent(Manifest.fileName).path,
                                             reason: "unknown codec \(manifest.codec.name) with filter \(manifest.codec.filter)")
        }
        self.filter = filter
        codecs = Dictionary(uniqueKeysWithValues: manifest.levels.map { ($0.size, $0.levelCodec) })
        var dicts: [Int: RecordDictionary] = [:]
        for level in manifest.levels {
            if let bytes = level.dictionaryBytes {
                dicts[level.size] = try RecordDictionary(bytes: bytes, compressionLevel: Int32(manifest.codec.level))
            }
        }
        dictionaries = dicts
        // A local cache's shards are checked now (version 3: their meta.mdb; the level files when read).
        if store == nil {
            for number in manifest.shards.indices where onlyShard == nil || onlyShard == number {
                _ = try file(manifest.metaFileID(shard: number))
            }
        }
    }

    /// Opens and checks file `id` (of ``files``) in the local directory.
    private func openFile(_ id: Int) throws -> OpenFile {
        let file = files[id], shard = manifest.shards[file.shard], v3 = manifest.hasLevelFiles
        let path = url.appendingPathComponent(file.path).path
        let directory = PathName.directory(path)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CacheError.shardMismatch(path: directory, reason: "\(PathName.last(file.path)) is missing")
        }
        // The names this file holds: version 1/2 data.mdb every level, labels and meta; version 3
        // meta.mdb labels and meta, a level file its level and meta.
        let names: [String]
        if let level = file.level { names = [ShardDatabase.level(level), ShardDatabase.meta] }
        else if v3 { names = [ShardDatabase.labels, ShardDatabase.meta] }
        else { names = manifest.levels.map(\.databaseName) + [ShardDatabase.labels, ShardDatabase.meta] }
        // Readahead: see ``ReadAdvice/forLayout(levelFiles:environment:)`` (chosen by measurement).
        let env = try LMDBEnvironment(path: v3 ? path : directory, readOnly: true, maxDatabases: names.count + 1, mapSize: 0,
                                      subdirectory: !v3, advice: ReadAdvice.forLayout(levelFiles: v3))
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(env.env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin", path)
        // Database handles opened in a transaction survive only if it commits (an abort closes them).
        var committed = false
        defer { if !committed { mdb_txn_abort(txn) } }
        var dbs: [String: MDB_dbi] = [:]
        for name in names {
            var dbi: MDB_dbi = 0
            let rc = mdb_dbi_open(txn, name, 0, &dbi)
            if rc == MDB_NOTFOUND { throw CacheError.shardMismatch(path: path, reason: "no database \(name)") }
            try lmdbCheck(rc, "mdb_dbi_open(\(name))", path)
            dbs[name] = dbi
        }
        func meta(_ key: String) -> UnsafeRawBufferPointer? {
            var k = Array(key.utf8)
            return k.withUnsafeMutableBytes { kb in
                var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress); var v = MDB_val()
                guard mdb_get(txn, dbs[ShardDatabase.meta]!, &mk, &v) == MDB_SUCCESS else { return nil }
                return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)  // valid while the transaction is
            }
        }
        // A packed level file (``LevelPack``) holds a key per pack; its table counts the records.
        var packs: LevelPack.Table?
        if file.level != nil, let bytes = meta(LevelPack.metaKey) {
            guard let table = LevelPack.Table(bytes: bytes) else { throw CacheError.shardMismatch(path: path, reason: "its pack table is damaged") }
            packs = table
        }
        for name in names where name != ShardDatabase.meta {
            var stat = MDB_stat()
            try lmdbCheck(mdb_stat(txn, dbs[name]!, &stat), "mdb_stat", path)
            if let packs, stat.ms_entries != packs.starts.count || packs.count != shard.count {
                throw CacheError.shardMismatch(path: path, reason: "\(name) holds \(stat.ms_entries) packs of \(packs.count) records, its table lists \(packs.starts.count) packs, the manifest says \(shard.count) records")
            }
            if packs == nil && stat.ms_entries != shard.count {
                throw CacheError.shardMismatch(path: path, reason: "\(name) holds \(stat.ms_entries) records, the manifest says \(shard.count)")
            }
        }
        // The file's own description of its shard must agree with the manifest.
        let info = meta(ShardInfo.metaKey).flatMap { try? JSONDecoder().decode(ShardInfo.self, from: Data($0)) }
        guard let info else { throw CacheError.shardMismatch(path: path, reason: "no shard description in its meta database") }
        guard info.formatVersion == manifest.formatVersion else {
            throw CacheError.unsupportedVersion(path: path, found: info.formatVersion, supported: manifest.formatVersion)
        }
        let expected = manifest.buildID
        let number = file.shard
        if info.number != number || info.firstIndex != shard.firstIndex || info.count != shard.count
            // A version 3 publication may hold a subset of the build's levels (push --levels).
            || (v3 ? !Set(manifest.levelSizes).isSubset(of: info.levels) : info.levels != manifest.levelSizes)
            || info.channels != manifest.channels
            || (expected != nil && info.buildID != expected) {
            throw CacheError.shardMismatch(
                path: path,
                reason: "shard says number \(info.number), indices \(info.firstIndex)..<\(info.firstIndex + info.count), levels \(info.levels), build \(info.buildID); manifest says number \(number), indices \(shard.firstIndex)..<\(shard.firstIndex + shard.count), levels \(manifest.levelSizes), build \(expected ?? "?")")
        }
        committed = true
        try lmdbCheck(mdb_txn_commit(txn), "mdb_txn_commit", path)
        return OpenFile(env: env, dbs: dbs, packs: packs)
    }

    /// File `id`, open. A local file is opened on first use and kept; a remote file that is not
    /// pinned is fetched and kept to the end.
    func file(_ id: Int) throws -> OpenFile {
        let shard = files[id].shard
        if let onlyShard, shard != onlyShard {
            throw CacheError.shardMismatch(path: url.appendingPathComponent(manifest.shards[shard].name).path, reason: "not opened by this reader")
        }
        guard store != nil else {
            return try local.withLock { table in
                if let f = table[id] { return f }
                let f = try openFile(id)
                table[id] = f
                return f
            }
        }
        if let f = remoteFiles.withLock({ $0[id].open }) { return f }
        try pin([id])  // never unpinned: a one-off read (export, inspect, a substitution)
        guard let f = remoteFiles.withLock({ $0[id].open }) else {
            throw CacheError.shardMismatch(path: url.appendingPathComponent(files[id].path).path, reason: "not opened by this reader")
        }
        return f
    }

    /// The open file and database of `level`'s records in shard `shard`.
    func levelDatabase(shard: Int, level: Int) throws -> (file: OpenFile, id: Int, dbi: MDB_dbi) {
        guard manifest.levels.contains(where: { $0.size == level }) else {
            throw CacheError.unknownLevel(level: level, available: manifest.levelSizes)
        }
        let id = manifest.fileID(shard: shard, level: level)
        let f = try file(id)
        return (f, id, f.dbs[ShardDatabase.level(level)]!)
    }

    /// The open file and database of shard `shard`'s labels.
    func labelsDatabase(shard: Int) throws -> (file: OpenFile, id: Int, dbi: MDB_dbi) {
        let id = manifest.metaFileID(shard: shard)
        let f = try file(id)
        return (f, id, f.dbs[ShardDatabase.labels]!)
    }

    /// The files a read of `levels` in `shards` opens (ids into ``Manifest/files``).
    public func files(shards: some Collection<Int>, levels: Set<Int>) -> [Int] {
        var ids = Set<Int>()
        for s in shards {
            if manifest.hasLevelFiles { for l in levels { ids.insert(manifest.fileID(shard: s, level: l)) } } else { ids.insert(s) }
        }
        return ids.sorted()
    }

    /// True for a remote cache (files fetched by ``store``).
    public var isRemote: Bool { store != nil }

    /// Makes remote files `ids` (of ``Manifest/files``) local and open, and keeps them so until
    /// ``unpin(_:)`` (waits for downloads). Nothing for a local cache.
    /// - Throws: ``RemoteError`` when a file cannot be fetched, and the checks of opening it.
    public func pin(_ ids: some Collection<Int>) throws {
        guard let store else { return }
        var done: [Int] = []
        do {
            for n in ids {
                try store.acquire(n)
                done.append(n)
                try remoteFiles.withLock { table in
                    if table[n].open == nil { table[n].open = try openFile(n) }
                    table[n].pins += 1
                }
            }
        } catch {
            unpin(done)
            throw error
        }
    }

    /// Ends one ``pin(_:)`` of each file. A file nobody holds is closed and may be evicted.
    /// Sessions must not hold reads on them (``ReadSession/endReads()``).
    public func unpin(_ ids: some Collection<Int>) {
        guard let store else { return }
        for n in ids {
            remoteFiles.withLock { table in
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
        for number in manifest.shards.indices where onlyShard == nil || onlyShard == number {
            try session.forEach(file: try labelsDatabase(shard: number)) { index, value in
                guard index >= 0, index < out.count, value.count == 4 else {
                    throw CacheError.corruptRecord(shard: number, index: index, level: 0, reason: "bad label entry")
                }
                out[index] = value.loadUnaligned(as: Int32.self).littleEndian
            }
        }
        return out
    }
}
