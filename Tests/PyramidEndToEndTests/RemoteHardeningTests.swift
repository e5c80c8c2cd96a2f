import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// What is published and read remotely is checked against a digest made before it left
/// (issue 32, items 1–8): each test breaks one link of that chain.
@Suite(.serialized, .enabled(if: S3Server.available, "no S3 server: run ./Tools/test (it starts one)"))
struct RemoteHardeningTests {
    @Test func aPushDamagedOnTheWayIsRefusedBySentAgainAndADamagedCopyIsRepaired() throws {
        let out = TempDirectory()
        let src = TempDirectory()
        try makeLargeIDX(src, count: 600)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,12", "--shards", "3", "--cache-version", "2", "--quiet"]).status == 0)
        let remote = "s3://\(try S3Server.newBucket())/pushed"
        // Every shard's first PUT has one byte flipped between the client and the server.
        let proxy = try FaultProxy(["--put-faults", "flip", "--faults", "", "--per-object", "1"], directory: out)
        defer { proxy.stop() }
        let push = try runTool(["push", cache, remote], environment: S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("u"))).output
        #expect(push.status == 0, "\(push.stderr)")
        #expect(proxy.lines.filter { $0.hasPrefix("FAULT putflip") }.count == 3, "\(proxy.lines)")
        let env = S3Server.toolEnvironment(cacheDir: out.path("fetched"))
        let verify = try runTool(["verify", remote], environment: env).output
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok:"), "the server stored what was sent: \(verify.stdout)\(verify.stderr)")

        // A copy damaged in place (same size, another content, the client's metadata untouched)
        // is not "already there": the next push replaces it.
        let damaged = out.path("damaged.mdb")
        try FileManager.default.copyItem(atPath: "\(cache)/shard-00001/data.mdb", toPath: damaged)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: damaged))
        try handle.seek(toOffset: 5000); let byte = try #require(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: 5000); try handle.write(contentsOf: [byte ^ 0xFF]); try handle.close()
        let digest = try #require(Manifest.FileDigest(ofFile: "\(cache)/shard-00001/data.mdb"))
        try S3Client(configuration: S3Server.configuration).put(try S3Location(remote), "shard-00001/data.mdb", file: damaged, metadata: ["xxh3": digest.xxh3])
        let repair = try runTool(["push", cache, remote], environment: env).output
        #expect(repair.status == 0 && repair.stdout.contains("2 objects sent"), "the damaged shard and the manifest: \(repair.stdout)")
        let again = try runTool(["verify", remote], environment: S3Server.toolEnvironment(cacheDir: out.path("fetched2"))).output
        #expect(again.status == 0, "\(again.stdout)")
    }

    @Test func aManifestDamagedInTransitIsFetchedAgainAndNeverKept() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try RemoteCacheTests.published(out)
        let proxy = try FaultProxy(["--faults", "flip", "--rate", "1", "--per-object", "1", "--match", "manifest.json"], directory: out)
        defer { proxy.stop() }
        let args = ["--batch", "50", "--seed", "2", "--shuffle", "shards:1", "--limit", "6"]
        let local = try Tool.run(["batches", cache] + args)
        let fetched = try runTool(["batches", remote] + args, environment: S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("f"))).output
        #expect(proxy.lines.contains { $0.hasPrefix("FAULT flip") && $0.contains("manifest.json") }, "\(proxy.lines)")
        #expect(fetched.status == 0 && fetched.stdout == local.stdout, "\(fetched.stderr)")
        let kept = (try FileManager.default.subpathsOfDirectory(atPath: out.path("f"))).filter { $0.hasSuffix("manifest.json") }
        #expect(kept.count == 1)
        for path in kept {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out.path("f/\(path)"))))
            #expect(ManifestSeal.check(bytes) == .sound)
        }
    }

    @Test func verifyChildrenReadThePublicationTheirParentRead() throws {
        let out = TempDirectory()
        let (_, remote, _) = try RemoteCacheTests.published(out)
        let env = S3Server.toolEnvironment(cacheDir: out.path("f"))
        // A shard child pinned to another manifest ETag (the prefix was republished): it says so.
        let child = try runTool(["verify", remote, "--shard", "0", "--manifest-etag", "\"0123456789abcdef0123456789abcdef\""], environment: env).output
        #expect(child.stdout.contains("the object changed on the server") && child.stdout.contains("manifest.json"), "\(child.stdout)")
        let head = try #require(try S3Client(configuration: S3Server.configuration).head(try S3Location(remote), Manifest.fileName))
        let pinned = try runTool(["verify", remote, "--shard", "0", "--manifest-etag", head.etag], environment: env).output
        #expect(pinned.stdout.contains("\"done\":true"), "\(pinned.stdout)")
    }

    @Test func aResumedBuildToS3DoesNotRepublishOverAFinishedCache() throws {
        let out = TempDirectory()
        let (_, remote, _) = try RemoteCacheTests.published(out)
        let src = TempDirectory()
        try makeLargeIDX(src, count: 100)
        let r = try runTool(["build", src.url.path, "--out", remote, "--levels", "16", "--resume", "--staging", out.path("staging"), "--quiet"],
                            environment: S3Server.toolEnvironment(cacheDir: out.path("f"))).output
        #expect(r.status == 1 && r.stderr.contains("already holds a cache") && r.stderr.contains("--overwrite replaces it"), "\(r.stderr)")
        let inspect = try runTool(["inspect", remote], environment: S3Server.toolEnvironment(cacheDir: out.path("g"))).output
        #expect(inspect.stdout.contains("2000 in 8 shards"), "the published cache is untouched: \(inspect.stdout)")
    }

    @Test func aLinkThatResetsEveryFewKilobytesStillDeliversEveryShard() throws {
        let out = TempDirectory()
        let (cache, remote, bytes) = try RemoteCacheTests.published(out)
        // Each body is cut after a twentieth of the largest shard: ~20 attempts, all making progress.
        let every = bytes.max()! / 20
        let proxy = try FaultProxy(["--faults", "", "--reset-every", String(every)], directory: out)
        defer { proxy.stop() }
        let args = ["--batch", "50", "--seed", "2", "--shuffle", "shards:1"]
        let local = try Tool.run(["batches", cache] + args)
        let (r, hung) = try runTool(["batches", remote] + args, environment: S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("f")), timeout: 240)
        #expect(!hung && r.status == 0 && r.stdout == local.stdout, "\(r.stderr)")
        #expect(proxy.lines.filter { $0.hasPrefix("FAULT resetevery") }.count >= 8 * 15, "\(proxy.lines.count)")
    }

    @Test func aServerThatIgnoresRangesIsReadFromTheStartNotCalledChanged() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try RemoteCacheTests.published(out)
        // Every shard's first GET breaks mid-body; the resume (a range request) gets the whole object.
        let proxy = try FaultProxy(["--faults", "reset", "--rate", "1", "--per-object", "1", "--ignore-range"], directory: out)
        defer { proxy.stop() }
        let args = ["--batch", "50", "--seed", "2", "--shuffle", "shards:1"]
        let local = try Tool.run(["batches", cache] + args)
        let (r, hung) = try runTool(["batches", remote] + args, environment: S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("f")), timeout: 180)
        #expect(!hung && r.status == 0 && r.stdout == local.stdout, "\(r.stderr)")
        #expect(proxy.lines.contains { $0.hasPrefix("IGNORED-RANGE") }, "a resume was asked for: \(proxy.lines.prefix(5))")
    }

    @Test func oneResponseOfTheWrongSizeIsFetchedAgainNotCalledDamaged() throws {
        let out = TempDirectory()
        let (cache, remote, _) = try RemoteCacheTests.published(out)
        let proxy = try FaultProxy(["--faults", "short", "--rate", "1", "--per-object", "1"], directory: out)
        defer { proxy.stop() }
        let args = ["--batch", "50", "--seed", "2", "--shuffle", "shards:1"]
        let local = try Tool.run(["batches", cache] + args)
        let (r, hung) = try runTool(["batches", remote] + args, environment: S3Server.toolEnvironment(endpoint: proxy.endpoint, cacheDir: out.path("f")), timeout: 180)
        #expect(!hung && r.status == 0 && r.stdout == local.stdout, "\(r.stderr)")
        #expect(proxy.lines.filter { $0.hasPrefix("FAULT short") }.count == 8, "\(proxy.lines.prefix(10))")
    }

    @Test func anHTTPSEndpointIsCheckedAgainstTheCABundleAWSToolsName() throws {
        let out = TempDirectory()
        let (_, remote, _) = try RemoteCacheTests.published(out)
        let cert = out.path("cert.pem"), key = out.path("key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert]
        openssl.standardOutput = FileHandle.nullDevice; openssl.standardError = FileHandle.nullDevice
        try openssl.run(); openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl could not make a certificate")
        let proxy = try FaultProxy(["--faults", "", "--tls-cert", cert, "--tls-key", key], directory: out)
        defer { proxy.stop() }
        let https = "https://127.0.0.1:\(proxy.port)"

        let untrusted = try runTool(["inspect", remote], environment: S3Server.toolEnvironment(endpoint: https, cacheDir: out.path("a")), timeout: 60).output
        #expect(untrusted.status == 1 && untrusted.stderr.contains("cannot reach the S3 endpoint"), "a self-signed certificate is refused: \(untrusted.stderr)")

        var env = S3Server.toolEnvironment(endpoint: https, cacheDir: out.path("b"))
        env["AWS_CA_BUNDLE"] = cert
        let trusted = try runTool(["inspect", remote], environment: env, timeout: 60).output
        #expect(trusted.status == 0 && trusted.stdout.contains("2000 in 8 shards"), "\(trusted.stderr)")

        let config = out.path("config")
        try "[default]\nca_bundle = \(cert)\n".write(toFile: config, atomically: true, encoding: .utf8)
        env = S3Server.toolEnvironment(endpoint: https, cacheDir: out.path("c"))
        env["AWS_CONFIG_FILE"] = config
        let profile = try runTool(["inspect", remote], environment: env, timeout: 60).output
        #expect(profile.status == 0, "the profile's ca_bundle: \(profile.stderr)")

        env["AWS_CA_BUNDLE"] = out.path("missing.pem")
        let missing = try runTool(["inspect", remote], environment: env, timeout: 60).output
        #expect(missing.status == 1 && missing.stderr.contains("missing.pem") && missing.stderr.contains("AWS_CA_BUNDLE"), "\(missing.stderr)")
    }

    @Test func credentialsInAnEndpointAndAFileAsCacheDirectoryGiveMessagesThatHelp() throws {
        let out = TempDirectory()
        let (_, remote, _) = try RemoteCacheTests.published(out)
        let secret = try runTool(["inspect", remote], environment: S3Server.toolEnvironment(endpoint: "http://admin:hunter2@127.0.0.1:9", cacheDir: out.path("a")), timeout: 30).output
        #expect(secret.status == 1 && secret.stderr.contains("http://***@127.0.0.1:9") && !secret.stderr.contains("hunter2"), "\(secret.stderr)")

        let file = out.path("a-file")
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let r = try runTool(["inspect", remote, "--cache-dir", file], environment: S3Server.toolEnvironment(cacheDir: out.path("b"))).output
        #expect(r.status == 1 && r.stderr.contains("\(file): is a file, not a directory") && !r.stderr.contains("NSCocoaErrorDomain"), "\(r.stderr)")
    }
}
