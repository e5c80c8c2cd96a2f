#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// What a shard says about itself, stored under the key `shard` of its `meta` database.
///
/// Readers compare it with the manifest, so a shard copied from another cache or left over
/// from another build is caught by name instead of being read as if it belonged.
public struct ShardInfo: Codable, Equatable, Sendable {
    public static let metaKey = "shard"
    public var formatVersion: Int
    /// The shard's position in the manifest's `shards`.
    public var number: Int
    public var firstIndex: Int
    public var count: Int
    /// Level sizes, largest first.
    public var levels: [Int]
    public var channels: Int
    /// A random identifier of the build that wrote the shard (also in the manifest's build options).
    public var buildID: String

    public init(number: Int, firstIndex: Int, count: Int, levels: [Int], channels: Int, buildID: String,
                formatVersion: Int = Manifest.currentFormatVersion) {
        self.formatVersion = formatVersion
        self.number = number; self.firstIndex = firstIndex; self.count = count
        self.levels = levels; self.channels = channels; self.buildID = buildID
    }

    public func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }
}

/// Shard directory name for shard `number`: `shard-00000`.
public func shardDirectoryName(_ number: Int) -> String {
    let digits = String(number)
    return "shard-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
}
