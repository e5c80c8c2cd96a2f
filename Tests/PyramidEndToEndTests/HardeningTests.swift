import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// Issue 32's local cases: outputs that are open descriptors, resumes on the wrong data, numbers
/// that used to trap, manifests with absurd values. Each runs the real binary.
@Suite struct HardeningTests {
    /// Runs the tool with standard output going to `stdout` (an open file handle).
    static func run(_ arguments: [String], stdout: FileHandle, cwd: String? = nil) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = Tool.url
        p.arguments = arguments
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let err = Pipe()
        p.standardOutput = stdout; p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self))
    }

    @Test func exportToStandardOutputWritesIntoThePipeOrTheAppendedFile() throws {
        let out = TempDirectory()
        let cache = try HostileInputTests.smallCache(out)
        for target in ["-", "/dev/stdout", "/proc/self/fd/1"] {
            // A pipe: the PNG arrives on it, the message goes to standard error.
            let (p, o, e) = try Tool.start(["export", cache, "--grid", "2", "-o", target])
            let png = o.fileHandleForReading.readDataToEndOfFile()
            let message = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(target): \(message)")
            #expect(Array(png.prefix(4)) == HostileInputTests.pngSignature, "\(target): stdout carries the PNG")
            #expect(message.contains("wrote \(target)"), "\(target): \(message)")

            // A file the shell opened for append (`>> log`): what was there stays, the PNG follows.
            let log = out.path("log-\(target.count)")
            try "KEEP\n".write(toFile: log, atomically: false, encoding: .utf8)
            let handle = try #require(FileHandle(forWritingAtPath: log))
            handle.seekToEndOfFile()
            let r = try Self.run(["export", cache, "--grid", "2", "-o", target], stdout: handle)
            try handle.close()
            #expect(r.status == 0, "\(target): \(r.stderr)")
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: log)))
            #expect(bytes.starts(with: Array("KEEP\n".utf8)), "\(target): the file's content was replaced")
            #expect(Array(bytes.dropFirst(5).prefix(4)) == HostileInputTests.pngSignature, "\(target): the PNG follows")
        }
    }

    @Test func evalRefusesTwoResultsOnStandardOutput() throws {
        let r = try Tool.run(["eval", "/nonexistent-run", "--chart", "-", "--json"])
        #expect(r.status == 64 && r.stderr.contains("--chart: goes to standard output, and so does --json"), "\(r.stderr)")
    }

    static let recipe = ["--model", "resnet8", "--epochs", "2", "--batch", "50", "--threads", "1", "--workers", "1", "--quiet"]

    @Test func aResumeRefusesACheckpointPastItsEpochsAndAnotherCache() throws {
        let out = TempDirectory()
        let cache = try HostileInputTests.smallCache(out)
        let run = out.path("run")
        let t = try Tool.run(["train", cache, "--out", run] + Self.recipe)
        try #require(t.status == 0, "\(t.stderr)")

        // run.json edited down to fewer epochs than the checkpoint has done: an error, no trap.
        let config = URL(fileURLWithPath: run).appendingPathComponent("run.json")
        let original = try String(contentsOf: config, encoding: .utf8)
        for epochs in ["1", "0", "-1"] {
            try original.replacingOccurrences(of: "\"epochs\" : 2", with: "\"epochs\" : \(epochs)").write(to: config, atomically: true, encoding: .utf8)
            let r = try Tool.run(["train", "--resume", run, "--quiet"])
            #expect(r.status == 1 || r.status == 64, "epochs \(epochs): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(epochs == "1" ? "checkpoint belongs to another run" : "must be at least 1"), "epochs \(epochs): \(r.stderr)")
        }
        try original.write(to: config, atomically: true, encoding: .utf8)

        // The path is recorded absolute: a resume from another directory opens the same cache.
        #expect(original.contains("\"cache\" : \"\(URL(fileURLWithPath: cache).standardizedFileURL.path.replacingOccurrences(of: "/", with: "\\/"))\""), "\(original)")

        // The cache rebuilt in place (another build): refused, naming both builds.
        let src = TempDirectory()
        try makeLargeIDX(src, count: 300)
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,8", "--overwrite", "--quiet"]).status == 0)
        var extended = original.replacingOccurrences(of: "\"epochs\" : 2", with: "\"epochs\" : 3")
        extended = extended.replacingOccurrences(of: "\"epochs\" : 2", with: "\"epochs\" : 3")
        try extended.write(to: config, atomically: true, encoding: .utf8)
        let other = try Tool.run(["train", "--resume", run, "--quiet"])
        #expect(other.status != 0 && other.stderr.contains("is not the cache this run was made on"), "\(other.stderr)")
    }

    @Test func aCheckpointFromAnotherRunAndADamagedRunFileAreNamed() throws {
        let out = TempDirectory()
        let cache = try HostileInputTests.smallCache(out)
        for name in ["a", "b"] {
            let t = try Tool.run(["train", cache, "--out", out.path(name)] + Self.recipe)
            try #require(t.status == 0, "\(t.stderr)")
        }
        // Run b's checkpoint copied into run a (same model, same length): refused, not resumed.
        let config = URL(fileURLWithPath: out.path("a/run.json"))
        let original = try String(contentsOf: config, encoding: .utf8)
        try original.replacingOccurrences(of: "\"epochs\" : 2", with: "\"epochs\" : 3").write(to: config, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: out.path("a/checkpoint.bin"))
        try FileManager.default.copyItem(atPath: out.path("b/checkpoint.bin"), toPath: out.path("a/checkpoint.bin"))
        let swapped = try Tool.run(["train", "--resume", out.path("a"), "--quiet"])
        #expect(swapped.status == 1 && swapped.stderr.contains("it belongs to run") && swapped.stderr.contains("copied in from another run"), "\(swapped.stderr)")
        // A negative seed in run.json is named, not "holds no run".
        try original.replacingOccurrences(of: "\"seed\" : 0", with: "\"seed\" : -3").write(to: config, atomically: true, encoding: .utf8)
        let seed = try Tool.run(["train", "--resume", out.path("a"), "--quiet"])
        #expect(seed.status == 1 && seed.stderr.contains("seed -3 is not a whole number"), "\(seed.stderr)")
    }

    @Test func numbersThatWouldOverflowOrAllocateWithoutBoundAreRefused() throws {
        let out = TempDirectory()
        let cache = try HostileInputTests.smallCache(out)
        let cases: [([String], String)] = [
            (["batches", cache, "--world-size", "100000000000000000", "--limit", "1"], "world-size"),
            (["plan", "--schedule", "fixed:28", "--samples", "9223372036854775807"], "--samples"),
            (["plan", "--schedule", "fixed:28", "--epochs", "100000000000", "--samples", "10"], "--epochs"),
            (["plan", "--schedule", "fixed:28", "--samples", "1000000000000", "--batch", "1"], "steps per epoch"),
            (["batches", cache, "--batch", "100000000000", "--limit", "1"], "batch"),
            (["train", cache, "--out", out.path("r"), "--milestones", "-1", "--lr-schedule", "multistep", "--epochs", "3"], "milestones"),
        ]
        for (arguments, fragment) in cases {
            let r = try Tool.run(arguments)
            #expect(r.status == 64 || r.status == 1, "\(arguments): status \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(fragment), "\(arguments): \(r.stderr)")
        }
    }

    @Test func manifestValuesOutOfRangeAreNamed() throws {
        let out = TempDirectory()
        let cache = try HostileInputTests.smallCache(out)
        let path = "\(cache)/manifest.json"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(original.utf8)) as? [String: Any])
        func edit(_ change: (inout [String: Any]) -> Void) throws {
            var m = json
            change(&m)
            try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: path))
        }
        let cases: [((inout [String: Any]) -> Void, String)] = [
            ({ $0["mean"] = [1e300] }, "must hold one value in 0...1"),
            ({ var s = $0["shape"] as! [String: Any]; s["margin"] = 1e300; $0["shape"] = s }, "margin 1...16"),
            ({ $0["sampleCount"] = Int.max }, "sampleCount 9223372036854775807 is outside"),
            ({ var shards = $0["shards"] as! [[String: Any]]; shards[0]["count"] = -5; $0["shards"] = shards }, "holds -5 samples"),
        ]
        for (change, fragment) in cases {
            try edit(change)
            let r = try Tool.run(["inspect", cache])
            #expect(r.status == 1 && r.stderr.contains(fragment), "\(fragment): \(r.stderr)")
        }
        try "{\"formatVersion\": 2, ".write(toFile: path, atomically: true, encoding: .utf8)
        let truncated = try Tool.run(["inspect", cache])
        #expect(truncated.status == 1 && truncated.stderr.contains("not a JSON object"), "\(truncated.stderr)")
    }
}
