/// Errors raised while reading or writing a Pyramid cache.
///
/// Every case carries what a person needs in order to act: the file, the shard,
/// the sample index and level, or the C function and its return code.
public enum CacheError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The directory has no `manifest.json`: it is not a cache, or its build never finished.
    case missingManifest(path: String)
    /// The manifest (or a shard) names a format version this reader does not understand; `supported`
    /// is the newest it reads (it reads every version from 1 up to it).
    case unsupportedVersion(path: String, found: Int, supported: Int)
    /// The manifest could not be decoded or is inconsistent.
    case invalidManifest(path: String, reason: String)
    /// A shard on disk does not agree with the manifest.
    case shardMismatch(path: String, reason: String)
    /// An LMDB call failed.
    case lmdb(function: String, code: Int32, message: String, path: String)
    /// A zstd call failed outside of reading a record (compression, dictionary training).
    case zstd(function: String, message: String)
    /// A TurboJPEG call failed outside of reading a record (compression).
    case jpeg(function: String, message: String)
    /// Pixels that no record can hold were given to the encoder.
    case unencodable(reason: String)
    /// A record failed its checksum, its header or its size check.
    case corruptRecord(shard: Int, index: Int, level: Int, reason: String)
    /// A record that the manifest promises is not in its shard.
    case missingRecord(shard: Int, index: Int, level: Int)
    /// The cache stores no such level.
    case unknownLevel(level: Int, available: [Int])
    /// A sample index outside `0..<sampleCount`.
    case indexOutOfRange(index: Int, count: Int)
    /// A file-system operation failed.
    case io(path: String, reason: String)
    /// A shard's `data.mdb` holds `size` bytes but its LMDB meta page says `expected` are in use:
    /// the file was cut short (an incomplete copy, a full disk).
    case truncatedFile(path: String, size: Int, expected: Int)
    /// A write failed because the file system holding `path` is full (`freeBytes` left).
    case diskFull(path: String, function: String, freeBytes: Int)
    /// Another process (PID `holder`, when it could be read) is writing the directory at `path`.
    case locked(path: String, holder: Int32?)

    public var description: String {
        switch self {
        case .missingManifest(let path):
            return "\(path): no manifest.json (not a Pyramid cache, or its build did not finish)"
        case .unsupportedVersion(let path, let found, let supported):
            return "\(path): cache format version \(found) is not supported (this pyramid reads versions 1 to \(supported))"
        case .invalidManifest(let path, let reason):
            return "\(path): invalid manifest: \(reason)"
        case .shardMismatch(let path, let reason):
            return "\(path): shard does not match the manifest: \(reason)"
        case .lmdb(let function, let code, let message, let path):
            return "\(path): \(function) failed (\(code)): \(message)"
        case .zstd(let function, let message):
            return "zstd \(function) failed: \(message)"
        case .jpeg(let function, let message):
            return "TurboJPEG \(function) failed: \(message)"
        case .unencodable(let reason):
            return "cannot encode a record: \(reason)"
        case .corruptRecord(let shard, let index, let level, let reason):
            return "corrupt record: shard \(shard), index \(index), level \(level): \(reason)"
        case .missingRecord(let shard, let index, let level):
            return "missing record: shard \(shard), index \(index), level \(level)"
        case .unknownLevel(let level, let available):
            return "the cache has no level \(level) (levels: \(available.map(String.init).joined(separator: ",")))"
        case .indexOutOfRange(let index, let count):
            return "sample index \(index) is out of range (the cache has \(count) samples)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .diskFull(let path, let function, let free):
            return "\(path): the disk is full (\(free / 1024) KiB free; \(function) failed)"
        case .locked(let path, let holder):
            return "\(path): another pyramid process\(holder.map { " (PID \($0))" } ?? "") is writing here; wait for it to finish or stop it"
        case .truncatedFile(let path, let size, let expected):
            return "\(path): \(size) bytes, but its LMDB meta page says \(expected) are in use: the file is truncated (an incomplete copy or a full disk)"
        }
    }
}
