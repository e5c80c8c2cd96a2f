import Foundation
import PyramidCache

/// `build-state.json`: what an interrupted build needs in order to resume. Removed when the manifest is written.
struct BuildState: Codable {
    static let fileName = "build-state.json"
    var buildID: String
    /// Options that decide the bytes of the cache; a resume must match them.
    var fingerprint: [String: String]
    /// Dictionaries by level size (base64), when the build trains them.
    var dictionaries: [String: String]
    /// Wall seconds spent by earlier, interrupted runs.
    var priorSeconds: Double

    func write(to dir: URL) throws {
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(self), to: dir.appendingPathComponent(Self.fileName))
    }

    static func load(from dir: URL) -> BuildState? {
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent(fileName).path) else { return nil }
        return try? JSONDecoder().decode(BuildState.self, from: data)
    }
}

/// A shard's committed progress, stored under `progress` in its `meta` database with every commit.
struct ShardProgress: Codable {
    static let metaKey = "progress"
    /// The next source position to process (positions before it are written or skipped).
    var cursor: Int
    var count: Int
    var skipped: Int
    /// Per-channel sums of the largest level's pixel values and their squares (exact integers,
    /// so the mean and std do not depend on the order of commits).
    var sums: [UInt64]
    var squares: [UInt64]
    var pixels: UInt64
    var labelCounts: [Int]
    var bytes: [Int]
    var rawBytes: [Int]
    var complete: Bool
    /// Record `i` of the shard is keyed `keyBase + i`: the shard's first source position while it
    /// is built (known to any process before it starts), its first sample index once renumbered.
    var keyBase: Int
    /// A renumbering in progress: records `0..<moved` are already keyed `movedTo + i`.
    var movedTo: Int?
    var moved: Int

    init(cursor: Int, channels: Int, classes: Int, levels: Int) {
        self.cursor = cursor; count = 0; skipped = 0; keyBase = cursor; movedTo = nil; moved = 0
        sums = Array(repeating: 0, count: channels); squares = sums; pixels = 0
        labelCounts = Array(repeating: 0, count: classes)
        bytes = Array(repeating: 0, count: levels); rawBytes = bytes
        complete = false
    }

    func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }
}

/// Meta key of a skipped source position: `skip/0000000042`, so keys sort by position.
func skipKey(_ position: Int) -> String { positionKey("skip/", position) }

/// Meta key of a source position decoded with libvips warnings: `warn/0000000042`.
func warningKey(_ position: Int) -> String { positionKey("warn/", position) }

private func positionKey(_ prefix: String, _ position: Int) -> String {
    let s = String(position)
    return prefix + String(repeating: "0", count: max(0, 10 - s.count)) + s
}
