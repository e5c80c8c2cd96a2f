import CLMDB
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Packing a version 3 shard's level files (``LevelPack``), once its records have their final keys.
extension ShardWriter {
    /// Version 3: rewrites each level file with its records in packs (``LevelPack``), once every
    /// record has its final key (after the renumbering; before the file's digest is taken). Each
    /// file is written beside the old one and renamed over it, so a killed packing leaves the
    /// unpacked file, packed again on resume; a file that holds a pack table already is left as it is.
    /// Records are copied byte for byte: no image is decoded again.
    public func packLevels() throws {
        for level in levelStores.keys.sorted(by: >) {
            guard let old = levelStores[level] else { continue }
            if try Self.metaEntries(of: old, prefix: LevelPack.metaKey).contains(where: { $0.key == LevelPack.metaKey }) { continue }
            let path = old.path, temporary = old.path + ".packing"
            let fm = FileManager.default
            for stale in [temporary, temporary + "-lock"] where fm.fileExists(atPath: stale) { try? fm.removeItem(atPath: stale) }
            let name = ShardDatabase.level(level)
            let packed = try Store(path: temporary, subdirectory: false, names: [name, ShardDatabase.meta],
                                   initialMapSize: max(64 << 20, (fileSize(path) ?? 0) * 2))
            var packedRecords = 0, starts: [Int] = []  // the pack table (records, first indices), made once at the end
            try Self.walk(old, name) { records in
                // One pack: records from the first key until they reach the target size.
                var pending: [(start: Int, bytes: [UInt8])] = []
                var group: [[UInt8]] = [], groupStart = 0, groupBytes = 0, pendingBytes = 0
                func close() {
                    guard !group.isEmpty else { return }
                    let bytes = LevelPack.encode(group)
                    pending.append((groupStart, bytes)); pendingBytes += bytes.count
                    packedRecords += group.count; starts.append(groupStart)
                    group = []; groupBytes = 0
                }
                func write(meta: [(key: String, value: [UInt8])] = []) throws {
                    let batch = pending
                    try packed.transaction { txn in
                        for p in batch {
                            try withIndexKey(p.start) { key in try putValue(packed, txn, packed.dbs[name]!, &key, p.bytes, flags: Int32(MDB_APPEND)) }
                        }
                        for (key, value) in meta {
                            var k = Array(key.utf8)
                            try k.withUnsafeMutableBytes { kb in
                                var mk = MDB_val(mv_size: kb.count, mv_data: kb.baseAddress)
                                try putValue(packed, txn, packed.dbs[ShardDatabase.meta]!, &mk, value)
                            }
                        }
                    }
                    pending = []; pendingBytes = 0
                }
                while let (index, bytes) = try records() {
                    if group.isEmpty { groupStart = index }
                    else if index != groupStart + group.count {
                        throw CacheError.missingRecord(shard: -1, index: groupStart + group.count, level: level)
                    }
                    group.append(bytes); groupBytes += bytes.count
                    if groupBytes >= LevelPack.targetBytes { close() }
                    if pendingBytes >= 16 << 20 { try write() }
                }
                close()
                // The last packs and the meta entries (the old file's and the pack table) in one
                // transaction: no page of the file is written twice (a small level file stays small).
                try write(meta: try Self.metaEntries(of: old, prefix: "") + [(key: LevelPack.metaKey, value: LevelPack.Table(count: packedRecords, starts: starts).encoded)])
            }
            try lmdbCheck(mdb_env_sync(packed.env.env, 1), "mdb_env_sync", temporary)
            let mapSize = max(old.mapSize, packed.mapSize)
            levelStores[level] = nil  // both environments closed before the rename
            _ = consume old
            _ = consume packed
            guard rename(temporary, path) == 0 else {
                throw CacheError.io(path: path, reason: "cannot replace it with its packed copy: \(String(cString: strerror(errno)))")
            }
            try? fm.removeItem(atPath: temporary + "-lock")
            levelStores[level] = try Store(path: path, subdirectory: false, names: [name, ShardDatabase.meta], initialMapSize: mapSize)
        }
    }

    /// Hands `body` a function returning `store`'s database `name` entry by entry in key order
    /// (index, a copy of the value), nil at the end.
    private static func walk(_ store: Store, _ name: String, _ body: (() throws -> (Int, [UInt8])?) throws -> Void) throws {
        var txn: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(store.env.env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin", store.path)
        defer { mdb_txn_abort(txn) }
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(txn, store.dbs[name]!, &cursor), "mdb_cursor_open", store.path)
        defer { mdb_cursor_close(cursor) }
        var op = MDB_FIRST
        try body {
            var key = MDB_val(), value = MDB_val()
            let rc = mdb_cursor_get(cursor, &key, &value, op)
            op = MDB_NEXT
            if rc == MDB_NOTFOUND { return nil }
            try lmdbCheck(rc, "mdb_cursor_get", store.path)
            guard let index = indexFromKey(key) else {
                throw CacheError.io(path: store.path, reason: "a key of \(key.mv_size) bytes in \(name)")
            }
            return (index, Array(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)))
        }
    }
}
