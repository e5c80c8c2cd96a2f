import Foundation

/// `build-report.json`: what was read, what was skipped and why, what it cost.
public struct BuildReport: Codable, Sendable {
    public struct LevelReport: Codable, Sendable {
        public var size: Int
        public var storedShortSide: Int
        /// `zstd` or `jpeg:Q`.
        public var codec: String
        public var bytes: Int
        public var rawBytes: Int
        public var bytesPerSample: Double
        /// Raw pixel bytes over stored bytes.
        public var compressionRatio: Double
        public var dictionaryBytes: Int
    }
    public static let fileName = "build-report.json"

    public var source: String
    public var format: String
    public var output: String
    public var sourceItems: Int
    public var samplesWritten: Int
    public var skippedCount: Int
    /// Every skipped item with its reason, in source order (refused-while-listing items first).
    public var skipped: [SkippedItem]
    /// Files kept although libvips warned while decoding them (a damaged but decodable JPEG), each
    /// with its warnings, in source order. libvips' warnings go here, never to the terminal.
    public var warnings: [SkippedItem]?
    public var levels: [LevelReport]
    /// Worker threads of each process.
    public var workers: Int
    public var shards: Int
    /// Processes that built it (`mpirun -np N`); nil for one.
    public var processes: Int?
    /// Seconds of this run; `totalSeconds` adds earlier interrupted runs.
    public var seconds: Double
    public var totalSeconds: Double
    public var dictionarySeconds: Double
    /// Source items processed per wall second of this run (dictionary training included).
    public var itemsPerSecond: Double
    public var resumed: Bool

    /// The one-line summary the tool prints.
    public var summary: String {
        let rate = itemsPerSecond >= 100 ? String(Int(itemsPerSecond)) : String(format: "%.1f", itemsPerSecond)
        var s = "built \(samplesWritten) samples at \(levels.count) levels (\(levels.map { String($0.size) }.joined(separator: ","))) into \(output)"
        let perSample = Double(levels.reduce(0) { $0 + $1.bytes }) / Double(max(samplesWritten, 1))
        var codecs: [(String, Int)] = []
        for l in levels { if codecs.last?.0 == l.codec { codecs[codecs.count - 1].1 += 1 } else { codecs.append((l.codec, 1)) } }
        s += String(format: "; %.1f KiB per sample (%@)", perSample / 1024,
                    codecs.map { "\($0.0) ×\($0.1)" }.joined(separator: ", ") as NSString)
        s += "; \(skippedCount) skipped"
        s += String(format: "; %.1f s, %@ items/s", seconds, rate)
        if dictionarySeconds >= 0.05 { s += String(format: " (%.1f s of it training dictionaries)", dictionarySeconds) }
        if let processes, processes > 1 { s += " on \(processes) processes" }
        if resumed { s += " (resumed)" }
        if let warnings, !warnings.isEmpty { s += "; \(warnings.count) decoded with libvips warnings" }
        if skippedCount > 0 || !(warnings ?? []).isEmpty { s += "; reasons in \(output)/\(BuildReport.fileName)" }
        return s
    }
}
