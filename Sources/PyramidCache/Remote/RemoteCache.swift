#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Synchronization

/// Settings of remote reading: where fetched shards go and how many bytes they may take.
public struct RemoteOptions: Sendable, Equatable {
    /// The root of the local caches; nil: `$PYRAMID_CACHE_DIR`, else `$XDG_CACHE_HOME/pyramid`,
    /// else `~/.cache/pyramid`. Each remote cache gets a directory below it, keyed by endpoint,
    /// bucket, prefix and manifest digest.
    public var cacheDirectory: URL?
    /// Bytes the fetched shards of one remote cache may take; nil: `$PYRAMID_CACHE_LIMIT`, else
    /// no limit (the whole cache).
    public var limit: Int?
    public var policy: TransferPolicy
    /// When set, the manifest must still have this ETag (`If-Match`), else the open fails with
    /// ``RemoteError/changed(object:reason:)``: `pyramid verify`'s shard children read exactly
    /// the publication their parent read.
    public var manifestETag: String?

    public init(cacheDirectory: URL? = nil, limit: Int? = nil, policy: TransferPolicy = .fromEnvironment(), manifestETag: String? = nil) {
        self.cacheDirectory = cacheDirectory; self.limit = limit; self.policy = policy; self.manifestETag = manifestETag
    }

    /// The root directory these options resolve to.
    public func root(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let cacheDirectory { return cacheDirectory }
        if let d = environment["PYRAMID_CACHE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("pyramid") }
        return URL(fileURLWithPath: homeDirectory(environment)).appendingPathComponent(".cache/pyramid")
    }

    /// The limit these options resolve to (nil: none).
    /// - Throws: ``RemoteError/invalidLocation(_:reason:)`` for an unreadable `PYRAMID_CACHE_LIMIT`.
    public func resolvedLimit(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int? {
        if let limit { return limit }
        guard let text = environment["PYRAMID_CACHE_LIMIT"], !text.isEmpty else { return nil }
        guard let n = parseByteSize(text) else {
            throw RemoteError.local(path: "PYRAMID_CACHE_LIMIT", reason: "\"\(text)\" is not a size (examples: 2000000000, 512MiB, 4GiB)")
        }
        return n
    }
}

/// Creates `url` and its parents; the error names the path in the way (a file where a directory
/// should be) or what the system said.
/// - Throws: ``RemoteError/local(path:reason:)``.
func createDirectory(_ url: URL, purpose: String) throws {
    var partial = ""
    for component in url.standardizedFileURL.path.split(separator: "/") {
        partial += "/" + component
        var info = stat()
        if stat(partial, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw RemoteError.local(path: partial, reason: "is a file, not a directory: cannot create \(purpose) \(url.path) in it")
            }
            continue
        }
        guard errno == ENOENT, mkdir(partial, 0o755) == 0 || errno == EEXIST else {
            throw RemoteError.local(path: partial, reason: "cannot create \(purpose): \(String(cString: strerror(errno)))")
        }
    }
}

/// `512MiB`, `4GiB`, `300MB`, `2000000` → bytes; nil when `text` is not a positive size.
public func parseByteSize(_ text: String) -> Int? {
    let t = text.trimmingBlanks()
    let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
                                     ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12),
                                     ("K", 1024), ("M", 1_048_576), ("G", 1_073_741_824), ("T", 1_099_511_627_776), ("B", 1)]
    var number = Substring(t), scale = 1.0
    for (suffix, s) in units where t.hasSuffix(suffix) { number = t.dropLast(suffix.count); scale = s; break }
    guard let v = Double(number.trimmingBlanks()), v.isFinite, v > 0, v * scale < 9e18 else { return nil }
    return Int(v * scale)
}

/// A cache in S3-compatible storage, opened for reading: its manifest and labels local, its shards
/// fetched on demand by a ``ShardFetcher`` into a local directory.
///
/// One per location and process: ``open(_:options:)`` returns the same object for the same
/// location, so a trainer and its evaluator share downloads and the limit.
public final class RemoteCache: Sendable {
    public let location: S3Location
    public let client: S3Client
    public let manifest: Manifest
    /// The ETag of the manifest this cache was opened from: every later read is of this
    /// publication (a shard that no longer matches it is reported as changed, not damaged).
    public let manifestETag: String
    /// The local directory: `manifest.json`, `labels.bin`, and `shard-NNNNN/data.mdb` while fetched.
    public let directory: URL
    public let fetcher: ShardFetcher

    private static let opened = Mutex<[String: RemoteCache]>([:])

    /// Opens the cache at `location` (fetching its manifest and labels).
    /// - Throws: ``RemoteError`` (credentials, network, a cache not published with `pyramid push`),
    ///   ``CacheError/invalidManifest(path:reason:)``.
    public static func open(_ location: S3Location, options: RemoteOptions = RemoteOptions()) throws -> RemoteCache {
        let key = location.description
        if let cache = opened.withLock({ $0[key] }) { return cache }
        let cache = try RemoteCache(location: location, options: options)
        return opened.withLock { table in
            if let other = table[key] { return other }
            table[key] = cache
            return cache
        }
    }

    private init(location: S3Location, options: RemoteOptions) throws {
        self.location = location
        let configuration = try S3Configuration.resolve()
        client = try S3Client(configuration: configuration, policy: options.policy)
        let (bytes, etag) = try Self.fetchManifest(client: client, location: location, ifMatch: options.manifestETag)
        manifestETag = etag
        let manifest = try Manifest.decode(Data(bytes), path: location.object(Manifest.fileName))
        // The files a reader fetches: every data.mdb (version 2), or the held levels' files (version 3).
        let held = Set(manifest.heldLevels)
        let fetched = manifest.files.filter { $0.level.map(held.contains) ?? !manifest.hasLevelFiles }
        guard !held.isEmpty, fetched.allSatisfy({ $0.digest != nil }), manifest.labels != nil else {
            throw RemoteError.notPublished(
                location: location.description,
                reason: "its manifest gives no shard sizes and digests or no labels file; publish it with pyramid push")
        }
        self.manifest = manifest
        let identity = [configuration.endpoint, location.bucket, location.prefix].joined(separator: "\n")
        let digest = Array(identity.utf8).withUnsafeBytes { RecordChecksum.xxh3($0) } ^ bytes.withUnsafeBytes { RecordChecksum.xxh3($0) }
        directory = options.root().appendingPathComponent(location.directoryName + "-" + RecordChecksum.hex(digest))
        try createDirectory(directory, purpose: "the cache directory")
        let manifestURL = directory.appendingPathComponent(Manifest.fileName)
        if FileManager.default.contents(atPath: manifestURL.path) != Data(bytes) { try writeAtomically(Data(bytes), to: manifestURL) }
        let labels = directory.appendingPathComponent(Manifest.labelsFileName)
        if let want = manifest.labels, Manifest.FileDigest(ofFile: labels.path) != want {
            // One process downloads the labels; others sharing the directory wait for it.
            let lockPath = directory.appendingPathComponent("labels.lock").path
            let fd = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw RemoteError.local(path: lockPath, reason: String(cString: strerror(errno))) }
            defer { flock(fd, LOCK_UN); close(fd) }
            flock(fd, LOCK_EX)
            if Manifest.FileDigest(ofFile: labels.path) != want {
                try client.download(location, Manifest.labelsFileName, to: labels, expected: .init(size: want.bytes, digest: want.digest))
            }
        }
        let total = manifest.files.reduce(0) { $0 + ($1.digest?.bytes ?? 0) }
        let limit = try options.resolvedLimit() ?? total
        fetcher = ShardFetcher(client: client, location: location, manifest: manifest, manifestETag: etag, directory: directory, limit: limit)
    }

    /// The manifest's bytes, checked, and its ETag. A sealed manifest (``ManifestSeal``) is checked
    /// against its seal, and fetched again when it does not match; one published before seals
    /// is fetched twice and must arrive the same both times.
    static func fetchManifest(client: S3Client, location: S3Location, ifMatch: String?) throws -> (bytes: [UInt8], etag: String) {
        let check: ([UInt8]) -> String? = {
            if case .damaged(let why) = ManifestSeal.check($0) { return why }
            return nil
        }
        for _ in 0..<3 {
            let first = try client.object(location, Manifest.fileName, ifMatch: ifMatch, check: check)
            guard ManifestSeal.check(first.bytes) == .unsealed else { return first }
            let second = try client.object(location, Manifest.fileName, ifMatch: first.etag.isEmpty ? ifMatch : first.etag)
            if second.bytes == first.bytes { return first }
        }
        throw RemoteError.damaged(object: location.object(Manifest.fileName), reason: """
            it has no seal (published before pyramid push sealed manifests) and arrived different each of 3 times \
            it was read twice; push the cache again with this version
            """)
    }

    /// A reader of this cache (shards opened as they are fetched).
    public func reader() throws -> CacheReader { try CacheReader(url: directory, store: fetcher) }
}

extension CacheReader {
    /// Opens a cache by location: a directory, or `s3://bucket/prefix` (through ``RemoteCache``
    /// with `remote`: by default the environment's cache directory and limit).
    public static func open(_ location: String, remote: RemoteOptions = RemoteOptions()) throws -> CacheReader {
        if S3Location.isRemote(location) { return try RemoteCache.open(S3Location(location), options: remote).reader() }
        return try CacheReader(url: URL(fileURLWithPath: location))
    }
}

extension Manifest {
    /// The manifest of the cache at `location`: a directory, or `s3://bucket/prefix`.
    public static func load(location: String, remote: RemoteOptions = RemoteOptions()) throws -> Manifest {
        if S3Location.isRemote(location) { return try RemoteCache.open(S3Location(location), options: remote).manifest }
        return try load(from: URL(fileURLWithPath: location))
    }
}
