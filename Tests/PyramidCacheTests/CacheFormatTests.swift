import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct CacheFormatTests {
    @Test(arguments: [(UInt64(11), 1), (12, 3), (13, 2)])
    func writeReadRoundTrip(seed: UInt64, shards: Int) throws {
        var rng = SeededGenerator(seed: seed)
        let levelCount = Int.random(in: 1...4, using: &rng)
        let levels = Array(Set((0..<levelCount).map { _ in Int.random(in: 4...40, using: &rng) })).sorted(by: >)
        let channels = Bool.random(using: &rng) ? 1 : 3
        let count = Int.random(in: 5...60, using: &rng)
        let samples = CacheFixture.randomSamples(count: count, levels: levels, channels: channels, classes: 4, seed: seed)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: levels, channels: channels, classes: 4, shards: shards,
                               filter: seed % 2 == 0 ? .sub : .none, dictionary: seed == 13, to: dir.url)
        let reader = try CacheReader(url: dir.url)
        #expect(reader.manifest.sampleCount == count)
        #expect(try reader.labels() == samples.map { Int32($0.label) })
        let session = reader.makeSession()
        for i in (0..<count).shuffled(using: &rng) {
            for (l, size) in levels.enumerated() {
                let (header, pixels) = try session.image(index: i, level: size)
                #expect(header.width == size && header.height == size && header.channels == channels)
                #expect(pixels == samples[i].levels[l], "index \(i) level \(size)")
            }
            #expect(try session.label(of: i) == samples[i].label)
        }
        #expect(throws: CacheError.indexOutOfRange(index: count, count: count)) { try session.label(of: count) }
        #expect(throws: CacheError.self) { _ = try session.image(index: 0, level: 999) }
        let report = try CacheVerifier(reader: reader).verify()
        #expect(report.ok)
        #expect(report.recordsChecked == count * (levels.count + 1))
    }

    @Test func mapGrowsInsteadOfFailing() throws {
        // The fixture starts each shard with a 64 KiB map; 2 MB of noisy records must still fit.
        let samples = CacheFixture.randomSamples(count: 40, levels: [128], channels: 3, classes: 2, seed: 3)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: [128], channels: 3, classes: 2, to: dir.url)
        let session = try CacheReader(url: dir.url).makeSession()
        #expect(try session.image(index: 39, level: 128).pixels == samples[39].levels[0])
    }

    @Test func flippedByteInAShardIsCaughtWithIndexAndLevel() throws {
        let levels = [24, 12]
        let samples = CacheFixture.randomSamples(count: 30, levels: levels, channels: 1, classes: 3, seed: 21)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: levels, channels: 1, classes: 3, shards: 2, to: dir.url)
        // Locate sample 22's 12 px record bytes in shard 1's file and damage its zstd frame.
        let target = try CacheReader(url: dir.url).makeSession().withRecord(index: 22, level: 12) { Array($0) }
        let file = try CacheFixture.shardFile(dir.url.path, shard: 1, level: 12)
        #expect(try CacheFixture.flipByte(in: file, inside: target, offset: target.count / 2))
        let reader = try CacheReader(url: dir.url)
        let session = reader.makeSession()
        #expect(throws: CacheError.self) { _ = try session.image(index: 22, level: 12) }
        do { _ = try session.image(index: 22, level: 12) } catch let CacheError.corruptRecord(shard, index, level, _) {
            #expect(shard == 1 && index == 22 && level == 12)
        }
        #expect(try session.image(index: 22, level: 24).pixels == samples[22].levels[0])
        let report = try CacheVerifier(reader: reader).verify()
        #expect(report.problems.map { [$0.shard, $0.index, $0.level] } == [[1, 22, 12]])
    }

    @Test func unknownVersionMissingManifestAndMismatchedShardAreNamed() throws {
        let samples = CacheFixture.randomSamples(count: 10, levels: [8], channels: 1, classes: 2, seed: 1)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: [8], channels: 1, classes: 2, shards: 2, to: dir.url)
        let manifestURL = dir.url.appendingPathComponent("manifest.json")
        let original = try String(contentsOf: manifestURL, encoding: .utf8)

        let version = "\"formatVersion\" : \(Manifest.currentFormatVersion)"
        #expect(original.contains(version))
        try original.replacingOccurrences(of: version, with: "\"formatVersion\" : 7").write(to: manifestURL, atomically: true, encoding: .utf8)
        #expect(throws: CacheError.unsupportedVersion(path: manifestURL.path, found: 7, supported: Manifest.currentFormatVersion)) { try CacheReader(url: dir.url) }

        try FileManager.default.removeItem(at: manifestURL)
        #expect(throws: CacheError.missingManifest(path: dir.url.path)) { try CacheReader(url: dir.url) }

        // Swap the two shards: each now disagrees with its manifest entry.
        try original.write(to: manifestURL, atomically: true, encoding: .utf8)
        let s0 = dir.url.appendingPathComponent("shard-00000"), s1 = dir.url.appendingPathComponent("shard-00001")
        let tmp = dir.url.appendingPathComponent("tmp")
        try FileManager.default.moveItem(at: s0, to: tmp)
        try FileManager.default.moveItem(at: s1, to: s0)
        try FileManager.default.moveItem(at: tmp, to: s1)
        do {
            _ = try CacheReader(url: dir.url)
            Issue.record("a swapped shard was accepted")
        } catch let CacheError.shardMismatch(path, _) {
            #expect(path == s0.appendingPathComponent(Manifest.metaFileName).path)  // version 3: the file that disagrees
        }
    }

    /// A shard whose own description carries another format version than the manifest is refused, naming it.
    @Test func aShardOfAnotherFormatVersionIsNamed() throws {
        let samples = CacheFixture.randomSamples(count: 4, levels: [8], channels: 1, classes: 2, seed: 2)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: [8], channels: 1, classes: 2, shards: 1, to: dir.url)
        let shard = dir.url.appendingPathComponent(shardDirectoryName(0))
        do {
            let writer = try ShardWriter(directory: shard, levels: [8])
            var info = try JSONDecoder().decode(ShardInfo.self, from: Data(try #require(try writer.meta(ShardInfo.metaKey))))
            info.formatVersion = Manifest.currentFormatVersion + 1
            var batch = ShardWriter.Batch()
            batch.meta = [(ShardInfo.metaKey, info.encoded())]
            try writer.commit(batch)
        }
        #expect(throws: CacheError.unsupportedVersion(path: shard.appendingPathComponent(Manifest.metaFileName).path, found: Manifest.currentFormatVersion + 1, supported: Manifest.currentFormatVersion)) {
            try CacheReader(url: dir.url)
        }
    }
}

@Suite struct MapGrowthTests {
    /// A shard whose map fills during `mdb_txn_commit` (not only during `mdb_put`) grows and retries:
    /// commit frees the transaction even when it fails, so it must not be aborted a second time.
    @Test(arguments: [1, 7, 40, 160])
    func tinyMapGrowsWhateverCallFillsIt(count: Int) throws {
        let dir = TempDirectory("pyramid-growth")
        let samples = CacheFixture.randomSamples(count: count, levels: [12, 8], channels: 1, classes: 3, seed: UInt64(count))
        try CacheFixture.write(samples, levels: [12, 8], channels: 1, classes: 3, shards: 1, to: dir.url)
        let session = try CacheReader(url: dir.url).makeSession()
        for i in 0..<count { #expect(try session.image(index: i, level: 12).pixels == samples[i].levels[0]) }
    }
}
