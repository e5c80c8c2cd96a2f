import ArgumentParser
import Foundation
import PyramidCache

struct UpgradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Convert a version 2 cache to version 3 (a file per level), without decoding an image.",
        discussion: """
            Every record and label is copied byte for byte (each record's checksum checked on the \
            way), so batches from the new cache are byte-identical to the old one's; the build id \
            stays, so runs and states made on the old cache continue on the new one. Either side \
            may be s3://bucket/prefix: a remote source is fetched shard by shard into the cache \
            directory; a remote destination is written in a staging directory (--staging) and \
            published as pyramid push does. `pyramid inspect` says what upgrading would change.
            """)

    @Argument(help: "The version 2 cache: a directory or s3://bucket/prefix.")
    var cache: String

    @Option(help: "Where the version 3 cache goes: a new directory or s3://bucket/prefix.")
    var out: String

    @Option(help: "For an s3:// --out: the local directory the cache is written in before it is published (default: a new one under the cache root, removed after).")
    var staging: String?

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let reader = try CacheReader.open(cache, remote: remoteOptions)
        let destination = S3Location.isRemote(out) ? try S3Location(out) : nil
        let client = try destination.map { _ in try S3Client(configuration: try S3Configuration.resolve()) }
        if let destination, let client, try client.head(destination, Manifest.fileName) != nil {
            throw Failure.failure("--out: \(destination) already holds a cache; choose another prefix")
        }
        let local = URL(fileURLWithPath: destination == nil ? out
            : staging ?? remoteOptions.root().appendingPathComponent("staging").appendingPathComponent("upgrade-\(destination!.directoryName)-\(getpid())").path)
        let progress = ProgressLine(quiet: quiet)
        let report = try CacheUpgrade.upgrade(reader, to: local) { progress.update("upgrade", done: $0, total: $1) }
        progress.finish()
        var published = ""
        if let destination, let client {
            let push = try Publisher(cache: local, location: destination, client: client).push { p in
                progress.update("upload", done: p.done, total: p.total, extra: p.object)
            }
            progress.finish()
            try? FileManager.default.removeItem(at: local)
            published = "; published to \(destination) (\(push.uploaded) objects, \(formatBytes(push.uploadedBytes)))"
        }
        if !quiet {
            print("upgraded \(cache) to version 3 in \(out): \(report.samples) samples, \(report.shards) shards × (meta + \(report.levels.count) level files), "
                  + "\(formatBytes(report.bytes)), \(String(format: "%.1f", report.seconds)) s\(published)")
        }
    }
}
