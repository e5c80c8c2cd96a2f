import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// One writer at a time: a second build into the same output, or a second training of the same
/// run directory, is refused naming the holder's PID while the first runs; the first is unharmed.
@Suite struct LockTests {
    /// Waits until `path` exists or `process` ends (at most a minute).
    func waitFor(_ path: String, while process: Process) {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && process.isRunning && !FileManager.default.fileExists(atPath: path) { usleep(20_000) }
    }

    @Test func aSecondBuildIntoTheSameOutputIsRefused() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 12000)
        let cache = out.path("cache")
        let args = ["build", src.url.path, "--levels", "28,24,20,16,14,12", "--out", cache, "--workers", "1", "--quiet"]
        let (p, o, e) = try Tool.start(args)
        waitFor("\(cache)/shard-00000/meta.mdb", while: p)
        #expect(p.isRunning, "the build finished before a second one could start")
        let second = try Tool.run(args + ["--overwrite"])
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("\(cache): another pyramid process (PID \(p.processIdentifier)) is writing here"), "\(second.stderr)")
        let first = Tool.finish(p, o, e)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try Tool.run(["verify", cache, "--quiet"]).status == 0)
        // Once the first is done, the directory is free again.
        #expect(try Tool.run(args + ["--overwrite", "--limit", "100"]).status == 0)
    }

    @Test func aSecondTrainingOfTheSameRunIsRefused() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 400)
        let cache = out.path("cache"), run = out.path("run")
        #expect(try Tool.run(["build", src.url.path, "--levels", "16", "--out", cache, "--quiet"]).status == 0)
        let (p, o, e) = try Tool.start(["train", cache, "--out", run, "--model", "resnet8", "--epochs", "2", "--batch", "8", "--quiet"])
        waitFor("\(run)/\(DirectoryLock.fileName)", while: p)
        #expect(p.isRunning, "the training finished before a second one could start")
        let second = try Tool.run(["train", "--resume", run, "--quiet"])
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("another pyramid process (PID \(p.processIdentifier))"), "\(second.stderr)")
        let first = Tool.finish(p, o, e)
        #expect(first.status == 0, "\(first.stderr)")
        let log = try String(contentsOfFile: "\(run)/log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2, "every epoch logged once")
    }
}
