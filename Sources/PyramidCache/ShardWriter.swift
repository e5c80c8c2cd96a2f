import CLMDB
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Writes one shard. Versions 1 and 2: one LMDB environment (`data.mdb`) with a database per
/// level, `labels` and `meta`. Version 3: `meta.mdb` (`labels`, `meta`) and one environment per
/// level (`level-224.mdb`, opened `MDB_NOSUBDIR`, with the level's database and a `meta` holding
/// the shard's description), so each level can be read, fetched and evicted on its own.
///
/// Every ``commit(_:)`` is one LMDB write transaction per file, the level files first and
/// `meta.mdb` (with the build's progress) last, so the progress never counts a record that is not
/// committed: a killed build leaves each shard at its last recorded commit (a level file may hold
/// records past it, which the resumed build writes again under the same keys). When a map fills,
/// the writer aborts that transaction, doubles the map and writes again.
public final class ShardWriter {
    /// One transaction's worth of writes.
    public struct Batch {
        /// Encoded records: sample index, level size, record bytes.
        public var records: [(index: Int, level: Int, bytes: [UInt8])] = []
        /// Labels by sample index, stored as 4-byte little-endian integers.
        public var labels: [(index: Int, label: Int)] = []
        /// Entries of the `meta` database.
        public var meta: [(key: String, value: [UInt8])] = []
        public init() {}
        public var isEmpty: Bool { records.isEmpty && labels.isEmpty && meta.isEmpty }
    }

    /// One LMDB environment being written, with its databases by name.
    final class Store {
        let env: LMDBEnvironment
        let path: String
        var mapSize: Int
        var dbs: [String: MDB_dbi] = [:]

        init(path: String, subdirectory: Bool, names: [String], initialMapSize: Int) throws {
            self.path = path
            let file = subdirectory ? PathName.join(path, "data.mdb") : path
            // Start from the current file size so reopening a big shard does not shrink the map.
            let existing = fileSize(file) ?? 0
            mapSize = max(initialMapSize, existing * 2)
            env = try LMDBEnvironment(path: path, readOnly: false, maxDatabases: names.count, mapSize: mapSize, subdirectory: subdirectory)
            try transaction { txn in
                for name in names {
                    var dbi: MDB_dbi = 0
                    try lmdbCheck(mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open(\(name))", path)
                    dbs[name] = dbi
                }
            }
        }

        /// Runs `body` in one write transaction, committed when it returns and aborted when it
        /// throws; when LMDB says the map is full, doubles the map and runs it again.
        func transaction(_ body: (OpaquePointer?) throws -> Void) throws {
            while true {
                do {
                    var txn: OpaquePointer?
                    try lmdbCheck(mdb_txn_begin(env.env, nil, 0, &txn), "mdb_txn_begin", path)
                    do {
                        try body(txn)
                    } catch {
                        mdb_txn_abort(txn)
                        throw error
                    }
                    // mdb_txn_commit frees the transaction even when it fails (e.g. MDB_MAP_FULL while
                    // writing the last pages): it must not be aborted afterwards.
                    try lmdbCheck(mdb_txn_commit(txn), "mdb_txn_commit", path)
                    return
                } catch CacheError.lmdb(_, let code, _, _) where code == MDB_MAP_FULL {
                    mapSize *= 2
                    try lmdbCheck(mdb_env_set_mapsize(env.env, mapSize), "mdb_env_set_mapsize", path)
                }
            }
        }
    }

    /// The shard directory.
    public let directory: URL
    /// The cache format version this shard is written in (its layout).
    public let formatVersion: Int
    /// Its level sizes, as given.
    public let levels: [Int]
    /// `data.mdb` (versions 1, 2) or `meta.mdb` (version 3): labels and meta.
    private let main: Store
    /// Version 3: each level's file; versions 1 and 2: none (the levels are in `main`).
    var levelStores: [Int: Store] = [:]

    /// Opens (creating if needed) the shard at `directory` for `levels`, in the layout of
    /// `formatVersion` (1 and 2: one file; 3: a file per level).
    /// - Throws: ``CacheError/io(path:reason:)`` when the directory cannot be made, ``CacheError/lmdb(function:code:message:path:)``.
    public init(directory: URL, levels: [Int], initialMapSize: Int = 64 << 20, formatVersion: Int = Manifest.defaultBuildVersion) throws {
        self.directory = directory
        self.formatVersion = formatVersion
        self.levels = levels
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CacheError.io(path: directory.path, reason: "cannot create shard directory: \(error)")
        }
        if formatVersion >= 3 {
            main = try Store(path: directory.appendingPathComponent(Manifest.metaFileName).path, subdirectory: false,
                             names: [ShardDatabase.labels, ShardDatabase.meta], initialMapSize: initialMapSize)
            for level in levels {
                levelStores[level] = try Store(path: directory.appendingPathComponent(Manifest.levelFileName(level)).path, subdirectory: false,
                                               names: [ShardDatabase.level(level), ShardDatabase.meta], initialMapSize: initialMapSize)
            }
        } else {
            main = try Store(path: directory.path, subdirectory: true,
                             names: levels.map(ShardDatabase.level) + [ShardDatabase.labels, ShardDatabase.meta], initialMapSize: initialMapSize)
        }
    }

    /// The store and database that hold `level`'s records.
    private func levelTarget(_ level: Int) throws -> (Store, MDB_dbi) {
        let store = levelStores[level] ?? main
        guard let dbi = store.dbs[ShardDatabase.level(level)] else {
            throw CacheError.unknownLevel(level: level, available: levels)
        }
        return (store, dbi)
    }

    /// Writes a batch: one transaction per level file (version 3), then one for labels and meta.
    public func commit(_ batch: Batch) throws {
        var byLevel: [Int: [(index: Int, bytes: [UInt8])]] = [:]
        for record in batch.records { byLevel[record.level, default: []].append((record.index, record.bytes)) }
        if formatVersion >= 3 {
            for (level, records) in byLevel.sorted(by: { $0.key > $1.key }) {
                let (store, dbi) = try levelTarget(level)
                try store.transaction { txn in for r in records { try put(store, txn, dbi, index: r.index, r.bytes) } }
            }
            try shareDescription(batch.meta)
        }
        try main.transaction { txn in
            if formatVersion < 3 {
                for (level, records) in byLevel {
                    let (_, dbi) = try levelTarget(level)
                    for r in records { try put(main, txn, dbi, index: r.index, r.bytes) }
                }
            }
            for (index, label) in batch.labels {
                guard var le = Int32(exactly: label)?.littleEndian else {
                    throw CacheError.io(path: directory.path, reason: "label \(label) of sample \(index) does not fit the 32-bit label store")
                }
                try withUnsafeBytes(of: &le) { try put(main, txn, main.dbs[ShardDatabase.labels]!, index: index, Array($0)) }
            }
            try putMeta(txn, batch.meta)
        }
    }

    /// Version 3: the shard's description (`shard` in `meta`) goes into every level file too, so a
    /// level file alone says which shard of which build it belongs to.
    private func shareDescription(_ meta: [(key: String, value: [UInt8])]) throws {
        guard let info = meta.last(where: { $0.key == ShardInfo.metaKey }) else { return }
        for (_, store) in levelStores.sorted(by: { $0.key > $1.key }) {
            try store.transaction { txn in
                var k = Array(info.key.utf8)
                try k.withUnsafeMutableBytes { kb in
                    var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                    try putValue(store, txn, store.dbs[ShardDatabase.meta]!, &mk, info.value)
                }
            }
        }
    }

    private func put(_ store: Store, _ txn: OpaquePointer?, _ dbi: MDB_dbi, index: Int, _ value: [UInt8]) throws {
        try withIndexKey(index) { key in try putValue(store, txn, dbi, &key, value) }
    }

    func putValue(_ store: Store, _ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: inout MDB_val, _ value: [UInt8], flags: Int32 = 0) throws {
        var v = value
        try v.withUnsafeMutableBytes { vb in
            var mv = MDB_val(mv_size: vb.count, mv_data: vb.baseAddress)
            try lmdbCheck(mdb_put(txn, dbi, &key, &mv, UInt32(flags)), "mdb_put", store.path)
        }
    }

    /// Renumbers records: the entries keyed `from + i` (every level database and `labels`), for
    /// `i` in `done..<count`, move to key `to + i`, with `to ≤ from`, in ascending order and in
    /// transactions of at most `batch` samples, so no key is overwritten. Each transaction of
    /// `meta` also writes the entries `meta(moved)` returns for the number of samples moved so far,
    /// so a move killed between transactions resumes from `meta`'s record of it. (Version 3 moves
    /// each level file's keys before `meta.mdb`'s; a key already moved there is skipped on resume.)
    public func moveKeys(from: Int, to: Int, count: Int, done: Int, batch: Int = 256,
                         meta: (Int) -> [(key: String, value: [UInt8])]) throws {
        precondition(to <= from, "keys move down only")
        var i = done
        repeat {
            let start = i, end = to == from ? count : min(count, i + batch)
            let entries = meta(end)
            if to != from {
                for (_, store) in levelStores.sorted(by: { $0.key > $1.key }) {
                    try store.transaction { txn in
                        for (name, dbi) in store.dbs where name != ShardDatabase.meta {
                            try move(store, txn, dbi, from: from, to: to, range: start..<end, resumable: true)
                        }
                    }
                }
            }
            if formatVersion >= 3 { try shareDescription(entries) }
            try main.transaction { txn in
                if to != from {
                    for (name, dbi) in main.dbs where name != ShardDatabase.meta {
                        try move(main, txn, dbi, from: from, to: to, range: start..<end, resumable: false)
                    }
                }
                try putMeta(txn, entries)
            }
            i = end
        } while i < count
    }

    /// Moves the entries keyed `from + j` to `to + j` for `j` in `range`. `resumable`: an entry
    /// found already at its new key (a level file moved before a killed `meta.mdb` commit) is skipped.
    private func move(_ store: Store, _ txn: OpaquePointer?, _ dbi: MDB_dbi, from: Int, to: Int, range: Range<Int>, resumable: Bool) throws {
        for j in range {
            var value = MDB_val()
            let rc = withIndexKey(from + j) { key in mdb_get(txn, dbi, &key, &value) }
            if rc == MDB_NOTFOUND {
                var there = MDB_val()
                if resumable, withIndexKey(to + j, { key in mdb_get(txn, dbi, &key, &there) }) == MDB_SUCCESS { continue }
                throw CacheError.missingRecord(shard: -1, index: from + j, level: 0)
            }
            try lmdbCheck(rc, "mdb_get", store.path)
            let bytes = Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
            try withIndexKey(from + j) { key in try lmdbCheck(mdb_del(txn, dbi, &key, nil), "mdb_del", store.path) }
            try put(store, txn, dbi, index: to + j, bytes)
        }
    }

    private func putMeta(_ txn: OpaquePointer?, _ entries: [(key: String, value: [UInt8])]) throws {
        for (key, value) in entries {
            var k = Array(key.utf8)
            try k.withUnsafeMutableBytes { kb in
                var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                try putValue(main, txn, main.dbs[ShardDatabase.meta]!, &mk, value)
            }
        }
    }

    /// Reads one entry of the `meta` database.
    public func meta(_ key: String) throws -> [UInt8]? {
        try metaEntries(prefix: key).first(where: { $0.key == key })?.value
    }

    /// All `meta` entries whose key starts with `prefix`, in key order.
    public func metaEntries(prefix: String) throws -> [(key: String, value: [UInt8])] {
        try Self.metaEntries(of: main, prefix: prefix)
    }

    /// All entries of `store`'s `meta` database whose key starts with `prefix`, in key order.
    static func metaEntries(of store: Store, prefix: String) throws -> [(key: String, value: [UInt8])] {
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(store.env.env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin", store.path)
        defer { mdb_txn_abort(txn) }
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(txn, store.dbs[ShardDatabase.meta]!, &cursor), "mdb_cursor_open", store.path)
        defer { mdb_cursor_close(cursor) }
        var out: [(String, [UInt8])] = []
        var p = Array(prefix.utf8)
        var rc: Int32 = p.withUnsafeMutableBytes { pb in
            var k = MDB_val(mv_size: pb.count, mv_data: pb.baseAddress); var v = MDB_val()
            let rc = mdb_cursor_get(cursor, &k, &v, prefix.isEmpty ? MDB_FIRST : MDB_SET_RANGE)
            if rc == MDB_SUCCESS { out.append(Self.entry(k, v)) }
            return rc
        }
        while rc == MDB_SUCCESS, let last = out.last, last.0.hasPrefix(prefix) {
            var k = MDB_val(), v = MDB_val()
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
            if rc == MDB_SUCCESS { out.append(Self.entry(k, v)) }
        }
        if rc != MDB_SUCCESS && rc != MDB_NOTFOUND { try lmdbCheck(rc, "mdb_cursor_get", store.path) }
        return out.filter { $0.0.hasPrefix(prefix) }.map { (key: $0.0, value: $0.1) }
    }

    private static func entry(_ k: MDB_val, _ v: MDB_val) -> (String, [UInt8]) {
        let key = String(decoding: UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size), as: UTF8.self)
        return (key, Array(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)))
    }

    /// Flushes every file to disk (the writer runs with `MDB_NOSYNC` between commits).
    public func sync() throws {
        for (_, store) in levelStores { try lmdbCheck(mdb_env_sync(store.env.env, 1), "mdb_env_sync", store.path) }
        try lmdbCheck(mdb_env_sync(main.env.env, 1), "mdb_env_sync", main.path)
    }

    /// Bytes of the data files in use.
    public var usedBytes: Int { main.env.usedBytes + levelStores.values.reduce(0) { $0 + $1.env.usedBytes } }

    /// The shard's files (relative to its directory) and their sizes in use.
    public var files: [String] {
        formatVersion >= 3 ? [Manifest.metaFileName] + levelStores.keys.sorted(by: >).map(Manifest.levelFileName) : ["data.mdb"]
    }
}
