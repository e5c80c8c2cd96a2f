import Foundation
import PyramidCache
import PyramidImageTestSupport
import PyramidTestSupport
import Testing

/// Numeric flags are checked before anything is created, flags a resume cannot honour are refused,
/// negative values are values, and the hints the tool prints are true.
@Suite struct FlagTests {
    @Test(arguments: [
        (["--lr", "inf"], "--lr: must be a positive finite number, not inf"),
        (["--lr", "nan"], "--lr: must be a positive finite number"),
        (["--momentum", "nan"], "--momentum: must be in [0, 1), not nan"),
        (["--momentum", "1.5"], "--momentum: must be in [0, 1)"),
        (["--label-smoothing", "2"], "--label-smoothing: must be in [0, 1), not 2.0"),
        (["--weight-decay=-1"], "--weight-decay: must be a finite number ≥ 0, not -1.0"),
        (["--warmup", "20"], "--warmup: must be in 0...10"),
        (["--batch", "100000"], "--batch: 100000 is more than the cache's 8 samples: an epoch would have no step"),
        (["--test", "IDXCACHE"], "IDXCACHE: 1 channels and 10 classes; the model has 3 and 2"),
    ] as [([String], String)])
    func badTrainingFlagsAreRefusedBeforeTheRunExists(flags: [String], message: String) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache"), run = out.path("run"), idx = out.path("idx")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16", "--quiet"]).status == 0)
        if flags.contains("IDXCACHE") {
            let idxSource = TempDirectory()
            try makeLargeIDX(idxSource, count: 20)
            #expect(try Tool.run(["build", idxSource.url.path, "--out", idx, "--levels", "16", "--quiet"]).status == 0)
        }
        let args = ["train", cache, "--out", run, "--model", "resnet8"] + flags.map { $0 == "IDXCACHE" ? idx : $0 }
        let r = try Tool.run(args)
        #expect(r.status == 64, "\(args): \(r.stderr)")
        #expect(r.stderr.contains(message.replacingOccurrences(of: "IDXCACHE", with: idx)), "\(args): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run), "a refused run left its directory behind")
    }

    @Test func aResumeRefusesFlagsItCannotHonour() throws {
        let r = try Tool.run(["train", "--resume", "/tmp/pyramid-no-run", "--epochs", "5", "--lr=0.5", "--threads", "1"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--resume continues /tmp/pyramid-no-run exactly as it was configured; [\"--epochs\", \"--lr\"] cannot change it"), "\(r.stderr)")
    }

    /// Every flag of `train` either defines the run (a resume refuses it, naming it) or is one of
    /// the few a resume may give: a flag added to the command and to neither list fails here.
    @Test func everyTrainFlagIsRunDefiningOrResumable() throws {
        let resumable: Set<String> = ["--out", "--resume", "--workers", "--threads", "--quiet", "--cache-dir", "--cache-limit", "--version", "--help"]
        let values = ["--model": "resnet8", "--lr-schedule": "multistep", "--milestones": "2", "--gradient-smoothing": "on",
                      "--zero-init-residual": "on", "--distillation": "vanilla", "--shortcut": "pad", "--corrupt-records": "substitute",
                      "--shuffle": "shards:2", "--schedule": "fixed:16", "--augment": "none", "--test": "/tmp/x", "--lr": "0.5",
                      "--momentum": "0.5", "--weight-decay": "0.1", "--label-smoothing": "0.1"]
        let dump = try Tool.run(["train", "--experimental-dump-help"])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let arguments = try #require((info["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        var checked = 0
        for argument in arguments {
            guard let kind = argument["kind"] as? String, kind != "positional",
                  let names = argument["names"] as? [[String: Any]],
                  let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String else { continue }
            let flag = "--" + long
            if resumable.contains(flag) { continue }
            let given = kind == "flag" ? [flag] : [flag, values[flag] ?? "1"]
            let r = try Tool.run(["train", "--resume", "/tmp/pyramid-no-run"] + given)
            #expect(r.status == 64 && r.stderr.contains("[\"\(flag)\"] cannot change it"), "\(flag): \(r.stderr)")
            checked += 1
        }
        #expect(checked >= 20, "only \(checked) run-defining flags found")
    }

    @Test func negativeZstdLevelsAreValues() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let r = try Tool.run(["build", src.url.path, "--out", out.path("c"), "--levels", "16", "--zstd-level", "-3", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let manifest = try Manifest.load(from: URL(fileURLWithPath: out.path("c")))
        #expect(manifest.codec.level == -3)
    }

    /// The missing-manifest hint names --resume only for an interrupted build; a run without a test
    /// cache is told to give one to eval; an IDX label file with too few labels says the counts.
    @Test func hintsAreTrue() throws {
        let plain = try Tool.run(["inspect", "/tmp"])
        #expect(plain.status == 1 && plain.stderr.contains("/tmp: no manifest.json (not a Pyramid cache") && !plain.stderr.contains("--resume"), "\(plain.stderr)")
        let interrupted = TempDirectory()
        try "{}".write(toFile: interrupted.path("build-state.json"), atomically: true, encoding: .utf8)
        let i = try Tool.run(["inspect", interrupted.url.path])
        #expect(i.status == 1 && i.stderr.contains("an interrupted build; run the same pyramid build command with --resume"), "\(i.stderr)")

        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "12", "--quiet"]).status == 0)
        let t = try Tool.run(["train", cache, "--out", out.path("run"), "--model", "resnet8", "--epochs", "1", "--batch", "4"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("evaluate with: pyramid eval \(out.path("run")) --test TEST-CACHE"), "\(t.stdout)")

        let idx = TempDirectory()
        try Fixtures.writeIDX(directory: idx.url.path, prefix: "train", images: Array(repeating: [UInt8](repeating: 9, count: 16), count: 10),
                              rows: 4, cols: 4, labels: Array(repeating: 1, count: 8), gzip: false)
        let b = try Tool.run(["build", idx.url.path, "--out", out.path("idx"), "--levels", "4", "--quiet"])
        #expect(b.status == 1 && b.stderr.contains("its header says 8 labels and it holds 8, but the image file holds 10 images"), "\(b.stderr)")
    }
}

/// `--codec`: the default per source, explicit lists, what inspect shows, refused values.
@Suite struct CodecFlagTests {
    @Test func codecsAreChosenShownAndChecked() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        // The default for a folder: JPEG from 64 px up.
        let auto = out.path("auto")
        let b = try Tool.run(["build", src.url.path, "--out", auto, "--levels", "64,32"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stdout.contains("(jpeg:90 ×1, zstd ×1)"), "\(b.stdout)")
        let inspect = try Tool.run(["inspect", auto])
        #expect(inspect.stdout.contains("format       version 3"), "\(inspect.stdout)")
        #expect(inspect.stdout.range(of: #"\n\s+64\s+64\s+jpeg:90 "#, options: .regularExpression) != nil, "\(inspect.stdout)")
        #expect(inspect.stdout.range(of: #"\n\s+32\s+32\s+zstd "#, options: .regularExpression) != nil, "\(inspect.stdout)")
        // One per level, largest first, whatever order --levels lists them in.
        let listed = out.path("listed")
        #expect(try Tool.run(["build", src.url.path, "--out", listed, "--levels", "32,48", "--codec", "zstd,jpeg:70", "--quiet"]).status == 0)
        let m = try CacheReader(url: URL(fileURLWithPath: listed)).manifest
        #expect(m.levels.map(\.size) == [48, 32] && m.levels.map(\.levelCodec) == [.zstd, .jpeg(quality: 70)])
        #expect(try Tool.run(["verify", listed]).status == 0)
        // A flipped byte inside a JPEG record is named by verify.
        let record = try CacheReader(url: URL(fileURLWithPath: listed)).makeSession().withRecord(index: 2, level: 32) { Array($0) }
        #expect(try CacheFixture.flipByte(in: try CacheFixture.shardFile(listed, level: 32), inside: record, offset: record.count / 2))
        let v = try Tool.run(["verify", listed])
        #expect(v.status == 1 && v.stdout.contains("shard 0 index 2 level 32: checksum mismatch"), "\(v.stdout)\(v.stderr)")

        for (codec, message) in [("png", "--codec: 'png' is not a codec"), ("jpeg:0", "--codec: 'jpeg:0' is not a codec"),
                                 ("zstd,zstd,zstd", "--codec: give one codec, or one per level (2), not 3")] {
            let r = try Tool.run(["build", src.url.path, "--out", out.path("bad"), "--levels", "64,32", "--codec", codec])
            #expect(r.status == 64 && r.stderr.contains(message), "\(codec): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path("bad")))
        }
    }
}
