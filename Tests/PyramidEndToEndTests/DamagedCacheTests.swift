import Foundation
import PyramidCache
import PyramidImageTestSupport
import PyramidTestSupport
import Testing

/// A damaged cache gives a one-line error and exit status 1 from every command that opens it,
/// never a signal (SIGBUS, SIGSEGV, abort).
@Suite struct DamagedCacheTests {
    /// A small built cache in its own directory.
    func builtCache(_ out: TempDirectory) throws -> String {
        let src = TempDirectory()
        try makeTinyFolder(src)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "32,16", "--quiet"])
        #expect(b.status == 0, "\(b.stderr)")
        return cache
    }

    /// A shard's `meta.mdb` (which opening a version 3 cache checks) cut to half, 4096, 100 or 0
    /// bytes, or replaced by a directory.
    @Test(arguments: ["half", "4096", "100", "0", "directory"])
    func aTruncatedShardIsAnErrorNotASignal(damage: String) throws {
        let out = TempDirectory()
        let cache = try builtCache(out)
        let data = "\(cache)/shard-00000/meta.mdb"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: data)[.size] as? Int)
        switch damage {
        case "directory":
            try FileManager.default.removeItem(atPath: data)
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
        default:
            let keep = damage == "half" ? size / 2 : Int(damage)!
            #expect(truncate(data, off_t(keep)) == 0)
        }
        for args in [["verify", cache, "--quiet"], ["inspect", cache], ["export", cache, "--index", "0", "-o", out.path("x.png")],
                     ["train", cache, "--out", out.path("run"), "--model", "resnet8", "--epochs", "1", "--batch", "4", "--quiet"]] {
            let r = try Tool.run(args)
            #expect(r.status == 1, "\(damage) \(args[0]): status \(r.status), \(r.stderr)")
            if args[0] == "verify" {
                // verify reports a shard it cannot read as a bad shard, like a bad record.
                #expect(r.stdout.contains("bad: shard 0: cannot be read: ") && r.stdout.contains("shard-00000"), "\(damage) verify: \(r.stdout)")
            } else {
                #expect(r.stderr.hasPrefix("Error: ") && r.stderr.contains("shard-00000"), "\(damage) \(args[0]): \(r.stderr)")
            }
        }
        if damage == "half" {
            let r = try Tool.run(["inspect", cache])
            #expect(r.stderr.contains("meta.mdb: \(size / 2) bytes, but its LMDB meta page says"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path("run")), "a refused cache left a run directory")
    }

    /// A label outside the classes stops training before it starts (it used to segfault or train on nonsense).
    @Test(arguments: [Int32.max, Int32.min, 1_000_000, -1, 2])
    func aLabelOutsideTheClassesIsRefused(label: Int32) throws {
        let out = TempDirectory()
        let cache = try builtCache(out)
        do {
            let writer = try ShardWriter(directory: URL(fileURLWithPath: "\(cache)/shard-00000"), levels: [32, 16])
            var batch = ShardWriter.Batch()
            batch.labels = [(index: 3, label: Int(label))]
            try writer.commit(batch)
        }
        let t = try Tool.run(["train", cache, "--out", out.path("run"), "--model", "resnet8", "--epochs", "1", "--batch", "4", "--quiet"])
        #expect(t.status == 1, "label \(label): \(t.stderr)")
        #expect(t.stderr.contains("shard 0, index 3: label \(label) is outside the cache's 2 classes"), "\(t.stderr)")
        let v = try Tool.run(["verify", cache, "--quiet"])
        #expect(v.status == 1 && v.stdout.contains("bad: shard 0 index 3 level 0: label \(label) outside 0..<2"), "\(v.stdout)")
    }
}
