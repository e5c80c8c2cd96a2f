import ArgumentParser
import Foundation
import PyramidCache

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Publish a finished cache to S3-compatible object storage (s3://bucket/prefix).",
        discussion: """
            Uploads every shard file (a version 3 cache: each level's file, or only those of \
            --levels) and the labels first and the manifest last, so a reader never sees a manifest \
            whose files are not all there. Every upload carries its Content-MD5, so the server refuses \
            a body damaged on the way. The published manifest adds each file's size and XXH3-64 \
            digest (readers check every download against them) and is sealed with its own digest. An \
            object already there whose ETag is the local file's MD5 is skipped, so running the same \
            push again after an interruption sends only what is missing (and replaces a damaged copy). Credentials, region and endpoint come from the \
            standard AWS variables and files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
            AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_PROFILE with \
            ~/.aws/credentials and ~/.aws/config); requests are always signed (SigV4). A custom \
            endpoint is addressed path-style.
            """)

    @Argument(help: "The cache directory.")
    var cache: String

    @Argument(help: "Where to publish it: s3://bucket/prefix.")
    var destination: String

    @Option(help: "Publish only these levels, comma-separated (a version 3 cache): a run at those sizes needs nothing else.")
    var levels: String?

    @Flag(help: "Create the bucket first if it does not exist.")
    var createBucket = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let location = try S3Location(destination)
        let client = try S3Client(configuration: try S3Configuration.resolve())
        if createBucket { try client.createBucket(location.bucket) }
        let progress = ProgressLine(quiet: quiet || json)
        let subset = try levels.map { try parseIntList($0, flag: "levels") }
        let report = try Publisher(cache: URL(fileURLWithPath: cache), location: location, client: client, levels: subset).push { p in
            progress.update("push", done: p.done, total: p.total, extra: p.object)
        }
        progress.finish()
        if json { return try printJSON(report, pretty: true) }
        print("pushed \(cache) to \(location): \(report.uploaded) objects sent (\(formatBytes(report.uploadedBytes))), "
              + "\(report.skipped) already there (\(formatBytes(report.skippedBytes))), \(String(format: "%.1f", report.seconds)) s")
    }
}
