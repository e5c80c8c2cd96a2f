#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Converts a version 2 cache into version 3 (a file per level in each shard) without decoding a
/// single image: every record and label is copied byte for byte, so batches from the result are
/// byte-identical to the original's (same build id, same samples, same records).
public enum CacheUpgrade {
    /// What an upgrade did.
    public struct Report: Sendable, Codable, Equatable {
        public var samples: Int
        public var shards: Int
        public var levels: [Int]
        /// Bytes of the new shard files.
        public var bytes: Int
        public var seconds: Double
    }

    /// Records copied per transaction.
    static let batch = 512

    /// Writes `reader`'s cache (version 2) as a version 3 cache into `output`, an empty or missing
    /// directory. The manifest is written last.
    /// - Parameter progress: records and labels copied so far, of all.
    /// - Throws: ``CacheError`` for a cache of another version, an output that is not empty, or a
    ///   record that fails its checksum (a damaged cache is not copied on).
    public static func upgrade(_ reader: CacheReader, to output: URL, progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        let started = Date()
        var manifest = reader.manifest
        guard manifest.formatVersion == 2 else {
            throw CacheError.io(path: reader.url.path, reason: manifest.formatVersion >= 3
                ? "is version \(manifest.formatVersion) already"
                : "is version 1 (records without checksums): rebuild it with pyramid build instead")
        }
        let fm = FileManager.default
        if let names = try? fm.contentsOfDirectory(atPath: output.path), !names.isEmpty {
            throw CacheError.io(path: output.path, reason: "is not empty; choose a new directory")
        }
        try fm.createDirectory(at: output, withIntermediateDirectories: true)
        let levels = manifest.levelSizes
        let total = manifest.sampleCount * (levels.count + 1)
        var done = 0
        let session = reader.makeSession()
        let labels = try reader.labels()
        for (number, shard) in manifest.shards.enumerated() {
            let directory = output.appendingPathComponent(shard.name)
            let writer = try ShardWriter(directory: directory, levels: levels, formatVersion: 3)
            // A remote source: the shard is fetched once, kept while it is copied, then let go.
            try reader.pin([number])
            defer { reader.unpin([number]) }
            for level in levels {
                var batch = ShardWriter.Batch()
                try session.forEachRecord(shard: number, level: level) { index, bytes in
                    // The record is checked before it is copied: an upgrade never carries damage on.
                    if case .failure(let f) = RecordChecksum.strip(bytes) {
                        throw CacheError.corruptRecord(shard: number, index: index, level: level, reason: f.reason)
                    }
                    batch.records.append((index, level, Array(bytes)))
                    if batch.records.count == Self.batch {
                        try writer.commit(batch)
                        done += batch.records.count
                        progress(done, total)
                        batch = ShardWriter.Batch()
                    }
                }
                if !batch.isEmpty { try writer.commit(batch); done += batch.records.count }
            }
            var final = ShardWriter.Batch()
            for i in shard.firstIndex..<(shard.firstIndex + shard.count) { final.labels.append((i, Int(labels[i]))) }
            final.meta.append((ShardInfo.metaKey, ShardInfo(number: number, firstIndex: shard.firstIndex, count: shard.count, levels: levels,
                                                             channels: manifest.channels, buildID: manifest.buildID ?? "", formatVersion: 3).encoded()))
            try writer.commit(final)
            try writer.packLevels()
            try writer.sync()
            done += shard.count
            progress(done, total)
            session.endReads()  // before the deferred unpin: no read may hold the file
            var files: [String: Manifest.FileDigest] = [:]
            for name in writer.files {
                guard let digest = Manifest.FileDigest(ofFile: directory.appendingPathComponent(name).path) else {
                    throw CacheError.io(path: directory.appendingPathComponent(name).path, reason: "cannot read the file just written")
                }
                files[name] = digest
            }
            manifest.shards[number].file = nil
            manifest.shards[number].files = files
        }
        manifest.formatVersion = 3
        manifest.labels = nil
        try manifest.write(to: output)
        let bytes = manifest.files.reduce(0) { $0 + ($1.digest?.bytes ?? 0) }
        return Report(samples: manifest.sampleCount, shards: manifest.shards.count, levels: levels, bytes: bytes,
                      seconds: Date().timeIntervalSince(started))
    }
}
