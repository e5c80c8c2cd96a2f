import CLMDB
import Foundation

/// Writes one shard: one LMDB environment with a database per level, `labels` and `meta`.
///
/// Every ``commit(_:)`` is one LMDB write transaction, so a shard holds whole batches only:
/// a killed build leaves each shard at its last commit. When the map fills, the writer
/// aborts the transaction, doubles the map and writes the batch again.
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

    /// The shard directory.
    public let directory: URL
    private let env: LMDBEnvironment
    private var mapSize: Int
    private var levelDBs: [Int: MDB_dbi] = [:]
    private var labelsDB: MDB_dbi = 0
    private var metaDB: MDB_dbi = 0

    /// Opens (creating if needed) the shard at `directory` with one database per level.
    /// - Throws: ``CacheError/io(path:reason:)`` when the directory cannot be made, ``CacheError/lmdb(function:code:message:path:)``.
    public init(directory: URL, levels: [Int], initialMapSize: Int = 64 << 20) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw CacheError.io(path: directory.path, reason: "cannot create shard directory: \(error.localizedDescription)")
        }
        // Start from the current file size so reopening a big shard does not shrink the map.
        let existing = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("data.mdb").path)[.size] as? Int) ?? 0
        mapSize = max(initialMapSize, existing * 2)
        env = try LMDBEnvironment(path: directory.path, readOnly: false, maxDatabases: levels.count + 2, mapSize: mapSize)
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(env.env, nil, 0, &txn), "mdb_txn_begin", directory.path)
        do {
            for level in levels { levelDBs[level] = try open(txn, ShardDatabase.level(level)) }
            labelsDB = try open(txn, ShardDatabase.labels)
            metaDB = try open(txn, ShardDatabase.meta)
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        try lmdbCheck(mdb_txn_commit(txn), "mdb_txn_commit", directory.path)
    }

    private func open(_ txn: OpaquePointer?, _ name: String) throws -> MDB_dbi {
        var dbi: MDB_dbi = 0
        try lmdbCheck(mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open(\(name))", directory.path)
        return dbi
    }

    /// Writes a batch in one transaction, growing the map and retrying if it fills.
    public func commit(_ batch: Batch) throws {
        try transaction { txn in
            for record in batch.records {
                guard let dbi = levelDBs[record.level] else {
                    throw CacheError.unknownLevel(level: record.level, available: levelDBs.keys.sorted(by: >))
                }
                try put(txn, dbi, index: record.index, record.bytes)
            }
            for (index, label) in batch.labels {
                guard var le = Int32(exactly: label)?.littleEndian else {
                    throw CacheError.io(path: directory.path, reason: "label \(label) of sample \(index) does not fit the 32-bit label store")
                }
                try withUnsafeBytes(of: &le) { try put(txn, labelsDB, index: index, Array($0)) }
            }
            try putMeta(txn, batch.meta)
        }
    }

    /// Runs `body` in one write transaction, committed when it returns and aborted when it throws;
    /// when LMDB says the map is full, doubles the map and runs it again.
    private func transaction(_ body: (OpaquePointer?) throws -> Void) throws {
        while true {
            do {
                var txn: OpaquePointer?
                try lmdbCheck(mdb_txn_begin(env.env, nil, 0, &txn), "mdb_txn_begin", directory.path)
                do {
                    try body(txn)
                } catch {
                    mdb_txn_abort(txn)
                    throw error
                }
                // mdb_txn_commit frees the transaction even when it fails (e.g. MDB_MAP_FULL while
                // writing the last pages): it must not be aborted afterwards.
                try lmdbCheck(mdb_txn_commit(txn), "mdb_txn_commit", directory.path)
                return
            } catch CacheError.lmdb(_, let code, _, _) where code == MDB_MAP_FULL {
                mapSize *= 2
                try lmdbCheck(mdb_env_set_mapsize(env.env, mapSize), "mdb_env_set_mapsize", directory.path)
            }
        }
    }

    private func put(_ txn: OpaquePointer?, _ dbi: MDB_dbi, index: Int, _ value: [UInt8]) throws {
        try withIndexKey(index) { key in try putValue(txn, dbi, &key, value) }
    }

    private func putValue(_ txn: OpaquePointer?, _ dbi: MDB_dbi, _ key: inout MDB_val, _ value: [UInt8]) throws {
        var v = value
        try v.withUnsafeMutableBytes { vb in
            var mv = MDB_val(mv_size: vb.count, mv_data: vb.baseAddress)
            try lmdbCheck(mdb_put(txn, dbi, &key, &mv, 0), "mdb_put", directory.path)
        }
    }

    /// Renumbers records: the entries keyed `from + i` (every level database and `labels`), for
    /// `i` in `done..<count`, move to key `to + i`, with `to ≤ from`, in ascending order and in
    /// transactions of at most `batch` samples, so no key is overwritten. Each transaction also
    /// writes the `meta` entries `meta(moved)` returns for the number of samples moved so far, so
    /// a move killed between transactions resumes from `meta`'s record of it.
    public func moveKeys(from: Int, to: Int, count: Int, done: Int, batch: Int = 256,
                         meta: (Int) -> [(key: String, value: [UInt8])]) throws {
        precondition(to <= from, "keys move down only")
        var i = done
        repeat {
            let start = i, end = to == from ? count : min(count, i + batch)
            try transaction { txn in
                if to != from {
                    for dbi in Array(levelDBs.values) + [labelsDB] {
                        for j in start..<end {
                            var value = MDB_val()
                            let rc = withIndexKey(from + j) { key in mdb_get(txn, dbi, &key, &value) }
                            if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: -1, index: from + j, level: 0) }
                            try lmdbCheck(rc, "mdb_get", directory.path)
                            let bytes = Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
                            try withIndexKey(from + j) { key in try lmdbCheck(mdb_del(txn, dbi, &key, nil), "mdb_del", directory.path) }
                            try put(txn, dbi, index: to + j, bytes)
                        }
                    }
                }
                try putMeta(txn, meta(end))
            }
            i = end
        } while i < count
    }

    private func putMeta(_ txn: OpaquePointer?, _ entries: [(key: String, value: [UInt8])]) throws {
        for (key, value) in entries {
            var k = Array(key.utf8)
            try k.withUnsafeMutableBytes { kb in
                var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                try putValue(txn, metaDB, &mk, value)
            }
        }
    }

    /// Reads one entry of the `meta` database.
    public func meta(_ key: String) throws -> [UInt8]? {
        try metaEntries(prefix: key).first(where: { $0.key == key })?.value
    }

    /// All `meta` entries whose key starts with `prefix`, in key order.
    public func metaEntries(prefix: String) throws -> [(key: String, value: [UInt8])] {
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(env.env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin", directory.path)
        defer { mdb_txn_abort(txn) }
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(txn, metaDB, &cursor), "mdb_cursor_open", directory.path)
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
        if rc != MDB_SUCCESS && rc != MDB_NOTFOUND { try lmdbCheck(rc, "mdb_cursor_get", directory.path) }
        return out.filter { $0.0.hasPrefix(prefix) }.map { (key: $0.0, value: $0.1) }
    }

    private static func entry(_ k: MDB_val, _ v: MDB_val) -> (String, [UInt8]) {
        let key = String(decoding: UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size), as: UTF8.self)
        return (key, Array(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)))
    }

    /// Flushes the environment to disk (the writer runs with `MDB_NOSYNC` between commits).
    public func sync() throws {
        try lmdbCheck(mdb_env_sync(env.env, 1), "mdb_env_sync", directory.path)
    }

    /// Bytes of the data file in use.
    public var usedBytes: Int { env.usedBytes }
}
