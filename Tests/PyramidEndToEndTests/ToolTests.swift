import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidImageTestSupport
import Testing

/// Runs the real `pyramid` binary built beside the tests.
struct Tool {
    static let url: URL = {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = here.deletingLastPathComponent()
        for _ in 0..<4 { // the runner may sit inside a bundle folder
            let candidate = dir.appendingPathComponent("pyramid")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/pyramid")
    }()

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    static func start(_ arguments: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = url
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        return (p, out, err)
    }

    static func finish(_ p: Process, _ out: Pipe, _ err: Pipe) -> Output {
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        if environment.isEmpty {
            let (p, o, e) = try start(arguments)
            return finish(p, o, e)
        }
        let p = Process()
        p.executableURL = url
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        return finish(p, out, err)
    }
}

/// A folder of a few small images, one of them broken.
func makeTinyFolder(_ dir: TempDirectory) throws {
    for (c, name) in ["cat", "dog"].enumerated() {
        try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        for i in 0..<4 {
            try Fixtures.writeImage(Fixtures.pattern(width: 60, height: 45, channels: 3, seed: i + 10 * c), width: 60, height: 45, channels: 3, to: dir.path("\(name)/\(i).jpg"))
        }
    }
    try "not a jpeg".write(toFile: dir.path("dog/broken.jpg"), atomically: true, encoding: .utf8)
}

/// An IDX source large enough that a debug build takes several seconds.
func makeLargeIDX(_ dir: TempDirectory, count: Int) throws {
    try Fixtures.writeIDXSource(directory: dir.url.path, count: count, noisy: true, gzip: false)
}

func recordBytes(_ dir: String) throws -> [[UInt8]] { try CacheFixture.recordBytes(URL(fileURLWithPath: dir)) }

@Suite struct ToolTests {
    @Test func buildInspectVerifyExportOnATinyFolder() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "32,24,16", "--workers", "2"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stdout.contains("built 8 samples at 3 levels (32,24,16)"))
        #expect(b.stdout.contains("1 skipped"))
        #expect(b.stderr.isEmpty, "no progress line when not on a terminal: \(b.stderr)")
        let report = try String(contentsOfFile: "\(cache)/build-report.json", encoding: .utf8)
        #expect(report.contains("broken.jpg") && report.contains("not an image"))

        let i = try Tool.run(["inspect", cache])
        #expect(i.status == 0)
        #expect(i.stdout.contains("samples      8 in 1 shard, 1 skipped"))
        #expect(i.stdout.contains("cat 4, dog 4"))
        let j = try Tool.run(["inspect", cache, "--json"])
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(j.stdout.utf8))
        #expect(manifest.sampleCount == 8 && manifest.levelSizes == [32, 24, 16] && manifest.classes == ["cat", "dog"])

        let v = try Tool.run(["verify", cache])
        #expect(v.status == 0 && v.stdout.hasPrefix("ok: 32 records"), "\(v.stdout)")

        let e = try Tool.run(["export", cache, "--grid", "8", "-o", out.path("sheet.png")])
        #expect(e.status == 0 && FileManager.default.fileExists(atPath: out.path("sheet.png")))
        let one = try Tool.run(["export", cache, "--index", "5", "--level", "16", "-o", out.path("five.png")])
        #expect(one.status == 0 && one.stdout.contains("sample 5 at level 16"))
    }

    @Test func verifyNamesTheDamagedRecordAndFails() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "32,16", "--quiet"]).status == 0)
        let record = try CacheReader(url: URL(fileURLWithPath: cache)).makeSession().withRecord(index: 6, level: 32) { Array($0) }
        #expect(try CacheFixture.flipByte(in: try CacheFixture.shardFile(cache, level: 32), inside: record, offset: record.count - 3))
        let v = try Tool.run(["verify", cache, "--quiet"])
        #expect(v.status == 1)
        #expect(v.stdout.contains("bad: shard 0 index 6 level 32"), "\(v.stdout)")
        #expect(v.stdout.contains("1 bad record of"))
    }

    /// Each bad command: its exit status and a fragment of its one-line error.
    @Test(arguments: [
        (["build", "/nonexistent/src", "--out", "/tmp/pyramid-e2e-x", "--levels", "28"], Int32(1), "/nonexistent/src: no such file or directory"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--levels", "28,abc"], 64, "--levels: 'abc' is not a whole number"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--levels", "28", "--channels", "2"], 64, "--channels: must be 1 or 3, not 2"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--crop", "middle"], 64, "The value 'middle' is invalid for '--crop <crop>'. Please provide one of 'center' and 'full'"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--resume", "--overwrite"], 64, "--resume and --overwrite cannot be used together"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--filter", "up"], 64, "The value 'up' is invalid for '--filter <filter>'. Please provide one of 'none' and 'sub'"),
        (["build", "SRC", "--out", "/tmp/pyramid-e2e-x", "--levels", "28", "--format", "png"], 64, "The value 'png' is invalid for '--format <format>'. Please provide one of 'folder', 'list'"),
        (["build", "SRC", "--out", "/proc/pyramid-e2e/out", "--levels", "16"], 1, "/proc/pyramid-e2e/out: cannot create"),
        (["build", "SRC", "--out", "EXISTING", "--levels", "16"], 1, "already holds a cache (--overwrite replaces it)"),
        (["inspect", "/tmp"], 1, "/tmp: no manifest.json"),
        (["verify", "/nonexistent/cache"], 1, "/nonexistent/cache: no such cache directory"),
        (["export", "EXISTING", "--index", "99", "-o", "/tmp/pyramid-e2e.png"], 1, "sample index 99 is out of range (the cache has 8 samples)"),
        (["export", "EXISTING", "-o", "/tmp/pyramid-e2e.png"], 64, "give exactly one of --index I or --grid N"),
        (["plan", "--schedule", "fixed:28"], 64, "give a cache or --samples N"),
        (["plan", "--samples", "100", "--schedule", "trd:28,14"], 64, "--schedule: invalid schedule 'trd:28,14': p= (participation rate) is required"),
        (["plan", "EXISTING", "--schedule", "mixsize:16,40@0.5,0.5"], 64, "the cache cannot serve size 40 (levels 16)"),
        (["plan", "/tmp", "--schedule", "fixed:28"], 1, "/tmp: no manifest.json"),
        (["bench", "load", "EXISTING", "--schedule", "fixed:16", "--augment", "zoom"], 64, "invalid augmentation 'zoom'"),
        (["bench", "load", "EXISTING", "--schedule", "fixed:16", "--output", "f16"], 64, "The value 'f16' is invalid for '--output <output>'. Please provide one of 'float32', 'float32ChannelMajor' or 'uint8'"),
        (["train", "/nonexistent/cache", "--out", "/tmp/pyramid-e2e-run"], 1, "/nonexistent/cache: no such cache directory"),
        (["train", "EXISTING"], 64, "give CACHE and --out RUNDIR, or --resume RUNDIR"),
        (["train", "EXISTING", "--out", "/tmp/pyramid-e2e-run", "--schedule", "fixed:64"], 64, "the cache cannot serve size 64 (levels 16)"),
        (["train", "EXISTING", "--out", "/tmp/pyramid-e2e-run", "--schedule", "fixed:6"], 64, "size 6 is too small for resnet20"),
        (["train", "EXISTING", "--out", "/tmp/pyramid-e2e-run", "--model", "vgg"], 64, "The value 'vgg' is invalid for '--model <model>'. Please provide one of the following"),
        (["train", "EXISTING", "--out", "/tmp/pyramid-e2e-run", "--lr-schedule", "multistep"], 64, "--milestones: a multistep schedule needs them"),
        (["train", "--resume", "/tmp"], 64, "--resume: /tmp holds no run"),
        (["eval", "/tmp"], 64, "/tmp: holds no run"),
    ] as [([String], Int32, String)])
    func errorMessages(arguments: [String], status: Int32, message: String) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let existing = out.path("existing")
        if arguments.contains("EXISTING") {
            #expect(try Tool.run(["build", src.url.path, "--out", existing, "--levels", "16", "--quiet"]).status == 0)
        }
        let args = arguments.map { $0 == "SRC" ? src.url.path : $0 == "EXISTING" ? existing : $0 }
        let r = try Tool.run(args)
        #expect(r.status == status, "\(args): \(r.stderr)")
        #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pyramid-e2e-x/manifest.json"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pyramid-e2e-run"))
    }

    /// Help and version still reach swift-argument-parser through the funnel.
    @Test func helpAndVersion() throws {
        for args in [["--help"], ["build", "--help"], ["bench", "load", "--help"], ["help", "train"]] {
            let r = try Tool.run(args)
            #expect(r.status == 0 && r.stdout.contains("USAGE: pyramid"), "\(args): \(r.stdout)\(r.stderr)")
        }
        let v = try Tool.run(["--version"])
        #expect(v.status == 0 && v.stdout.hasPrefix("0."), "\(v.stdout)")
    }

    /// Every failure of a run goes through one funnel: a usage failure shows the subcommand's own
    /// usage; a saved file of a newer format is refused naming the file and both versions (exit 1).
    @Test func failuresNameTheirCommandAndSavedFilesTheirVersion() throws {
        let run = TempDirectory()
        try #"{"formatVersion": 99, "cache": "/x"}"#.write(toFile: run.path("run.json"), atomically: true, encoding: .utf8)
        for args in [["eval", run.url.path], ["train", "--resume", run.url.path]] {
            let r = try Tool.run(args)
            #expect(r.status == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("\(run.path("run.json")): format version 99 is not supported (this pyramid reads version 2)"), "\(r.stderr)")
        }
        let u = try Tool.run(["bench", "conv", "--layers", "1:2"])
        #expect(u.status == 64 && u.stderr.contains("Usage: pyramid bench conv"), "\(u.stderr)")
    }

    @Test(arguments: [SIGINT, SIGKILL])
    func killedBuildResumesToTheSameCache(signal: Int32) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 12000)
        let args = [src.url.path, "--levels", "28,24,20,16,14,12", "--shards", "2", "--quiet"]
        let reference = out.path("reference")
        #expect(try Tool.run(["build"] + args + ["--out", reference]).status == 0)

        let cache = out.path("cache")
        let (p, o, e) = try Tool.start(["build"] + args + ["--out", cache, "--workers", "1"])
        // Wait for the first commits to land, then interrupt.
        let data = "\(cache)/shard-00000/level-28.mdb"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let size = (try? FileManager.default.attributesOfItem(atPath: data)[.size] as? Int) ?? 0
            if size > 130_000 || !p.isRunning { break }  // level 28 is a third of the cache
            usleep(20_000)
        }
        #expect(p.isRunning, "the build finished before it could be interrupted")
        kill(p.processIdentifier, signal)
        let r = Tool.finish(p, o, e)
        if signal == SIGINT {
            #expect(r.status == 130, "\(r.stderr)")
            #expect(r.stderr.contains("run the same command with --resume"), "\(r.stderr)")
        } else {
            #expect(p.terminationReason == .uncaughtSignal)
        }
        #expect(!FileManager.default.fileExists(atPath: "\(cache)/manifest.json"))
        let again = try Tool.run(["build"] + args + ["--out", cache])
        #expect(again.status == 1 && again.stderr.contains("holds an interrupted build (--resume finishes it"))
        let resumed = try Tool.run(["build"] + args + ["--out", cache, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try recordBytes(cache) == recordBytes(reference))
        #expect(try Tool.run(["verify", cache, "--quiet"]).status == 0)
    }

    /// `pyramid plan` reproduces the papers' MixSize table (CIFAR, N = 50,000, B₀ = 64).
    @Test(arguments: [("B+", "761 steps", "0.9676x"), ("D+", "981 steps", "1.2864x")])
    func planReproducesTheMixSizeTable(mode: String, steps: String, compute: String) throws {
        let r = try Tool.run(["plan", "--samples", "50000", "--batch", "64",
                              "--schedule", "mixsize:16,24,32,48@0.2,0.3,0.3,0.2,mode=\(mode),base=32"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("baseline  fixed:32, 781 steps/epoch"))
        #expect(r.stdout.contains("total     \(steps)"), "\(r.stdout)")
        #expect(r.stdout.contains("compute \(compute) the baseline"), "\(r.stdout)")
    }

    @Test func planOfTRDReportsNominalAndRealizedP() throws {
        let r = try Tool.run(["plan", "--samples", "60000", "--schedule", "trd:28,14,p=0.5,milestones=5", "--epochs", "12", "--flops", "41", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["nominalRelativeCompute"] as? Double == 0.625)
        let epochs = try #require(object["epochs"] as? [[String: Any]])
        #expect(epochs.count == 12)
        // Guards around milestone 5 (epochs 3-6) and the last two epochs are at full size.
        for e in [3, 4, 5, 6, 10, 11] { #expect(epochs[e]["relativeCompute"] as? Double == 1.0, "epoch \(e)") }
        let reduced = epochs.filter { ($0["note"] as? String) == "reduced" }.count
        #expect(object["realizedFraction"] as? Double == Double(reduced) / 12)
    }

    @Test func benchLoadRunsOnATinyCache() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "32,16", "--quiet"]).status == 0)
        let r = try Tool.run(["bench", "load", cache, "--schedule", "parallel:32,16", "--batch", "2", "--repeat", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Double])
        #expect(object["images"] == 8 && object["records"] == 16)
        #expect((object["loaderImagesPerSecond"] ?? 0) > 0)
    }

    @Test func trainResumeAndEvaluateATinyRun() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache"), run = out.path("run")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,12", "--quiet"]).status == 0)
        let t = try Tool.run(["train", cache, "--test", cache, "--out", run, "--model", "resnet8", "--schedule", "trd:16,12,p=0.5",
                              "--epochs", "2", "--batch", "4", "--lr", "0.05"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("epoch   1") && t.stdout.contains("epoch   2") && t.stdout.contains("test@16"), "\(t.stdout)")
        let log = try String(contentsOfFile: "\(run)/log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 2)
        let entry = try JSONSerialization.jsonObject(with: Data(log[1].utf8)) as? [String: Any]
        let keys = Set((entry ?? [:]).keys)
        #expect(keys.isSuperset(of: ["loss", "trainTop1", "learningRate", "imagesPerSecond", "sizes", "macs", "cumulativeMacs", "validationTop1"]))
        let again = try Tool.run(["train", cache, "--out", run])
        #expect(again.status == 64 && again.stderr.contains("already holds a run (--resume"))
        let e = try Tool.run(["eval", run, "--sizes", "16,12,20", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        #expect((report?["results"] as? [[String: Any]])?.count == 3)
        #expect(FileManager.default.fileExists(atPath: "\(run)/eval-final.svg"))
        // Two runs side by side, in one chart (SVG and PNG).
        let c = try Tool.run(["eval", run, run, "--sizes", "16,12", "--chart", out.path("cmp.svg"), "--png", out.path("cmp.png")])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("top-1 by test size") && c.stdout.contains("training MACs") && c.stdout.contains("(1.00x)"), "\(c.stdout)")
        let png = try Data(contentsOf: URL(fileURLWithPath: out.path("cmp.png")))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(try String(contentsOfFile: out.path("cmp.svg"), encoding: .utf8).contains("<polyline"))
    }
}
