import Foundation
import PyramidCache

/// Writes small caches through PyramidCache's own API (no libvips), for format tests.
public enum CacheFixture {
    /// One synthetic sample: pixels per level (largest first), each `side × side × channels`.
    public struct Sample {
        public var label: Int
        public var levels: [[UInt8]]
        public init(label: Int, levels: [[UInt8]]) { self.label = label; self.levels = levels }
    }

    /// Random samples at `levels` (square, `channels` channels), with a fixed seed.
    public static func randomSamples(count: Int, levels: [Int], channels: Int, classes: Int, seed: UInt64,
                                     _ test: String = #function) -> [Sample] {
        var rng = SeededGenerator(seed: seed, test)
        return (0..<count).map { _ in
            Sample(label: Int.random(in: 0..<classes, using: &rng), levels: levels.map { side in
                // Smooth-ish content so zstd has something to compress, plus noise.
                let base = UInt8.random(in: 0...200, using: &rng)
                return (0..<(side * side * channels)).map { i in base &+ UInt8(i % 17) &+ UInt8.random(in: 0...3, using: &rng) }
            })
        }
    }

    /// Writes a complete cache (shards, manifest) holding `samples`.
    @discardableResult
    /// - Parameters:
    ///   - codecs: one per level (default: zstd everywhere).
    ///   - formatVersion: 3 (a file per level), 2 (one file per shard), or 1 for a cache as pyramid
    ///     wrote it before version 2 (zstd only).
    public static func write(_ samples: [Sample], levels: [Int], channels: Int, classes: Int, shards: Int = 1,
                             filter: RecordHeader.Filter = .none, dictionary: Bool = false, codecs: [LevelCodec]? = nil,
                             formatVersion: Int = Manifest.currentFormatVersion, to dir: URL) throws -> Manifest {
        let codecs = codecs ?? Array(repeating: .zstd, count: levels.count)
        let buildID = "fixture"
        var dictionaries: [Int: RecordDictionary] = [:]
        var dictionaryText: [Int: String] = [:]
        if dictionary {
            for (l, size) in levels.enumerated() where codecs[l] == .zstd {
                if let d = RecordDictionary.train(samples: samples.map { $0.levels[l] }, capacity: 4096) {
                    dictionaries[size] = try RecordDictionary(bytes: d, compressionLevel: 3)
                    dictionaryText[size] = Data(d).base64EncodedString()
                }
            }
        }
        let encoders = Dictionary(uniqueKeysWithValues: zip(levels, codecs).map { size, codec in
            (size, RecordEncoder(codec: codec, compressionLevel: 3, filter: filter, dictionary: dictionaries[size],
                                 recordVersion: UInt8(min(formatVersion, 2))))  // version 3 keeps version 2's records
        })
        var manifestShards: [Manifest.Shard] = []
        var bytes = Array(repeating: 0, count: levels.count)
        for k in 0..<shards {
            let range = (k * samples.count / shards)..<((k + 1) * samples.count / shards)
            let name = shardDirectoryName(k)
            let writer = try ShardWriter(directory: dir.appendingPathComponent(name), levels: levels, initialMapSize: 1 << 16,
                                         formatVersion: formatVersion)
            var batch = ShardWriter.Batch()
            for i in range {
                for (l, size) in levels.enumerated() {
                    let record = try samples[i].levels[l].withUnsafeBytes {
                        try encoders[size]!.encode(pixels: $0, width: size, height: size, channels: channels)
                    }
                    bytes[l] += record.count
                    batch.records.append((i, size, record))
                }
                batch.labels.append((i, samples[i].label))
            }
            batch.meta.append((ShardInfo.metaKey, ShardInfo(number: k, firstIndex: range.lowerBound, count: range.count,
                                                             levels: levels, channels: channels, buildID: buildID,
                                                             formatVersion: formatVersion).encoded()))
            try writer.commit(batch)
            try writer.sync()
            manifestShards.append(.init(name: name, firstIndex: range.lowerBound, count: range.count))
        }
        var manifest = Manifest(
            toolVersion: "test", createdAt: "2026-01-01T00:00:00Z", source: .init(format: "test", path: "memory"),
            classes: (0..<classes).map(String.init), sampleCount: samples.count, channels: channels,
            levels: levels.enumerated().map { l, size in
                var level = Manifest.Level(size: size, storedShortSide: size, bytes: bytes[l], rawBytes: samples.count * size * size * channels,
                                           dictionary: dictionaryText[size], codec: codecs[l])
                if formatVersion == 1 { level.codec = nil }  // version 1 manifests have no codec per level
                return level
            },
            shape: .init(crop: "center", margin: 1), codec: .init(level: 3, filter: filter.name), shards: manifestShards,
            mean: Array(repeating: 0.5, count: channels), std: Array(repeating: 0.25, count: channels),
            labelHistogram: (0..<classes).map { c in samples.filter { $0.label == c }.count }, skipped: 0,
            buildOptions: ["buildID": buildID], buildSeconds: 0)
        manifest.formatVersion = formatVersion
        try manifest.write(to: dir)
        return manifest
    }

    /// The file of `cache` holding `level` of shard `shard`: `level-<size>.mdb` in a version 3
    /// cache (the largest level when nil), `data.mdb` in versions 1 and 2.
    public static func shardFile(_ cache: String, shard: Int = 0, level: Int? = nil) throws -> String {
        let m = try Manifest.load(from: URL(fileURLWithPath: cache))
        let dir = (cache as NSString).appendingPathComponent(shardDirectoryName(shard))
        guard m.hasLevelFiles else { return (dir as NSString).appendingPathComponent("data.mdb") }
        return (dir as NSString).appendingPathComponent(Manifest.levelFileName(level ?? m.levelSizes[0]))
    }

    /// Finds `needle` in a file and flips one byte at `offset` inside every match (LMDB may keep a
    /// stale copy of a page from a transaction retried after the map grew; the live one may be any).
    /// - Returns: whether the needle was found.
    @discardableResult
    public static func flipByte(in file: String, inside needle: [UInt8], offset: Int) throws -> Bool {
        var data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        guard needle.count > offset else { return false }
        let matches = data.ranges(of: needle).map(\.lowerBound)
        for at in matches { data[at + offset] ^= 0x5A }
        try Data(data).write(to: URL(fileURLWithPath: file))
        return !matches.isEmpty
    }

    /// Every record of every level (levels largest first, samples in index order), then the labels
    /// as little-endian bytes: two caches are byte-identical when these are equal.
    public static func recordBytes(_ dir: URL) throws -> [[UInt8]] {
        let reader = try CacheReader(url: dir)
        let session = reader.makeSession()
        var out: [[UInt8]] = []
        for level in reader.manifest.levelSizes {
            for i in 0..<reader.manifest.sampleCount { out.append(try session.withRecord(index: i, level: level) { Array($0) }) }
        }
        out.append(try reader.labels().flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
        return out
    }
}
