import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidTrain
import Testing

/// Version 3 caches in object storage: level files are objects of their own, fetched, counted,
/// evicted and verified one by one; a publication may hold some levels only.
@Suite(.serialized, .enabled(if: S3Server.available, "no S3 server: run ./Tools/test (it starts one)"))
struct LevelFileRemoteTests {
    /// A version 3 cache of 2,000 samples at 16 and 12 px in 8 shards, and a new bucket.
    static func cache(_ out: TempDirectory) throws -> (cache: String, manifest: Manifest, bucket: String) {
        let src = TempDirectory()
        try makeLargeIDX(src, count: 2000)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,12", "--shards", "8", "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
        return (cache, try Manifest.load(from: URL(fileURLWithPath: cache)), try S3Server.newBucket())
    }

    static func fileBytes(_ m: Manifest, level: Int) -> Int {
        m.shards.reduce(0) { $0 + ($1.files?[Manifest.levelFileName(level)]?.bytes ?? 0) }
    }

    @Test func aRunAtOneSizeFetchesOnlyItsLevelsFilesWithinALimitBelowTheWholeCache() throws {
        let out = TempDirectory()
        let (cache, m, bucket) = try Self.cache(out)
        let remote = "s3://\(bucket)/v3"
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))
        let push = try runTool(["push", cache, remote], environment: env).output
        #expect(push.status == 0 && push.stdout.contains("26 objects sent"), "8 × (meta + 2 levels), labels, manifest: \(push.stdout)")
        let level12 = Self.fileBytes(m, level: 12), whole = m.files.reduce(0) { $0 + ($1.digest?.bytes ?? 0) }
        // A limit between the 12 px level's share and the whole cache.
        let limit = String(level12 + (whole - level12) / 4)
        #expect(Int(limit)! < whole)
        let recipe = ["--model", "resnet8", "--schedule", "fixed:12", "--epochs", "2", "--batch", "50", "--seed", "3",
                      "--threads", "1", "--quiet", "--shuffle", "shards:1"]
        let a = try Tool.run(["train", cache, "--out", out.path("local")] + recipe)
        let b = try runTool(["train", remote, "--out", out.path("remote"), "--cache-limit", limit] + recipe, environment: env).output
        #expect(a.status == 0 && b.status == 0, "\(b.stderr)")
        let ca = try Checkpoint.read(from: URL(fileURLWithPath: out.path("local/checkpoint.bin")))
        let cb = try Checkpoint.read(from: URL(fileURLWithPath: out.path("remote/checkpoint.bin")))
        #expect(ca.parameters == cb.parameters && ca.state == cb.state)
        let logs = try String(contentsOfFile: out.path("remote/log.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Trainer.EpochLog.self, from: Data($0.utf8)) }
        let fetched = logs.compactMap { $0.remote?.bytesFetched }.reduce(0, +)
        #expect(fetched > 0 && Double(fetched) <= 1.1 * Double(level12), "fetched \(fetched), the 12 px files hold \(level12)")
        let kept = try FileManager.default.subpathsOfDirectory(atPath: out.path("fetched")).filter { $0.hasSuffix(".mdb") }
        #expect(!kept.isEmpty && kept.allSatisfy { $0.hasSuffix("level-12.mdb") }, "only 12 px files: \(kept)")

        // Too small for one step's files: the message gives the level's share.
        let small = try runTool(["batches", remote, "--schedule", "fixed:16", "--cache-limit", "1000", "--limit", "1"], environment: env).output
        #expect(small.status == 1 && small.stderr.contains("is too small") && small.stderr.contains("level 16: "), "\(small.stderr)")
    }

    @Test func aPublicationOfSomeLevelsServesThemAndRefusesTheOthers() throws {
        let out = TempDirectory()
        let (cache, _, bucket) = try Self.cache(out)
        let remote = "s3://\(bucket)/only12"
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))
        let push = try runTool(["push", cache, remote, "--levels", "12"], environment: env).output
        #expect(push.status == 0 && push.stdout.contains("18 objects sent"), "8 × (meta + level 12), labels, manifest: \(push.stdout)")
        let args = ["--schedule", "fixed:12", "--batch", "50", "--seed", "4", "--shuffle", "shards:2"]
        let local = try Tool.run(["batches", cache] + args)
        let fetched = try runTool(["batches", remote] + args, environment: env).output
        #expect(fetched.status == 0 && fetched.stdout == local.stdout, "\(fetched.stderr)")
        let refused = try runTool(["batches", remote, "--schedule", "fixed:16", "--limit", "1"], environment: env).output
        #expect(refused.status == 64 && refused.stderr.contains("level 16") && refused.stderr.contains("(levels 12)"), "\(refused.stderr)")
        let verify = try runTool(["verify", remote, "--quiet"], environment: env).output
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let wrong = try runTool(["push", cache, "s3://\(bucket)/bad", "--levels", "20"], environment: env).output
        #expect(wrong.status == 1 && wrong.stderr.contains("level 20 is not in the cache"), "\(wrong.stderr)")
    }

    @Test func upgradeFromAndToObjectStorageGivesTheSameBatches() throws {
        let out = TempDirectory(), src = TempDirectory()
        try makeLargeIDX(src, count: 600)
        let v2 = out.path("v2")
        #expect(try Tool.run(["build", src.url.path, "--out", v2, "--levels", "16,12", "--shards", "3", "--cache-version", "2", "--quiet"]).status == 0)
        let bucket = try S3Server.newBucket()
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))
        #expect(try runTool(["push", v2, "s3://\(bucket)/v2"], environment: env).output.status == 0)
        let up = try runTool(["upgrade", "s3://\(bucket)/v2", "--out", "s3://\(bucket)/v3", "--quiet"], environment: env).output
        #expect(up.status == 0, "\(up.stderr)")
        let args = ["--schedule", "trd:16,12,p=0.5", "--epochs", "2", "--batch", "50", "--seed", "6", "--shuffle", "shards:1"]
        let a = try Tool.run(["batches", v2] + args)
        let b = try runTool(["batches", "s3://\(bucket)/v3"] + args, environment: env).output
        #expect(a.status == 0 && b.status == 0 && a.stdout == b.stdout, "\(b.stderr)")
        let inspect = try runTool(["inspect", "s3://\(bucket)/v3"], environment: env).output
        #expect(inspect.stdout.contains("version 3"), "\(inspect.stdout)")
    }
}
