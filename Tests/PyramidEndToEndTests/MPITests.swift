import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidTrain
import Testing

/// `mpirun -np N pyramid …` (Open MPI from Debian; Tools/bootstrap installs it). As root, as in CI,
/// mpirun needs --allow-run-as-root; --oversubscribe lets 3 ranks share 2 cores.
struct MPIRun {
    static let mpirun = "/usr/bin/mpirun"

    static func start(_ ranks: Int, _ arguments: [String], environment base: [String: String]? = nil) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", String(ranks), Tool.url.path] + arguments
        // Containers often forbid the cross-process memory reads (CMA) of Open MPI's shared-memory
        // single copy; plain copies work everywhere.
        var environment = base ?? ProcessInfo.processInfo.environment
        environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        return (p, out, err)
    }

    static func run(_ ranks: Int, _ arguments: [String], environment: [String: String]? = nil) throws -> Tool.Output {
        let (p, o, e) = try start(ranks, arguments, environment: environment)
        return Tool.finish(p, o, e)
    }

    /// The PIDs of the `pyramid` processes mpirun started (its children), by reading /proc.
    static func ranks(of mpirun: Process) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == mpirun.processIdentifier && stat.contains("(pyramid)")
        }.sorted()
    }

    /// Whether process `pid` still runs (exists and is not a zombie waiting to be reaped).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first.map { $0 != "Z" && $0 != "X" } ?? false
    }

    /// Waits until `condition` holds or `seconds` pass; returns whether it held.
    static func wait(_ seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }
}

@Suite(.serialized) struct MPITests {
    @Test func distributedBuildEqualsOneProcessAndAKilledRankStopsTheOthers() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 9000)
        let args = [src.url.path, "--levels", "28,20,14", "--shards", "3", "--quiet"]
        let reference = out.path("reference")
        #expect(try Tool.run(["build"] + args + ["--out", reference, "--workers", "2"]).status == 0)

        let two = out.path("two")
        let r = try MPIRun.run(2, ["build"] + args + ["--out", two])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try recordBytes(two) == recordBytes(reference))
        let manifest = try CacheReader(url: URL(fileURLWithPath: two)).manifest
        let referenceManifest = try CacheReader(url: URL(fileURLWithPath: reference)).manifest
        // The same shard ranges (the LMDB files' bytes, and so their digests, follow the commits).
        #expect(manifest.shards.map { [$0.firstIndex, $0.count] } == referenceManifest.shards.map { [$0.firstIndex, $0.count] }
                && manifest.mean == referenceManifest.mean
                && manifest.labelHistogram == referenceManifest.labelHistogram)

        // Kill one rank of a second build: mpirun stops the other within seconds, naming the rank;
        // no manifest; then three ranks finish it into the same cache.
        let killed = out.path("killed")
        let (p, o, e) = try MPIRun.start(2, ["build"] + args + ["--out", killed])
        let data = "\(killed)/shard-00001/level-28.mdb"
        #expect(MPIRun.wait(60) { ((try? FileManager.default.attributesOfItem(atPath: data)[.size] as? Int) ?? 0) > 100_000 || !p.isRunning })
        let ranks = MPIRun.ranks(of: p)
        try #require(p.isRunning && ranks.count == 2, "the build finished before a rank could be killed (ranks \(ranks))")
        kill(ranks[1], SIGKILL)
        let stopped = Date()
        let k = Tool.finish(p, o, e)
        #expect(Date().timeIntervalSince(stopped) < 15)
        #expect(k.status != 0)
        #expect(k.stderr.contains("rank 1") && k.stderr.contains("signal 9"), "\(k.stderr)")
        #expect(MPIRun.wait(5) { !ranks.contains(where: MPIRun.isRunning) }, "a rank outlived the job")
        #expect(!FileManager.default.fileExists(atPath: "\(killed)/manifest.json"))
        let resumed = try MPIRun.run(3, ["build"] + args + ["--out", killed, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try recordBytes(killed) == recordBytes(reference))
    }

    @Test func theSplitGradientEqualsTheWholeBatchs() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 64)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16", "--quiet"]).status == 0)
        for ranks in [2, 3] {
            let r = try MPIRun.run(ranks, ["bench", "mpi", cache, "--model", "resnet8", "--size", "16", "--batch", "24", "--threads", "1", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
            #expect(object["processes"] as? Int == ranks)
            let error = try #require(object["relativeError"] as? Double)
            #expect(error <= 1e-5, "\(ranks) ranks: \(error) at \(object["worstTensor"] ?? "?")")
            #expect(abs((object["splitLoss"] as? Double ?? 0) - (object["wholeLoss"] as? Double ?? 1)) <= 1e-5)
        }
    }

    @Test func distributedTrainingResumesBitIdenticallyAndOnOtherProcessCounts() throws {
        let src = TempDirectory(), out = TempDirectory()
        // 54 steps per epoch (about 1.3 s in a debug build on the Zen 4): the interruption 0.3 s
        // after the first checkpoint lands inside the second epoch (with 9 steps and 1.5 s, the
        // faster trainer had finished the run before it).
        try makeLargeIDX(src, count: 2592)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "12", "--quiet"]).status == 0)
        let recipe = ["--model", "resnet8", "--schedule", "fixed:12", "--epochs", "2", "--batch", "48", "--seed", "5",
                      "--test", cache, "--threads", "1", "--quiet"]
        let reference = out.path("reference")
        let r = try MPIRun.run(2, ["train", cache, "--out", reference] + recipe)
        #expect(r.status == 0, "\(r.stderr)")

        // The same run, interrupted (SIGINT to one rank: the step's allreduce carries the request, so
        // both stop at the same step), then resumed on two ranks: bit-identical.
        let run = out.path("run")
        let (p, o, e) = try MPIRun.start(2, ["train", cache, "--out", run] + recipe)
        #expect(MPIRun.wait(60) { FileManager.default.fileExists(atPath: "\(run)/checkpoint.bin") || !p.isRunning })
        usleep(300_000)
        let ranks = MPIRun.ranks(of: p)
        try #require(p.isRunning && ranks.count == 2, "the run ended before it could be interrupted")
        kill(ranks[1], SIGINT)
        let i = Tool.finish(p, o, e)
        #expect(i.stderr.contains("interrupted in epoch"), "\(i.stderr)")
        #expect(!i.stderr.contains("MPI_ABORT"), "\(i.stderr)")
        let stoppedAt = try Checkpoint.read(from: URL(fileURLWithPath: "\(run)/checkpoint.bin")).header
        #expect(stoppedAt.nextCursor > 0 || stoppedAt.nextEpoch > 0, "the interruption left no mid-run checkpoint")
        for name in ["one", "three"] { try FileManager.default.copyItem(atPath: run, toPath: out.path(name)) }
        let resumed = try MPIRun.run(2, ["train", "--resume", run, "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try Checkpoint.read(from: URL(fileURLWithPath: "\(reference)/checkpoint.bin"))
        let b = try Checkpoint.read(from: URL(fileURLWithPath: "\(run)/checkpoint.bin"))
        #expect(a.parameters == b.parameters && a.state == b.state && a.velocity == b.velocity)
        #expect(a.header.steps == b.header.steps && b.header.epochsDone == 2)
        #expect(try logWithoutClocks(reference) == logWithoutClocks(run))

        // The interrupted run continues on one process and on three (48 divides by both).
        let one = try Tool.run(["train", "--resume", out.path("one"), "--quiet"])
        #expect(one.status == 0, "\(one.stderr)")
        let three = try MPIRun.run(3, ["train", "--resume", out.path("three"), "--quiet"])
        #expect(three.status == 0, "\(three.stderr)")
        for name in ["one", "three"] {
            let c = try Checkpoint.read(from: URL(fileURLWithPath: out.path("\(name)/checkpoint.bin")))
            #expect(c.header.epochsDone == 2 && c.parameters.allSatisfy(\.isFinite), "\(name)")
            let log = try String(contentsOfFile: out.path("\(name)/log.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(log.count == 2, "\(name)")
        }
        // A batch that does not divide among the processes is refused, naming the flag.
        let uneven = try MPIRun.run(2, ["train", cache, "--out", out.path("uneven"), "--batch", "45", "--epochs", "1", "--model", "resnet8"])
        #expect(uneven.status != 0 && uneven.stderr.contains("--batch: 45 images per step cannot be split evenly among 2 processes"), "\(uneven.stderr)")
    }

    /// log.jsonl without its wall-clock fields.
    func logWithoutClocks(_ run: String) throws -> [[String: String]] {
        try String(contentsOfFile: "\(run)/log.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            // bytesRead is this process's reads (rank 0's share; a resumed epoch counts from the resume).
            for key in ["seconds", "imagesPerSecond", "allreduceSeconds", "bytesRead"] { object[key] = nil }
            return object.mapValues { "\($0)" }
        }
    }
}
