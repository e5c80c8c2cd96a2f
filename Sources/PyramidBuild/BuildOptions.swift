import PyramidCache

/// Everything `pyramid build` can be told.
public struct BuildOptions: Sendable {
    /// How to take the stored region from a source image.
    public enum Crop: String, Sendable, CaseIterable {
        /// The centred square of the short side.
        case center
        /// The whole image, aspect ratio kept (short side = level size).
        case full
    }

    /// What to do with an existing output directory.
    public enum OutputMode: String, Sendable {
        /// Refuse an existing cache or interrupted build.
        case create
        /// Finish an interrupted build (a complete cache is left as it is).
        case resume
        /// Delete an existing cache or interrupted build first.
        case overwrite
    }

    /// Nominal level sizes; stored largest first.
    public var levels: [Int]
    /// 1 or 3; nil means the source's own (1 for IDX, 3 otherwise).
    public var channels: Int?
    public var crop: Crop = .center
    /// Stored extent over nominal extent, ≥ 1.
    public var margin: Double = 1.0
    public var shards: Int = 1
    public var workers: Int = 2
    public var zstdLevel: Int = 1
    /// Train one zstd dictionary per zstd level from a fixed sample of the source.
    public var dictionary: Bool = false
    /// The filter of zstd levels (JPEG levels are never filtered).
    public var filter: RecordHeader.Filter = .none
    /// Codecs of the levels: nil for the default (``defaultCodecs(photoSource:)``), one codec for
    /// every level, or one per level, largest level first.
    public var codecs: [LevelCodec]?
    /// Images whose header claims more pixels are refused before decoding.
    public var maxPixels: Int = 100_000_000
    public var strict: Bool = false
    public var mode: OutputMode = .create
    /// Use only the first `limit` source items.
    public var limit: Int?
    /// The cache format version to write: 3 (a file per level in each shard), or 2 (one file per
    /// shard, for readers older than version 3).
    public var formatVersion: Int = Manifest.defaultBuildVersion

    public init(levels: [Int]) { self.levels = levels }

    /// Stored short side of a level.
    public func storedSide(_ level: Int) -> Int { Int((Double(level) * margin).rounded()) }

    /// Checks values; the tool calls this before touching the disk.
    public func validate() throws {
        if levels.isEmpty { throw BuildError.invalidOption(name: "levels", reason: "give at least one level") }
        if let bad = levels.first(where: { $0 < 1 || $0 > 4096 }) {
            throw BuildError.invalidOption(name: "levels", reason: "\(bad) is outside 1...4096")
        }
        if Set(levels).count != levels.count { throw BuildError.invalidOption(name: "levels", reason: "levels must be distinct") }
        if let c = channels, c != 1 && c != 3 { throw BuildError.invalidOption(name: "channels", reason: "must be 1 or 3, not \(c)") }
        if !(margin >= 1 && margin <= 4) { throw BuildError.invalidOption(name: "margin", reason: "must be between 1 and 4, not \(margin)") }
        if storedSide(levels.max()!) > 65535 { throw BuildError.invalidOption(name: "margin", reason: "stored size is too large") }
        if shards < 1 || shards > 4096 { throw BuildError.invalidOption(name: "shards", reason: "must be between 1 and 4096, not \(shards)") }
        if workers < 1 || workers > 256 { throw BuildError.invalidOption(name: "workers", reason: "must be between 1 and 256, not \(workers)") }
        if zstdLevel < -7 || zstdLevel > 19 { throw BuildError.invalidOption(name: "zstdLevel", reason: "must be between -7 and 19, not \(zstdLevel)") }
        if maxPixels < 1 { throw BuildError.invalidOption(name: "maxPixels", reason: "must be positive") }
        if let l = limit, l < 1 { throw BuildError.invalidOption(name: "limit", reason: "must be positive") }
        if formatVersion != 2 && formatVersion != 3 {
            throw BuildError.invalidOption(name: "cacheVersion", reason: "must be 2 or 3, not \(formatVersion)")
        }
        if let codecs, codecs.count != 1 && codecs.count != levels.count {
            throw BuildError.invalidOption(name: "codecs", reason: "give one codec, or one per level (\(levels.count)), not \(codecs.count)")
        }
    }

    /// Levels largest first.
    public var sortedLevels: [Int] { levels.sorted(by: >) }

    /// The smallest nominal size stored as JPEG by default, from photo sources.
    public static let defaultJPEGMinimumSize = 64

    /// The default codecs, largest level first: for photo sources (folders and lists of image files),
    /// JPEG at quality `LevelCodec.defaultJPEGQuality` (90) for levels of ``defaultJPEGMinimumSize`` px
    /// and more, zstd below; for IDX and CIFAR, zstd everywhere.
    public func defaultCodecs(photoSource: Bool) -> [LevelCodec] {
        sortedLevels.map { photoSource && $0 >= Self.defaultJPEGMinimumSize ? .jpeg(quality: LevelCodec.defaultJPEGQuality) : .zstd }
    }

    /// The codec of every level, largest first: ``codecs`` expanded, or the default.
    public func levelCodecs(photoSource: Bool) -> [LevelCodec] {
        guard let codecs else { return defaultCodecs(photoSource: photoSource) }
        return codecs.count == 1 ? Array(repeating: codecs[0], count: levels.count) : codecs
    }
}
