#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Uploads a finished local cache to `s3://bucket/prefix`: every shard file (version 3: every
/// level file, or those of the levels asked for) and the labels first, the manifest last, so a
/// reader never sees a manifest whose files are not all there.
///
/// The uploaded manifest is the local one plus each shard file's size and XXH3-64 digest and the
/// labels file's (optional keys: older readers ignore them), sealed with its own digest
/// (``ManifestSeal``). Every upload carries its MD5 (`Content-MD5`), so the server refuses a body
/// damaged on the way and it is sent again. An object already there is skipped only when the
/// server's ETag (the MD5 it computed of what it stores) is the local file's MD5, so an
/// interrupted push run again sends only what is missing, and a damaged copy is replaced.
public struct Publisher {
    public let cache: URL
    public let location: S3Location
    public let client: S3Client
    /// Publish only these levels (a version 3 cache; nil: every level). The published manifest
    /// lists only their files (see ``Manifest/heldLevels``); a run that needs another is refused.
    public var levels: [Int]?

    public init(cache: URL, location: S3Location, client: S3Client, levels: [Int]? = nil) {
        self.cache = cache; self.location = location; self.client = client; self.levels = levels
    }

    /// What one push did.
    public struct Report: Sendable, Codable, Equatable {
        public var location: String
        /// Objects sent, and their bytes.
        public var uploaded = 0
        public var uploadedBytes = 0
        /// Objects that were already there, and their bytes.
        public var skipped = 0
        public var skippedBytes = 0
        public var seconds = 0.0
    }

    /// Progress: bytes handled (sent or found already there) of all.
    public struct Progress: Sendable { public var done: Int; public var total: Int; public var object: String }

    /// The manifest as it is published (with every published file's size and digest, and only
    /// ``levels`` when given), and the labels file's bytes.
    /// - Throws: ``CacheError`` for a cache that does not open, ``RemoteError/local(path:reason:)``
    ///   when a shard file no longer matches the digest its build recorded, or when ``levels``
    ///   names a level the cache lacks or the cache is not version 3.
    public func prepare() throws -> (manifest: Manifest, labels: [UInt8]) {
        var manifest = try Manifest.load(from: cache)
        if let levels {
            guard manifest.hasLevelFiles else {
                throw RemoteError.local(path: cache.path, reason: "--levels publishes level files, which a version \(manifest.formatVersion) cache does not have; convert it first (pyramid upgrade)")
            }
            if let missing = levels.first(where: { l in !manifest.levelSizes.contains(l) }) {
                throw RemoteError.local(path: cache.path, reason: "level \(missing) is not in the cache (levels \(manifest.levelSizes.map(String.init).joined(separator: ",")))")
            }
        }
        // Levels left out keep their place in `levels` (a size is served from the same level as
        // from the whole cache, or refused); only their files are not listed.
        for file in manifest.files {
            if let levels, let level = file.level, !levels.contains(level) {
                manifest.shards[file.shard].files?[PathName.last(file.path)] = nil
                continue
            }
            let path = cache.appendingPathComponent(file.path).path
            guard let digest = Manifest.FileDigest(ofFile: path) else {
                throw RemoteError.local(path: path, reason: "cannot read the shard file")
            }
            if let recorded = file.digest, recorded != digest {
                throw RemoteError.local(path: path, reason: "it is \(digest.bytes) bytes with digest \(digest.xxh3), the build recorded \(recorded.bytes) bytes with \(recorded.xxh3): the shard changed after the build; run pyramid verify")
            }
            if manifest.hasLevelFiles {
                var recorded = manifest.shards[file.shard].files ?? [:]
                recorded[PathName.last(file.path)] = digest
                manifest.shards[file.shard].files = recorded
            } else {
                manifest.shards[file.shard].file = digest
            }
        }
        let labels = try CacheReader(url: cache).labels()
        var bytes = [UInt8](); bytes.reserveCapacity(4 * labels.count)
        for l in labels { withUnsafeBytes(of: l.littleEndian) { bytes.append(contentsOf: $0) } }
        manifest.labels = bytes.withUnsafeBytes { Manifest.FileDigest(bytes: bytes.count, xxh3: RecordChecksum.xxh3($0)) }
        return (manifest, bytes)
    }

    /// Pushes the cache.
    public func push(progress: (Progress) -> Void = { _ in }) throws -> Report {
        let started = Date()
        let (manifest, labels) = try prepare()
        var report = Report(location: location.description)
        let files = manifest.files
        let total = files.reduce(0) { $0 + ($1.digest?.bytes ?? 0) } + labels.count
        var done = 0
        func upload(_ name: String, _ digest: Manifest.FileDigest, there: () throws -> Bool, send: () throws -> Void) throws {
            progress(Progress(done: done, total: total, object: name))
            if try there() {
                report.skipped += 1; report.skippedBytes += digest.bytes
            } else {
                try send()
                report.uploaded += 1; report.uploadedBytes += digest.bytes
            }
            done += digest.bytes
            progress(Progress(done: done, total: total, object: name))
        }
        for file in files {
            guard let digest = file.digest else { continue }
            let path = cache.appendingPathComponent(file.path).path
            try upload(file.path, digest, there: { try client.holds(location, file.path, file: path) }) {
                try client.put(location, file.path, file: path, metadata: ["xxh3": digest.xxh3])
            }
        }
        if let digest = manifest.labels {
            try upload(Manifest.labelsFileName, digest, there: { try client.holds(location, Manifest.labelsFileName, bytes: labels) }) {
                try client.put(location, Manifest.labelsFileName, bytes: labels, metadata: ["xxh3": digest.xxh3])
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try client.put(location, Manifest.fileName, bytes: ManifestSeal.seal(Array(try encoder.encode(manifest))))
        report.uploaded += 1
        report.seconds = Date().timeIntervalSince(started)
        return report
    }
}
