import Foundation
import PyramidCache
import Synchronization

/// `pyramid build --out s3://…`: while the build runs in its staging directory, each shard is
/// uploaded as soon as the build has finished it (``Builder/shardFinished``); at the end the finished cache is published as
/// `pyramid push` does (every object checked by size and digest, what is there already skipped,
/// the manifest last), and the staging directory is removed.
///
/// An early upload is an optimization only: a shard whose upload failed (or that a resumed build
/// touched again) is sent again by the final publish, which alone decides what the location holds.
final class StagedPublisher: Sendable {
    let location: S3Location
    let staging: URL
    let client: S3Client
    private let queue = DispatchQueue(label: "pyramid.build.upload")
    private struct Early { var sent = 0, bytes = 0 }
    private let early = Mutex(Early())

    init(location: S3Location, staging: URL) throws {
        self.location = location
        self.staging = staging
        client = try S3Client(configuration: try S3Configuration.resolve())
    }

    /// Queues shard `number`'s upload (called on the build's committing thread).
    func shardFinished(_ number: Int) {
        let directory = shardDirectoryName(number)
        // Its data files: data.mdb (version 2), or meta.mdb and a file per level (version 3).
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: staging.appendingPathComponent(directory).path)) ?? [])
            .filter { $0.hasSuffix(".mdb") && $0 != "lock.mdb" }.sorted()
        queue.async { [self] in
            for file in names {
                let name = directory + "/" + file
                let path = staging.appendingPathComponent(name).path
                guard let digest = Manifest.FileDigest(ofFile: path) else { continue }
                // A failure is left to the final publish, which sends the file again or reports why it cannot.
                guard (try? client.put(location, name, file: path, metadata: ["xxh3": digest.xxh3])) != nil else { continue }
                early.withLock { $0.sent += 1; $0.bytes += digest.bytes }
            }
        }
    }

    /// Waits for the early uploads, publishes the staged cache and removes the staging directory.
    func publish(quiet: Bool) throws {
        queue.sync {}
        let progress = ProgressLine(quiet: quiet)
        let report: Publisher.Report
        do {
            defer { progress.finish() }
            report = try Publisher(cache: staging, location: location, client: client).push { p in
                progress.update("upload", done: p.done, total: p.total, extra: p.object)
            }
        }
        let e = early.withLock { $0 }
        try? FileManager.default.removeItem(at: staging)
        guard !quiet else { return }
        print("published to \(location): \(e.sent) shard file\(e.sent == 1 ? "" : "s") (\(formatBytes(e.bytes))) uploaded during the build, "
              + "\(report.uploaded) object\(report.uploaded == 1 ? "" : "s") (\(formatBytes(report.uploadedBytes))) after it, "
              + "\(report.skipped) already there; staging directory \(staging.path) removed")
    }
}
