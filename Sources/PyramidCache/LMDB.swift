import CLMDB
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Turns an LMDB return code into ``CacheError/lmdb(function:code:message:path:)``. Every LMDB call goes through here.
@inline(__always)
func lmdbCheck(_ rc: Int32, _ function: String, _ path: String) throws {
    if rc != MDB_SUCCESS {
        // LMDB reports a short write (a full disk) as EIO.
        if let full = diskFull(path, function: function, errno: rc) { throw full }
        throw CacheError.lmdb(function: function, code: rc, message: String(cString: mdb_strerror(rc)), path: path)
    }
}

/// An LMDB environment (one shard). Closed when released.
/// `@unchecked Sendable`: the `MDB_env` pointer is set once; LMDB allows an environment to be shared
/// between threads (each thread uses its own transactions, `MDB_NOTLS`).
final class LMDBEnvironment: @unchecked Sendable {
    let env: OpaquePointer
    let path: String

    /// - Parameters:
    ///   - readOnly: open with `MDB_RDONLY | MDB_NOLOCK` (a finished cache is never written again, so
    ///     readers need no lock file and the cache may sit on a read-only disk).
    ///   - mapSize: the initial map size; writers grow it when it fills.
    /// - Throws: ``CacheError/lmdb(function:code:message:path:)``, and
    ///   ``CacheError/truncatedFile(path:size:expected:)`` when `data.mdb` is shorter than the pages
    ///   its own meta page says are in use (reading them would end the process with SIGBUS).
    ///   - subdirectory: `path` is a directory holding `data.mdb` (versions 1, 2); false: `path`
    ///     is the data file itself (`MDB_NOSUBDIR`, version 3's level files).
    init(path: String, readOnly: Bool, maxDatabases: Int, mapSize: Int, subdirectory: Bool = true,
         advice: ReadAdvice = .normal) throws {
        var e: OpaquePointer?
        try lmdbCheck(mdb_env_create(&e), "mdb_env_create", path)
        env = e!
        self.path = path
        // From here on a throw releases self, and deinit closes the environment (once).
        try lmdbCheck(mdb_env_set_maxdbs(env, MDB_dbi(maxDatabases)), "mdb_env_set_maxdbs", path)
        try lmdbCheck(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize", path)
        var flags: Int32 = readOnly
            ? Int32(MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS)
            : Int32(MDB_NOSYNC | MDB_NOTLS)
        if !subdirectory { flags |= Int32(MDB_NOSUBDIR) }
        if readOnly && advice == .random { flags |= Int32(MDB_NORDAHEAD) }
        try lmdbCheck(mdb_env_open(env, path, UInt32(flags), 0o644), "mdb_env_open", path)
        let file = subdirectory ? PathName.join(path, "data.mdb") : path
        let size = fileSize(file) ?? 0  // stat(2): FileManager's attribute types differ between Foundation and FoundationEssentials
        let used = usedBytes
        if size < used { throw CacheError.truncatedFile(path: file, size: size, expected: used) }
    }

    deinit { mdb_env_close(env) }

    /// The size of the data file's used part (pages in use × page size).
    var usedBytes: Int {
        var info = MDB_envinfo(); var stat = MDB_stat()
        mdb_env_info(env, &info); mdb_env_stat(env, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }
}

/// How a reader's accesses to a file go, for the kernel's readahead.
enum ReadAdvice {
    /// LMDB's default: the kernel reads ahead of each page fault.
    case normal
    /// `MDB_NORDAHEAD`: no readahead.
    case random

    /// The advice for a shard file: no readahead (`MDB_NORDAHEAD`), unless `PYRAMID_READAHEAD=on`
    /// (the knob `Tools/bench/io` measures with). Measured on 2,000 photos (docs/performance.md,
    /// "Bytes per run", AMD EPYC Zen 3): where a run reads every record of a level (a fixed
    /// size), readahead changes nothing (a 96 px run read 1.13x the records' bytes either way:
    /// the packs fill their pages in key order); where it reads some records of each of several
    /// levels (MixSize gives each image one size per epoch, so a quarter of each of four levels),
    /// readahead pulls in the neighbours it skips: 4.6x the records with it, 1.56x without. A version 2 `data.mdb` interleaves every level's pages, so readahead there also
    /// brings in levels the run does not use.
    static func forLayout(levelFiles: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) -> ReadAdvice {
        environment["PYRAMID_READAHEAD"] == "on" ? .normal : .random
    }
}

/// The LMDB key of sample `index`: 8 bytes, big-endian, so key order is index order.
@inline(__always)
func withIndexKey<R>(_ index: Int, _ body: (inout MDB_val) throws -> R) rethrows -> R {
    var be = UInt64(bitPattern: Int64(index)).bigEndian  // a negative index is a key no record has
    return try withUnsafeMutableBytes(of: &be) { raw in
        var key = MDB_val(mv_size: 8, mv_data: raw.baseAddress)
        return try body(&key)
    }
}

/// Decodes an 8-byte big-endian key.
@inline(__always)
func indexFromKey(_ key: MDB_val) -> Int? {
    guard key.mv_size == 8 else { return nil }
    var v: UInt64 = 0
    withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(start: key.mv_data, count: 8)) }
    return Int(exactly: UInt64(bigEndian: v))  // a damaged key above Int.max is no index
}

/// Database names inside every shard.
enum ShardDatabase {
    static let labels = "labels"
    static let meta = "meta"
    static func level(_ size: Int) -> String { "level-\(size)" }
}
