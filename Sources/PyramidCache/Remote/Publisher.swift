import Foundation

/// Uploads a finished local cache to `s3://bucket/prefix`: every shard file and the labels first,
/// the manifest last, so a reader never sees a manifest whose files are not all there.
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

    public init(cache: URL, location: S3Location, client: S3Client) {
        self.cache = cache; self.location = location; self.client = client
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

    /// The manifest as it is published, and the labels file's bytes.
    /// - Throws: ``CacheError`` for a cache that does not open, ``RemoteError/local(path:reason:)``
    ///   when a shard file no longer matches the digest its build recorded.
    public func prepare() throws -> (manifest: Manifest, labels: [UInt8]) {
        var manifest = try Manifest.load(from: cache)
        for (number, shard) in manifest.shards.enumerated() {
            let path = cache.appendingPathComponent(shard.dataPath).path
            guard let file = Manifest.FileDigest(ofFile: path) else {
                throw RemoteError.local(path: path, reason: "cannot read the shard file")
            }
            if let recorded = shard.file, recorded != file {
                throw RemoteError.local(path: path, reason: "it is \(file.bytes) bytes with digest \(file.xxh3), the build recorded \(recorded.bytes) bytes with \(recorded.xxh3): the shard changed after the build; run pyramid verify")
            }
            manifest.shards[number].file = file
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
        let total = manifest.shards.reduce(0) { $0 + ($1.file?.bytes ?? 0) } + labels.count
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
        for shard in manifest.shards {
            guard let file = shard.file else { continue }
            let path = cache.appendingPathComponent(shard.dataPath).path
            try upload(shard.dataPath, file, there: { try client.holds(location, shard.dataPath, file: path) }) {
                try client.put(location, shard.dataPath, file: cache.appendingPathComponent(shard.dataPath).path, metadata: ["xxh3": file.xxh3])
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
