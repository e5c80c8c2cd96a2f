import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidTrain
import Testing

/// Format version 3: a file per level in every shard. A run opens only its levels' files, damage
/// is named with its level, version 2 still reads, and `pyramid upgrade` gives the same batches.
@Suite struct LevelFileTests {
    static func source(_ count: Int = 600) throws -> TempDirectory {
        let src = TempDirectory()
        try makeLargeIDX(src, count: count)
        return src
    }

    static func build(_ src: TempDirectory, _ out: String, version: Int = 3, levels: String = "28,20,14", shards: Int = 2) throws {
        let b = try Tool.run(["build", src.url.path, "--out", out, "--levels", levels, "--shards", String(shards),
                              "--cache-version", String(version), "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
    }

    static let batches = ["--batch", "50", "--seed", "5", "--schedule", "trd:28,14,p=0.5", "--epochs", "3"]

    @Test func aShardHoldsAFilePerLevelListedInTheManifest() throws {
        let out = TempDirectory(), src = try Self.source()
        let cache = out.path("v3")
        try Self.build(src, cache)
        let m = try Manifest.load(from: URL(fileURLWithPath: cache))
        #expect(m.formatVersion == 3)
        for shard in m.shards {
            let names = try FileManager.default.contentsOfDirectory(atPath: "\(cache)/\(shard.name)").filter { $0.hasSuffix(".mdb") }
            #expect(Set(names) == ["meta.mdb", "level-28.mdb", "level-20.mdb", "level-14.mdb"], "\(names)")
            for name in names {
                #expect(shard.files?[name] == Manifest.FileDigest(ofFile: "\(cache)/\(shard.name)/\(name)"), "\(shard.name)/\(name)")
            }
        }
        let v = try Tool.run(["verify", cache, "--quiet"])
        #expect(v.status == 0 && v.stdout.hasPrefix("ok: 2400 records"), "\(v.stdout)")
        let inspect = try Tool.run(["inspect", cache])
        #expect(inspect.stdout.contains("version 3") && inspect.stdout.contains("a file per level"), "\(inspect.stdout)")
    }

    @Test func aFlippedByteInALevelFileIsNamedWithItsLevel() throws {
        let out = TempDirectory(), src = try Self.source()
        let cache = out.path("v3")
        try Self.build(src, cache)
        let first = try Manifest.load(from: URL(fileURLWithPath: cache)).shards[1].firstIndex
        let record = try CacheReader(url: URL(fileURLWithPath: cache)).makeSession().withRecord(index: first + 4, level: 20) { Array($0) }
        #expect(try CacheFixture.flipByte(in: "\(cache)/shard-00001/level-20.mdb", inside: record, offset: record.count - 4))
        let v = try Tool.run(["verify", cache, "--quiet"])
        #expect(v.status == 1 && v.stdout.contains("shard 1 index \(first + 4) level 20: checksum mismatch"), "\(v.stdout)")
        // A run that does not use level 20 never reads that file.
        let fixed = try Tool.run(["batches", cache, "--schedule", "fixed:14", "--batch", "50"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
    }

    /// Records of 2–4 KiB (56 px of noise) are where LMDB's page rounding hurt most: one record
    /// per key took two 4 KiB pages each (2.6x the records). Packed, a level file is its records
    /// and a few pages of LMDB's own; and a damaged pack header is named, never a crash.
    @Test func levelFilesArePackedCloseToTheirRecordsBytes() throws {
        let out = TempDirectory(), src = try Self.source()
        let cache = out.path("v3")
        try Self.build(src, cache, levels: "56,28")
        let reader = try CacheReader(url: URL(fileURLWithPath: cache))
        let session = reader.makeSession()
        for (k, shard) in reader.manifest.shards.enumerated() {
            var records = 0, bytes = 0
            try session.forEachRecord(shard: k, level: 56) { index, record in
                #expect(index == shard.firstIndex + records)
                records += 1; bytes += record.count
            }
            #expect(records == shard.count)
            let size = try #require(shard.files?["level-56.mdb"]?.bytes)
            #expect(bytes > 2048 * records, "records of \(bytes / records) bytes: not the case this test is about")
            #expect(Double(size) <= 1.05 * Double(bytes) + 32768, "shard \(k): level-56.mdb is \(size) bytes for \(bytes) bytes of records")
        }
        session.endReads()

        let first = reader.manifest.shards[1].firstIndex
        let record = try reader.makeSession().withRecord(index: first, level: 56) { Array($0) }
        let later = try reader.makeSession().withRecord(index: first + 250, level: 56) { Array($0) }  // in a later pack
        // The byte before a pack's first record is the top byte of the pack's last end offset.
        #expect(try CacheFixture.flipByte(in: "\(cache)/shard-00001/level-56.mdb", inside: record, offset: -1))
        #expect(try CacheFixture.flipByte(in: "\(cache)/shard-00001/level-56.mdb", inside: later, offset: later.count - 4))
        let damaged = try CacheReader(url: URL(fileURLWithPath: cache)).makeSession()
        #expect(throws: CacheError.self) { try damaged.withRecord(index: first, level: 56) { _ in } }
        let v = try Tool.run(["verify", cache, "--quiet"])
        #expect(v.status == 1 && v.stdout.contains("shard 1 index \(first) level 56") && v.stdout.contains("pack is damaged"), "\(v.stdout)")
        // The walk goes on after the damaged pack: one problem for it, none for its records as
        // "missing", and the rest of the level (and the other shard) checked.
        #expect(!v.stdout.contains("missing"), "\(v.stdout)")
        #expect(v.stdout.contains("shard 1 index \(first + 250) level 56: checksum mismatch"), "\(v.stdout)")
        #expect(v.stdout.components(separatedBy: "pack is damaged").count == 2, "\(v.stdout)")
        let fixed = try Tool.run(["batches", cache, "--schedule", "fixed:28", "--batch", "50"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
    }

    /// libcurl is loaded when a remote cache is first used: without it a local cache reads as
    /// ever, and s3:// says what to install.
    @Test func withoutLibcurlLocalCachesReadAndS3SaysWhatToInstall() throws {
        let out = TempDirectory(), src = try Self.source(200)
        let cache = out.path("v3")
        try Self.build(src, cache, shards: 1)
        let absent = ["PYRAMID_LIBCURL": "/nonexistent/libcurl.so.4"]
        let local = try Tool.run(["batches", cache, "--schedule", "fixed:14", "--batch", "50"], environment: absent)
        #expect(local.status == 0, "\(local.stderr)")
        let remote = try Tool.run(["inspect", "s3://bucket/cache"], environment: absent.merging(["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"]) { a, _ in a })
        #expect(remote.status != 0 && remote.stderr.contains("apt install libcurl4") && remote.stderr.contains("dnf install libcurl"), "\(remote.stderr)")
    }

    @Test func aFixedRunNeverOpensAnotherLevelsFile() throws {
        let out = TempDirectory(), src = try Self.source()
        let cache = out.path("v3"), partial = out.path("only14")
        try Self.build(src, cache)
        try FileManager.default.copyItem(atPath: cache, toPath: partial)
        for shard in ["shard-00000", "shard-00001"] {
            for level in [28, 20] { try FileManager.default.removeItem(atPath: "\(partial)/\(shard)/level-\(level).mdb") }
        }
        let args = ["--schedule", "fixed:14", "--batch", "50", "--seed", "2", "--epochs", "2"]
        let whole = try Tool.run(["batches", cache] + args)
        let only = try Tool.run(["batches", partial] + args)
        #expect(whole.status == 0 && only.status == 0 && only.stdout == whole.stdout, "\(only.stderr)")
        // Training and evaluation at 14 px too.
        let t = try Tool.run(["train", partial, "--out", out.path("run"), "--model", "resnet8", "--schedule", "fixed:14", "--epochs", "1",
                              "--batch", "50", "--threads", "1", "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let log = try String(contentsOfFile: out.path("run/log.jsonl"), encoding: .utf8)
        let entry = try JSONDecoder().decode(Trainer.EpochLog.self, from: Data(try #require(log.split(separator: "\n").first).utf8))
        let level14 = try Manifest.load(from: URL(fileURLWithPath: cache)).levels.first { $0.size == 14 }!.bytes
        // One epoch of 600 samples in steps of 50 reads every level-14 record once.
        #expect(entry.bytesRead == level14, "bytesRead \(entry.bytesRead ?? -1), level 14 holds \(level14)")
        // A size served from a missing level says which file is missing.
        let at28 = try Tool.run(["batches", partial, "--schedule", "fixed:28", "--limit", "1"])
        #expect(at28.status == 1 && at28.stderr.contains("level-28.mdb is missing"), "\(at28.stderr)")
    }

    @Test func versionTwoStillReadsAndUpgradesToTheSameBatches() throws {
        let out = TempDirectory(), src = try Self.source()
        let v2 = out.path("v2"), v3 = out.path("v3"), upgraded = out.path("upgraded")
        try Self.build(src, v2, version: 2)
        try Self.build(src, v3, version: 3)
        #expect(FileManager.default.fileExists(atPath: "\(v2)/shard-00000/data.mdb"))
        let a = try Tool.run(["batches", v2] + Self.batches)
        let b = try Tool.run(["batches", v3] + Self.batches)
        #expect(a.status == 0 && b.status == 0 && a.stdout == b.stdout, "a version 2 and a version 3 build serve the same batches")
        let inspect = try Tool.run(["inspect", v2])
        #expect(inspect.stdout.contains("version 2") && inspect.stdout.contains("pyramid upgrade"), "\(inspect.stdout)")

        let u = try Tool.run(["upgrade", v2, "--out", upgraded])
        #expect(u.status == 0, "\(u.stderr)")
        #expect(try Manifest.load(from: URL(fileURLWithPath: upgraded)).formatVersion == 3)
        #expect(try Manifest.load(from: URL(fileURLWithPath: upgraded)).buildID == Manifest.load(from: URL(fileURLWithPath: v2)).buildID)
        let c = try Tool.run(["batches", upgraded] + Self.batches)
        #expect(c.status == 0 && c.stdout == a.stdout, "upgraded batches are byte-identical")
        #expect(try CacheFixture.recordBytes(URL(fileURLWithPath: upgraded)) == CacheFixture.recordBytes(URL(fileURLWithPath: v2)))
        #expect(try Tool.run(["verify", upgraded, "--quiet"]).status == 0)
        let again = try Tool.run(["upgrade", upgraded, "--out", out.path("again")])
        #expect(again.status == 1 && again.stderr.contains("version 3 already"), "\(again.stderr)")

        // A damaged record is not carried on.
        let record = try CacheReader(url: URL(fileURLWithPath: v2)).makeSession().withRecord(index: 3, level: 14) { Array($0) }
        #expect(try CacheFixture.flipByte(in: "\(v2)/shard-00000/data.mdb", inside: record, offset: record.count - 3))
        let damaged = try Tool.run(["upgrade", v2, "--out", out.path("damaged")])
        #expect(damaged.status == 1 && damaged.stderr.contains("index 3") && damaged.stderr.contains("level 14"), "\(damaged.stderr)")
    }

    @Test func planSaysWhatEachEpochReads() throws {
        let out = TempDirectory(), src = try Self.source()
        let cache = out.path("v3")
        try Self.build(src, cache)
        let m = try Manifest.load(from: URL(fileURLWithPath: cache))
        let plan = try Tool.run(["plan", cache, "--schedule", "fixed:14", "--epochs", "2", "--batch", "50", "--json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let level14 = m.levels.first { $0.size == 14 }!.bytes
        #expect((json["bytesRead"] as? Int) == 2 * level14, "\(plan.stdout)")
        let text = try Tool.run(["plan", cache, "--schedule", "trd:28,14,p=0.5", "--epochs", "4"])
        #expect(text.stdout.contains("reads ") && text.stdout.contains("of level files"), "\(text.stdout)")
    }
}
