#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A cache's shard files: what readers open, remote readers fetch, and `pyramid push` publishes.
extension Manifest {
    /// One file of a cache's shards: what a reader opens, a remote reader downloads and evicts,
    /// and `pyramid push` publishes. Versions 1 and 2 have one per shard (`data.mdb`, every level);
    /// version 3 has `meta.mdb` (labels, bookkeeping) and one per level (`level-224.mdb`).
    public struct CacheFile: Sendable, Equatable {
        /// Relative to the cache's top: `shard-00000/level-224.mdb`.
        public var path: String
        public var shard: Int
        /// The level the file holds alone (version 3 level files); nil for `meta.mdb` and for a
        /// version 1/2 `data.mdb` (which holds every level).
        public var level: Int?
        /// Size and digest, when the manifest records them.
        public var digest: FileDigest?
    }

    /// True when each level of a shard is a file of its own (version 3 on).
    public var hasLevelFiles: Bool { formatVersion >= 3 }

    /// The name of level `size`'s file in a version 3 shard.
    public static func levelFileName(_ size: Int) -> String { "level-\(size).mdb" }
    /// The name of a version 3 shard's labels and bookkeeping file.
    public static let metaFileName = "meta.mdb"

    /// Every shard file, numbered: file `id` is `files[id]`. Version 3: shard k's files are
    /// `k × (levels + 1)` (its `meta.mdb`) and the next `levels` ids (its levels, largest first).
    public var files: [CacheFile] {
        if !hasLevelFiles {
            return shards.enumerated().map { CacheFile(path: $1.dataPath, shard: $0, level: nil, digest: $1.file) }
        }
        return shards.enumerated().flatMap { k, shard in
            [CacheFile(path: shard.name + "/" + Self.metaFileName, shard: k, level: nil, digest: shard.files?[Self.metaFileName])]
                + levels.map { l in
                    let name = Self.levelFileName(l.size)
                    return CacheFile(path: shard.name + "/" + name, shard: k, level: l.size, digest: shard.files?[name])
                }
        }
    }

    /// The levels this copy of the cache holds: every level, except in a version 3 publication
    /// of some levels (`pyramid push --levels`), whose shards list only those levels' files.
    public var heldLevels: [Int] {
        guard hasLevelFiles, shards.allSatisfy({ $0.files != nil }) else { return levelSizes }
        return levelSizes.filter { l in shards.allSatisfy { $0.files?[Self.levelFileName(l)] != nil } }
    }

    /// The id (into ``files``) of the file holding `level` of shard `shard`.
    public func fileID(shard: Int, level: Int) -> Int {
        guard hasLevelFiles else { return shard }
        return shard * (levels.count + 1) + 1 + (levels.firstIndex { $0.size == level } ?? 0)
    }

    /// The id of the file holding shard `shard`'s labels and bookkeeping.
    public func metaFileID(shard: Int) -> Int { hasLevelFiles ? shard * (levels.count + 1) : shard }
}
