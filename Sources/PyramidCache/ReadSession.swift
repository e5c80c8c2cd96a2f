import CLMDB
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A single thread's view of a cache: long-lived read transactions and a decoder (zstd or TurboJPEG
/// context) per level.
///
/// Not thread-safe: make one per thread with ``CacheReader/makeSession()``. Records are decompressed
/// straight from LMDB's memory map into the caller's buffer; nothing else is copied.
public final class ReadSession {
    /// The reader this session reads from.
    public let reader: CacheReader
    /// Read transactions by file id, with the file they read (kept open by the session while it
    /// reads it).
    private var txns: [Int: (file: CacheReader.OpenFile, txn: OpaquePointer?)] = [:]
    /// Where each (shard, level) read so far lives, keyed `shard << 16 | level`: found once per
    /// session and file, not per record (no lock, no database-name string on the hot path).
    private var locations: [Int: (file: CacheReader.OpenFile, id: Int, dbi: MDB_dbi)] = [:]
    private var decoders: [Int: RecordDecoder] = [:]

    init(reader: CacheReader) {
        self.reader = reader
    }

    deinit { endReads() }

    /// Ends this session's reads, so that a remote cache's files can be closed and evicted
    /// (the next read starts new ones).
    public func endReads() {
        for (_, t) in txns { mdb_txn_abort(t.txn) }
        txns = [:]
        locations = [:]  // a remote file may be closed and fetched again before the next read
    }

    private func txn(_ location: (file: CacheReader.OpenFile, id: Int, dbi: MDB_dbi)) throws -> OpaquePointer? {
        if let t = txns[location.id], t.file === location.file { return t.txn }
        if let stale = txns[location.id] { mdb_txn_abort(stale.txn) }  // the file was reopened (fetched again)
        var t: OpaquePointer?
        try lmdbCheck(mdb_txn_begin(location.file.env.env, nil, UInt32(MDB_RDONLY), &t), "mdb_txn_begin", location.file.env.path)
        txns[location.id] = (location.file, t)
        return t
    }

    /// Ends the transaction on file `id` after a failed read (LMDB makes it unusable).
    private func discard(_ id: Int) {
        if let t = txns.removeValue(forKey: id) { mdb_txn_abort(t.txn) }
    }

    private func decoder(_ level: Int) -> RecordDecoder {
        if let d = decoders[level] { return d }
        let d = RecordDecoder(codec: reader.codecs[level] ?? .zstd, dictionary: reader.dictionaries[level], filter: reader.filter,
                              recordVersion: UInt8(min(reader.manifest.formatVersion, 2)))  // version 3 keeps version 2's records
        decoders[level] = d
        return d
    }

    /// Calls `body` with the stored bytes of a record (header, payload and, from version 2,
    /// checksum), valid only inside `body`.
    public func withRecord<R>(index: Int, level: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let shard = reader.manifest.shardNumber(of: index) else {
            throw CacheError.indexOutOfRange(index: index, count: reader.manifest.sampleCount)
        }
        let location: (file: CacheReader.OpenFile, id: Int, dbi: MDB_dbi)
        let key = shard << 16 | level
        if (1...0xFFFF).contains(level), let known = locations[key] { location = known } else {
            location = try reader.levelDatabase(shard: shard, level: level)  // validates the level (manifest levels fit 16 bits)
            locations[key] = location
        }
        let t = try txn(location)
        // A packed level file: the record is part of the pack that starts at or before it.
        let packs = location.file.packs
        let place = packs?.locate(index)
        if packs != nil && place == nil { throw CacheError.missingRecord(shard: shard, index: index, level: level) }
        var value = MDB_val()
        let rc = withIndexKey(place?.start ?? index) { key in mdb_get(t, location.dbi, &key, &value) }
        if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: shard, index: index, level: level) }
        if rc != 0 {
            // A failed get (damaged pages) leaves its transaction unusable (MDB_BAD_TXN for every
            // later read): end it, so the next read of this file starts afresh.
            discard(location.id)
        }
        try lmdbCheck(rc, "mdb_get", location.file.env.path)
        var record = UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
        if let place {
            switch LevelPack.record(place.offset, in: record) {
            case .success(let r): record = r
            case .failure(let f): throw CacheError.corruptRecord(shard: shard, index: index, level: level, reason: f.reason)
            }
        }
        reader.countRead(record.count)
        return try body(record)
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
        let location = try reader.labelsDatabase(shard: shard)
        let t = try txn(location)
        var value = MDB_val()
        let rc = withIndexKey(index) { key in mdb_get(t, location.dbi, &key, &value) }
        if rc == MDB_NOTFOUND { throw CacheError.missingRecord(shard: shard, index: index, level: 0) }
        if rc != 0 { discard(location.id) }
        try lmdbCheck(rc, "mdb_get", location.file.env.path)
        guard value.mv_size == 4 else { throw CacheError.corruptRecord(shard: shard, index: index, level: 0, reason: "label of \(value.mv_size) bytes") }
        return Int(UnsafeRawBufferPointer(start: value.mv_data, count: 4).loadUnaligned(as: Int32.self).littleEndian)
    }

    /// Walks a database of a shard file in key order.
    func forEach(file location: (file: CacheReader.OpenFile, id: Int, dbi: MDB_dbi), _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let t = try txn(location)
        let path = location.file.env.path
        var cursor: OpaquePointer?
        try lmdbCheck(mdb_cursor_open(t, location.dbi, &cursor), "mdb_cursor_open", path)
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
    /// - Parameter damagedPack: called with the first index of a pack whose header is damaged and
    ///   why (version 3 level files); when it returns, the walk goes on with the next pack. The
    ///   default stops the walk with the error below.
    /// - Throws: ``CacheError/corruptRecord(shard:index:level:reason:)`` at a damaged pack (named by
    ///   its first index) when `damagedPack` is nil, and what `body` throws.
    public func forEachRecord(shard: Int, level: Int, damagedPack: (Int, String) throws -> Void = ReadSession.refuseDamagedPack,
                              _ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let location = try reader.levelDatabase(shard: shard, level: level)
        guard location.file.packs != nil else { return try forEach(file: location, body) }
        try forEach(file: location) { first, pack in
            // The header is checked as a whole before any record is handed out.
            let n = LevelPack.count(of: pack)
            var records: [UnsafeRawBufferPointer] = []
            records.reserveCapacity(max(0, min(n, 1 << 16)))
            for j in 0..<max(1, n) {
                switch LevelPack.record(j, in: pack) {
                case .success(let record): records.append(record)
                case .failure(let f):
                    let reason = "its pack is damaged: \(f.reason)"
                    do { try damagedPack(first, reason) } catch is DamagedPack {
                        throw CacheError.corruptRecord(shard: shard, index: first, level: level, reason: reason)
                    }
                    return
                }
            }
            for (j, record) in records.enumerated() { try body(first + j, record) }
        }
    }

    /// The default of ``forEachRecord(shard:level:damagedPack:_:)``: a damaged pack stops the walk.
    public static func refuseDamagedPack(_ first: Int, _ reason: String) throws { throw DamagedPack() }
    private struct DamagedPack: Error {}

    /// Decoder for `level`, for callers that walk records with ``forEachRecord(shard:level:_:)``.
    public func recordDecoder(level: Int) -> RecordDecoder { decoder(level) }
}
