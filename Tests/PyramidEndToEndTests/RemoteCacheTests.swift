import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidTrain
import Testing

/// The local S3-compatible server Tools/test starts (Tools/s3-server: SeaweedFS on 127.0.0.1, SigV4
/// checked). Without it (a plain `swift test`) these tests are skipped, saying why.
enum S3Server {
    static let environment = ProcessInfo.processInfo.environment
    static let endpoint = environment["PYRAMID_TEST_S3_ENDPOINT"]
    static var available: Bool { endpoint != nil }

    static var configuration: S3Configuration {
        S3Configuration(accessKey: environment["PYRAMID_TEST_S3_ACCESS_KEY"] ?? "", secretKey: environment["PYRAMID_TEST_S3_SECRET_KEY"] ?? "",
                        endpoint: endpoint)
    }

    /// The tool's environment for the server (or `endpoint` instead, e.g. a proxy), with a short
    /// stall window so that stalls are seen in seconds.
    static func toolEnvironment(endpoint: String? = nil, secret: String? = nil, cacheDir: String) -> [String: String] {
        var e = ProcessInfo.processInfo.environment
        for key in e.keys where key.hasPrefix("AWS_") { e[key] = nil }
        e["AWS_ACCESS_KEY_ID"] = environment["PYRAMID_TEST_S3_ACCESS_KEY"]
        e["AWS_SECRET_ACCESS_KEY"] = secret ?? environment["PYRAMID_TEST_S3_SECRET_KEY"]
        e["AWS_ENDPOINT_URL"] = endpoint ?? self.endpoint
        e["AWS_CONFIG_FILE"] = "/nonexistent"; e["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
        e["PYRAMID_CACHE_DIR"] = cacheDir
        e["PYRAMID_S3_STALL_SECONDS"] = "1"
        e["PYRAMID_S3_DEADLINE"] = "60"
        return e
    }

    /// A bucket of its own for each test.
    static func newBucket() throws -> String {
        let name = "pyr-\(UInt32.random(in: 0...UInt32.max))"
        try S3Client(configuration: configuration).createBucket(name)
        return name
    }
}

/// Runs `pyramid` with `environment`, killing it after `timeout` seconds (a hang fails the test).
func runTool(_ arguments: [String], environment: [String: String], timeout: Double = 120) throws -> (output: Tool.Output, hung: Bool) {
    let p = Process()
    p.executableURL = Tool.url
    p.arguments = arguments
    p.environment = environment
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let watchdog = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
    let result = Tool.finish(p, out, err)
    watchdog.cancel()
    return (result, p.terminationReason == .uncaughtSignal && result.status == SIGKILL)
}

/// The fault-injecting proxy of Tests/Tools/fault_proxy.py, in front of the server.
final class FaultProxy {
    let process = Process()
    let log: String
    let port: Int

    init(_ arguments: [String], directory: TempDirectory) throws {
        log = directory.path("proxy-\(UInt32.random(in: 0...UInt32.max)).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tools/fault_proxy.py").path
        let upstream = try #require(S3Server.endpoint).replacingOccurrences(of: "http://", with: "")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--upstream", upstream] + arguments
        process.standardOutput = FileHandle(forWritingAtPath: log)
        try process.run()
        var found: Int?
        for _ in 0..<200 where found == nil {
            usleep(25_000)
            found = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("PORT ") }.flatMap { Int($0.dropFirst(5)) }
        }
        port = try #require(found, "the proxy did not start")
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }
    var lines: [Substring] { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n") }
    func stop() { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
    deinit { stop() }
}

@Suite(.serialized, .enabled(if: S3Server.available, "no S3 server: run ./Tools/test (it starts one)"))
struct RemoteCacheTests {
    /// A local cache of 2,000 samples in 8 shards, pushed to a new bucket. Version 2 (one file
    /// per shard): these tests cover remote reading of the layout published before level files;
    /// `LevelFileRemoteTests` covers version 3.
    static func published(_ out: TempDirectory) throws -> (cache: String, remote: String, shardBytes: [Int]) {
        let src = TempDirectory()
        try makeLargeIDX(src, count: 2000)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,12", "--shards", "8", "--cache-version", "2", "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
        let remote = "s3://\(try S3Server.newBucket())/caches/small"
        let env = S3Server.toolEnvironment(cacheDir: out.path("unused"))
        let push = try runTool(["push", cache, remote], environment: env).output
        try #require(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains("10 objects sent"), "\(push.stdout)")  // 8 shards, labels, manifest
        let again = try runTool(["push", cache, remote], environment: env).output
        #expect(again.status == 0 && again.stdout.contains("9 already there"), "a second push skips what is there: \(again.stdout)")
        let manifest = try Manifest.load(from: URL(fileURLWithPath: cache))
        return (cache, remote, manifest.shards.map { $0.file?.bytes ?? 0 })
    }

    /// log.jsonl without its wall-clock and transfer fields.
    static func logWithoutClocks(_ run: String) throws -> [[String: String]] {
        try String(contentsOfFile: "\(run)/log.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in ["seconds", "imagesPerSecond", "allreduceSeconds", "remote"] { object[key] = nil }
            return object.mapValues { "\($0)" }
        }
    }

    static let recipe = ["--model", "resnet8", "--schedule", "fixed:12", "--epochs", "2", "--batch", "50", "--seed", "3",
                         "--threads", "1", "--quiet", "--shuffle", "shards:1"]

    @Test func everyReaderOfAPushedCacheMatchesTheLocalOneWithinAQuarterOfItsSize() throws {
        let out = TempDirectory()
        let (cache, remote, bytes) = try Self.published(out)
        let quarter = String(bytes.reduce(0, +) / 4)
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))

        let inspect = try runTool(["inspect", remote], environment: env).output
        #expect(inspect.status == 0 && inspect.stdout.contains("2000 in 8 shards"), "\(inspect.stdout)\(inspect.stderr)")
        let verify = try runTool(["verify", remote, "--cache-limit", quarter], environment: env).output
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: 6000 records"), "\(verify.stdout)\(verify.stderr)")

        let batches = ["--batch", "50", "--seed", "9", "--shuffle", "shards:1", "--schedule", "trd:16,12,p=0.5", "--epochs", "2"]
        let local = try Tool.run(["batches", cache] + batches)
        let fetched = try runTool(["batches", remote, "--cache-limit", quarter] + batches, environment: env).output
        #expect(local.status == 0 && fetched.status == 0, "\(fetched.stderr)")
        #expect(fetched.stdout == local.stdout)

        // The same training run from the local copy and from s3:// with a quarter of the cache.
        let a = try Tool.run(["train", cache, "--out", out.path("local")] + Self.recipe)
        #expect(a.status == 0, "\(a.stderr)")
        let b = try runTool(["train", remote, "--out", out.path("remote"), "--cache-limit", quarter] + Self.recipe, environment: env).output
        #expect(b.status == 0, "\(b.stderr)")
        let ca = try Checkpoint.read(from: URL(fileURLWithPath: out.path("local/checkpoint.bin")))
        let cb = try Checkpoint.read(from: URL(fileURLWithPath: out.path("remote/checkpoint.bin")))
        #expect(ca.parameters == cb.parameters && ca.state == cb.state && ca.velocity == cb.velocity)
        #expect(try Self.logWithoutClocks(out.path("local")) == Self.logWithoutClocks(out.path("remote")))
        // The log says what the epochs fetched: a quarter-size cache refetches, but never more than ~1.1x a pass.
        let line = try String(contentsOfFile: out.path("remote/log.jsonl"), encoding: .utf8).split(separator: "\n")[1]
        let entry = try JSONDecoder().decode(Trainer.EpochLog.self, from: Data(line.utf8))
        let remoteStats = try #require(entry.remote)
        #expect(remoteStats.bytesFetched > 0 && Double(remoteStats.bytesFetched) <= 1.1 * Double(bytes.reduce(0, +)), "\(remoteStats)")

        // A limit below what one step needs is refused at start, naming the minimum.
        let small = try runTool(["batches", remote, "--cache-limit", "1000", "--limit", "1"], environment: env).output
        #expect(small.status == 1 && small.stderr.contains("the cache limit 1000 B is too small: this run needs at least"), "\(small.stderr)")
    }

    @Test func twoMPIRanksTrainFromS3AsFromTheLocalCopyAndShareOneCacheDirectory() throws {
        let out = TempDirectory()
        let (cache, remote, bytes) = try Self.published(out)
        let quarter = String(bytes.reduce(0, +) / 4)
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))
        var recipe = Self.recipe
        recipe[try #require(recipe.firstIndex(of: "--epochs")) + 1] = "1"
        let a = try MPIRun.run(2, ["train", cache, "--out", out.path("local")] + recipe)
        #expect(a.status == 0, "\(a.stderr)")
        let b = try MPIRun.run(2, ["train", remote, "--out", out.path("remote"), "--cache-limit", quarter] + recipe, environment: env)
        #expect(b.status == 0, "\(b.stderr)")
        let ca = try Checkpoint.read(from: URL(fileURLWithPath: out.path("local/checkpoint.bin")))
        let cb = try Checkpoint.read(from: URL(fileURLWithPath: out.path("remote/checkpoint.bin")))
        #expect(ca.parameters == cb.parameters && ca.state == cb.state && ca.velocity == cb.velocity)
        #expect(try Self.logWithoutClocks(out.path("local")) == Self.logWithoutClocks(out.path("remote")))
        // Both ranks used the one cache directory: no partial download is left, and what stays is
        // within the limit.
        let files = FileManager.default.enumerator(atPath: out.path("fetched"))?.compactMap { $0 as? String } ?? []
        #expect(!files.contains { $0.hasSuffix(".part") }, "\(files)")
        let kept = try files.filter { $0.hasSuffix("data.mdb") }.map { try FileManager.default.attributesOfItem(atPath: out.path("fetched/\($0)"))[.size] as? Int ?? 0 }
        #expect(!kept.isEmpty && kept.reduce(0, +) <= Int(quarter)!, "\(kept)")
    }

    @Test func aBuildToS3PublishesWhatABuildAndPushWouldAndResumesItsUpload() throws {
        let out = TempDirectory(), src = TempDirectory()
        try makeLargeIDX(src, count: 600)
        let build = ["build", src.url.path, "--levels", "16,12", "--shards", "4", "--cache-version", "2", "--quiet"]
        let local = out.path("local")
        #expect(try Tool.run(build + ["--out", local]).status == 0)
        let bucket = try S3Server.newBucket()
        let env = S3Server.toolEnvironment(cacheDir: out.path("root"))
        let batches = ["batches", "--batch", "50", "--seed", "4", "--epochs", "1", "--shuffle", "shards:2"]

        // Shards go up as they are finished; the final publish finds them there.
        let direct = try runTool(build.filter { $0 != "--quiet" } + ["--out", "s3://\(bucket)/direct"], environment: env).output
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(direct.stdout.contains("4 shard files") && direct.stdout.contains("uploaded during the build") && direct.stdout.contains("4 already there"), "\(direct.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out.path("root/staging/\(bucket)-direct")), "the staging directory is removed")
        let a = try Tool.run(batches + [local])
        let b = try runTool(batches + ["s3://\(bucket)/direct"], environment: env).output
        #expect(a.status == 0 && b.status == 0 && a.stdout == b.stdout, "\(b.stderr)")
        let again = try runTool(build + ["--out", "s3://\(bucket)/direct"], environment: env).output
        #expect(again.status == 1 && again.stderr.contains("already holds a cache (--overwrite replaces it)"), "\(again.stderr)")

        // A build that finished in its staging directory but was not uploaded: --resume uploads it.
        let staging = out.path("staging")
        try FileManager.default.copyItem(atPath: local, toPath: staging)
        let resumed = try runTool(build.filter { $0 != "--quiet" } + ["--out", "s3://\(bucket)/resumed", "--staging", staging, "--resume"], environment: env).output
        #expect(resumed.status == 0 && resumed.stdout.contains("published to s3://\(bucket)/resumed"), "\(resumed.stdout)\(resumed.stderr)")
        let c = try runTool(batches + ["s3://\(bucket)/resumed"], environment: env).output
        #expect(c.status == 0 && c.stdout == a.stdout, "\(c.stderr)")
    }

    @Test func faultsOnTheWireAreRetriedAndChangeNothing() throws {
        let out = TempDirectory()
        let (cache, remote, bytes) = try Self.published(out)
        let proxy = try FaultProxy(["--seed", "7", "--faults", "reset,stall,truncate,503,flip", "--rate", "0.8", "--per-object", "2",
                                    "--stall", "3"], directory: out)
        defer { proxy.stop() }
        let env = S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("fetched"))
        let quarter = String(bytes.reduce(0, +) / 4)
        let a = try Tool.run(["train", cache, "--out", out.path("local")] + Self.recipe)
        #expect(a.status == 0, "\(a.stderr)")
        let (b, hung) = try runTool(["train", remote, "--out", out.path("remote"), "--cache-limit", quarter] + Self.recipe, environment: env, timeout: 240)
        #expect(!hung && b.status == 0, "\(b.stderr)")
        let ca = try Checkpoint.read(from: URL(fileURLWithPath: out.path("local/checkpoint.bin")))
        let cb = try Checkpoint.read(from: URL(fileURLWithPath: out.path("remote/checkpoint.bin")))
        #expect(ca.parameters == cb.parameters && ca.state == cb.state)
        #expect(try Self.logWithoutClocks(out.path("local")) == Self.logWithoutClocks(out.path("remote")))
        let kinds = Set(proxy.lines.filter { $0.hasPrefix("FAULT ") }.map { $0.split(separator: " ")[1] })
        #expect(kinds.isSuperset(of: ["reset", "stall", "truncate", "503", "flip"]), "faults injected: \(kinds)")
        let retries = try String(contentsOfFile: out.path("remote/log.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Trainer.EpochLog.self, from: Data($0.utf8)).remote?.retries ?? 0 }.reduce(0, +)
        #expect(retries > 0)
    }

    @Test func anObjectReplacedDuringADownloadIsAnErrorNotAMix() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try Self.published(out)
        let release = out.path("release")
        let proxy = try FaultProxy(["--faults", "replace", "--rate", "1", "--per-object", "1", "--match", "shard-00000/data.mdb",
                                    "--release-file", release], directory: out)
        defer { proxy.stop() }
        let env = S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("fetched"))
        let p = Process()
        p.executableURL = Tool.url
        p.arguments = ["export", remote, "--index", "0", "--level", "16", "-o", out.path("zero.png")]
        p.environment = env
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        try p.run()
        #expect(MPIRun.wait(60) { proxy.lines.contains { $0.hasPrefix("STALLED") } })
        // Another publisher replaces the object meanwhile (shard 1's bytes under shard 0's name).
        let location = try S3Location(remote)
        try S3Client(configuration: S3Server.configuration).put(location, "shard-00000/data.mdb", file: "\(cache)/shard-00001/data.mdb")
        _ = FileManager.default.createFile(atPath: release, contents: nil)
        let r = Tool.finish(p, o, e)
        #expect(r.status == 1, "\(r.stdout)")
        #expect(r.stderr.contains("shard-00000/data.mdb: the object changed on the server"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path("zero.png")))
    }

    @Test func verifyNamesAByteFlippedInAnUploadedShard() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try Self.published(out)
        let damaged = out.path("damaged.mdb")
        try FileManager.default.copyItem(atPath: "\(cache)/shard-00002/data.mdb", toPath: damaged)
        let first = try Manifest.load(from: URL(fileURLWithPath: cache)).shards[2].firstIndex
        let record = try CacheReader(url: URL(fileURLWithPath: cache)).makeSession().withRecord(index: first + 3, level: 16) { Array($0) }
        #expect(try CacheFixture.flipByte(in: damaged, inside: record, offset: record.count - 5))
        try S3Client(configuration: S3Server.configuration).put(try S3Location(remote), "shard-00002/data.mdb", file: damaged)
        let v = try runTool(["verify", remote], environment: S3Server.toolEnvironment(cacheDir: out.path("fetched"))).output
        #expect(v.status == 1)
        #expect(v.stdout.contains("bad: shard 2") && v.stdout.contains("shard-00002/data.mdb: the remote copy is damaged"), "\(v.stdout)")
    }

    @Test func badCredentialsAMissingBucketAndAWrongEndpointEndInOneLineWithoutHanging() throws {
        let out = TempDirectory()
        let (_, remote, _) = try Self.published(out)
        let cases: [(String, [String: String], String)] = [
            (remote, S3Server.toolEnvironment(secret: "wrong", cacheDir: out.path("a")), "SignatureDoesNotMatch"),
            ("s3://no-such-bucket-\(UInt32.random(in: 0...UInt32.max))/x", S3Server.toolEnvironment(cacheDir: out.path("b")), "HTTP 404"),
            (remote, S3Server.toolEnvironment(endpoint: "http://127.0.0.1:9", cacheDir: out.path("c")), "cannot reach the S3 endpoint"),
        ]
        for (location, env, fragment) in cases {
            let started = Date()
            let (r, hung) = try runTool(["inspect", location], environment: env, timeout: 30)
            #expect(!hung && r.status == 1, "\(location): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(fragment), "\(r.stderr)")
            #expect(Date().timeIntervalSince(started) < 20)
        }
        var unsigned = S3Server.toolEnvironment(cacheDir: out.path("d"))
        unsigned["AWS_ACCESS_KEY_ID"] = nil; unsigned["AWS_SECRET_ACCESS_KEY"] = nil
        let r = try runTool(["inspect", remote], environment: unsigned, timeout: 30).output
        #expect(r.status == 1 && r.stderr.contains("no S3 credentials"), "never unsigned: \(r.stderr)")
    }

    @Test func processesShareTheCacheDirectoryAndAKilledDownloadBlocksNothing() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try Self.published(out)
        let shared = out.path("shared")
        // The first process stalls in the middle of shard 0 (the proxy holds the body) and is killed.
        // Every process goes through the proxy: the cache directory belongs to one endpoint.
        let proxy = try FaultProxy(["--faults", "stall", "--rate", "1", "--per-object", "1", "--stall", "60",
                                    "--match", "shard-00000/data.mdb"], directory: out)
        defer { proxy.stop() }
        var env = S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: shared)
        env["PYRAMID_S3_STALL_SECONDS"] = "120"
        let p = Process()
        p.executableURL = Tool.url
        p.arguments = ["batches", remote, "--batch", "50", "--shuffle", "shards:1"]
        p.environment = env
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let parts = { (try? FileManager.default.subpathsOfDirectory(atPath: shared))?.filter { $0.hasSuffix(".part") } ?? [] }
        #expect(MPIRun.wait(60) { parts().contains { $0.hasSuffix("shard-00000/data.mdb.part") } })
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()

        // Two processes at once in the same directory (the proxy lets shard 0 through now): both
        // finish, with the same batches; the killed download's part is resumed or replaced.
        let local = try Tool.run(["batches", cache, "--batch", "50", "--shuffle", "shards:1"])
        let direct = S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: shared)
        let runs = try (0..<2).map { _ -> (Process, Pipe, Pipe) in
            let q = Process()
            q.executableURL = Tool.url
            q.arguments = ["batches", remote, "--batch", "50", "--shuffle", "shards:1"]
            q.environment = direct
            let o = Pipe(), e = Pipe()
            q.standardOutput = o; q.standardError = e
            try q.run()
            return (q, o, e)
        }
        for (q, o, e) in runs {
            let r = Tool.finish(q, o, e)
            #expect(r.status == 0 && r.stdout == local.stdout, "\(r.stderr)")
        }
        #expect(parts().isEmpty, "no partial download left behind: \(parts())")
        let files = (try FileManager.default.subpathsOfDirectory(atPath: shared)).filter { $0.hasSuffix("data.mdb") }
        #expect(files.count == 8)
    }
}
