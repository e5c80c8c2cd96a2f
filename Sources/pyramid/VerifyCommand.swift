import ArgumentParser
import Foundation
import PyramidCache

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read every record of every level and check checksums, headers, labels and counts.",
        discussion: """
            A cache at s3://bucket/prefix is checked shard by shard as it is fetched (its size \
            and digest against the manifest, then every record) within --cache-limit. \
            Each shard is scanned in a child process of its own: LMDB does not checksum its pages, \
            and following a damaged page can end a process with a signal, so a scan that dies is \
            reported as a damaged shard (with every bad record found before it died) instead of \
            taking verify down with it. Exit status 0 when every record is sound; 1 with one line \
            per bad record (shard, index, level, reason) or damaged shard.
            """)

    @Argument(help: "The cache: a directory or s3://bucket/prefix.")
    var cache: String

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Print the result as JSON: recordsChecked and problems (shard, index (−1: the whole shard), level, reason).")
    var json = false

    @Option(parsing: .unconditional, help: .hidden)
    var shard: Int?

    /// A shard child's pin: the ETag of the manifest its parent read.
    @Option(help: .hidden)
    var manifestEtag: String?

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options(manifestETag: manifestEtag)
        if let shard { return scanShard(shard, remote: remoteOptions) }
        let manifest = try Manifest.load(location: cache, remote: remoteOptions)
        // Every shard child reads the publication this process read (If-Match on the manifest).
        let pin = S3Location.isRemote(cache) ? try RemoteCache.open(S3Location(cache), options: remoteOptions).manifestETag : nil
        let progress = ProgressLine(quiet: quiet || json)
        let total = manifest.sampleCount * (manifest.heldLevels.count + 1)
        let started = Date()
        var problems: [CacheVerifier.Problem] = []
        var checked = 0
        for number in manifest.shards.indices {
            let before = checked
            let scan = try ShardScan.run(cache: cache, shard: number, manifestETag: pin, remote: remoteOptions) { progress.update("verify", done: before + $0, total: total) }
            problems += scan.problems
            checked += scan.checked
            if let error = scan.error {
                problems.append(.init(shard: number, index: -1, level: 0, reason: "cannot be read: \(error)"))
                // The storage cannot be reached: the other shards would each wait out the deadline too.
                if scan.unreachable {
                    for rest in (number + 1)..<manifest.shards.count {
                        problems.append(.init(shard: rest, index: -1, level: 0, reason: "not checked: shard \(number) could not be fetched"))
                    }
                    logShard(number, of: manifest.shards.count, scan)
                    break
                }
            } else if let signal = scan.signal {
                problems.append(.init(shard: number, index: -1, level: 0, reason: """
                    damaged pages: its scan died with signal \(signal) after \(scan.checked) records \
                    (LMDB pages carry no checksum); the records before that were checked, the rest of the shard was not
                    """))
            }
            logShard(number, of: manifest.shards.count, scan)
        }
        progress.finish()
        let report = CacheVerifier.Report(recordsChecked: checked, problems: problems)
        let seconds = Date().timeIntervalSince(started)
        if json {
            try printJSON(report, pretty: true)
        } else if report.ok {
            print(String(format: "ok: %d records in %d levels + labels checked in %.1f s", report.recordsChecked, manifest.heldLevels.count, seconds))
        } else {
            for p in report.problems.prefix(100) { print("bad: \(p)") }
            if report.problems.count > 100 { print("… and \(report.problems.count - 100) more") }
            print("\(report.problems.count) bad record\(report.problems.count == 1 ? "" : "s") of \(report.recordsChecked) checked")
        }
        if !report.ok { throw ExitCode(1) }
    }

    /// Without a terminal for the progress line (a log, CI), one line per shard on standard error,
    /// so a long verify is never silent.
    private func logShard(_ number: Int, of count: Int, _ scan: ShardScan) {
        guard !quiet, isatty(2) == 0 else { return }
        let outcome = scan.error.map { "cannot be read: \($0)" } ?? scan.signal.map { "scan died with signal \($0)" }
            ?? "\(scan.checked) records checked, \(scan.problems.count) bad"
        printError("verify: shard \(number + 1) of \(count): \(outcome)")
    }

    /// The child's side: scans one shard, streaming one JSON line per problem and per 4096 records.
    private func scanShard(_ number: Int, remote remoteOptions: RemoteOptions) {
        let out = FileHandle.standardOutput
        func emit(_ line: ShardScan.Line) {
            guard var data = try? JSONEncoder().encode(line) else { return }
            data.append(0x0A)
            out.write(data)
        }
        do {
            // A remote cache's child fetches the one shard (through the shared cache directory).
            let reader = S3Location.isRemote(cache) ? try CacheReader.open(cache, remote: remoteOptions) : try CacheReader(url: URL(fileURLWithPath: cache), onlyShard: number)
            let checked = try CacheVerifier(reader: reader).verify(shard: number, progress: { emit(.init(checked: $0)) },
                                                                  problem: { emit(.init(problem: $0)) })
            emit(.init(checked: checked, done: true))
        } catch {
            var line = ShardScan.Line(error: Failure(error)?.message ?? "\(error)")
            switch error as? RemoteError {
            case .gaveUp?, .unreachable?: line.unreachable = true
            default: break
            }
            emit(line)
        }
    }
}

/// One shard scanned by a child `pyramid verify --shard N` process.
struct ShardScan {
    /// A line of the child's output.
    struct Line: Codable {
        var problem: CacheVerifier.Problem?
        var checked: Int?
        var done: Bool?
        var error: String?
        /// The error is the storage being out of reach (retries exhausted, host unreachable).
        var unreachable: Bool?
    }

    var problems: [CacheVerifier.Problem] = []
    var checked = 0
    var done = false
    var error: String?
    var unreachable = false
    /// The signal that ended the child, if one did.
    var signal: Int32?

    /// Runs the child for shard `number` of `cache`, passing its progress to `progress`.
    static func run(cache: String, shard number: Int, manifestETag: String?, remote: RemoteOptions, progress: (Int) -> Void) throws -> ShardScan {
        let child = Process()
        let me = URL(fileURLWithPath: "/proc/self/exe")
        child.executableURL = FileManager.default.fileExists(atPath: me.path) ? me : URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["verify", cache, "--shard", String(number)] + (manifestETag.map { ["--manifest-etag", $0] } ?? [])
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash here is expected and reported; no backtrace
        // A remote cache's child uses the same cache directory and limit.
        if let dir = remote.cacheDirectory { environment["PYRAMID_CACHE_DIR"] = dir.path }
        if let limit = remote.limit { environment["PYRAMID_CACHE_LIMIT"] = String(limit) }
        child.environment = environment
        let pipe = Pipe()
        child.standardOutput = pipe
        child.standardError = FileHandle.nullDevice
        try child.run()
        var scan = ShardScan()
        var pending = Data()
        let decoder = JSONDecoder()
        while true {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            pending.append(data)
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                guard let parsed = try? decoder.decode(Line.self, from: line) else { continue }
                if let p = parsed.problem { scan.problems.append(p) }
                if let c = parsed.checked { scan.checked = c; progress(c) }
                if parsed.done == true { scan.done = true }
                if let e = parsed.error { scan.error = e; scan.unreachable = parsed.unreachable ?? false }
            }
        }
        child.waitUntilExit()
        if child.terminationReason == .uncaughtSignal {
            scan.signal = child.terminationStatus
        } else if !scan.done && scan.error == nil {
            scan.error = "its scan ended without finishing (exit status \(child.terminationStatus))"
        }
        return scan
    }
}
