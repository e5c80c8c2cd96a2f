#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The JSON description of a cache, stored as `manifest.json` at its top.
///
/// The manifest is written last and atomically (temporary file, then rename), so a
/// directory with a manifest holds a complete cache. Readers decode `formatVersion`
/// first and refuse versions they do not know (see ``Manifest/load(from:)``).
/// The format is specified in `docs/cache-format.md`.
public struct Manifest: Codable, Equatable, Sendable {
    /// The newest cache format version this module writes; it reads every version from 1 up to it.
    /// Version 2 adds a codec per level (zstd or JPEG) and a checksum in every record; version 3
    /// stores each level of a shard in a file of its own (`shard-00000/level-224.mdb`), so that a
    /// reader, a download or an eviction touches only the levels a run uses.
    public static let currentFormatVersion = 3
    /// The version `pyramid build` writes unless told otherwise.
    public static let defaultBuildVersion = 3
    /// The versions ``load(from:)`` accepts.
    public static let readableFormatVersions = 1...currentFormatVersion
    /// The file name of the manifest inside a cache directory.
    public static let fileName = "manifest.json"

    /// Where the samples came from.
    public struct Source: Codable, Equatable, Sendable {
        /// `folder`, `list`, `cifar10`, `cifar100` or `idx`.
        public var format: String
        /// The path given to `pyramid build`.
        public var path: String
        /// The split read (`train` or `test`) for sources that have splits.
        public var split: String?
        public init(format: String, path: String, split: String? = nil) {
            self.format = format; self.path = path; self.split = split
        }
    }

    /// One stored resolution.
    public struct Level: Codable, Equatable, Sendable {
        /// The nominal size: the side of the square view (or short side) a loader serves at this level.
        public var size: Int
        /// The stored short side: `round(size × margin)`. Equal to `size` without a margin.
        public var storedShortSide: Int
        /// Compressed bytes of all records of this level (headers included).
        public var bytes: Int
        /// Uncompressed pixel bytes of all records of this level.
        public var rawBytes: Int
        /// The zstd dictionary of this level, base64, if the build trained one.
        public var dictionary: String?
        /// `zstd` or `jpeg` (version 2; absent in version 1, where every level is zstd).
        public var codec: String?
        /// The JPEG quality of a `jpeg` level.
        public var quality: Int?
        public init(size: Int, storedShortSide: Int, bytes: Int = 0, rawBytes: Int = 0, dictionary: String? = nil,
                    codec: LevelCodec = .zstd) {
            self.size = size; self.storedShortSide = storedShortSide
            self.bytes = bytes; self.rawBytes = rawBytes; self.dictionary = dictionary
            self.levelCodec = codec
        }
        /// How this level's records are encoded (zstd when the manifest does not say).
        public var levelCodec: LevelCodec {
            get {
                switch codec {
                case nil, "zstd": return .zstd
                case "jpeg": return .jpeg(quality: quality ?? 0)
                default: return .jpeg(quality: -1)  // refused by Manifest.validate
                }
            }
            set {
                switch newValue {
                case .zstd: codec = "zstd"; quality = nil
                case .jpeg(let q): codec = "jpeg"; quality = q
                }
            }
        }
        /// The LMDB database name holding this level in every shard.
        public var databaseName: String { ShardDatabase.level(size) }
        /// The decoded dictionary bytes, if any.
        public var dictionaryBytes: [UInt8]? {
            dictionary.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) }
        }
    }

    /// How the stored image relates to the source image.
    public struct Shape: Codable, Equatable, Sendable {
        /// `center`: the centred square of the source's short side; `full`: the whole image, aspect kept.
        public var crop: String
        /// Stored extent over nominal extent (≥ 1). A margin of 1.143 stores the short side at
        /// `size/0.875`, so a centre crop of `size` is the usual evaluation view.
        public var margin: Double
        public init(crop: String, margin: Double) { self.crop = crop; self.margin = margin }
        /// True when every stored level is square.
        public var square: Bool { crop == "center" }
    }

    /// How records are encoded.
    public struct Codec: Codable, Equatable, Sendable {
        /// Always `zstd`: the settings of the zstd levels (in version 2 a level may be `jpeg` instead,
        /// see ``Manifest/Level/codec``).
        public var name: String
        /// The zstd compression level used.
        public var level: Int
        /// `none` or `sub` (PNG-style left-neighbour delta before compression).
        public var filter: String
        public init(name: String = "zstd", level: Int, filter: String) {
            self.name = name; self.level = level; self.filter = filter
        }
    }

    /// One shard: an LMDB environment holding a contiguous range of sample indices.
    public struct Shard: Codable, Equatable, Sendable {
        /// Directory name inside the cache, e.g. `shard-00000`.
        public var name: String
        /// The first sample index stored in this shard.
        public var firstIndex: Int
        /// The number of samples stored in this shard.
        public var count: Int
        /// Size and digest of the shard's `data.mdb` (versions 1 and 2; optional: written by
        /// builds since 0.9 and by `pyramid push`; remote reading needs it, local reading ignores it).
        public var file: FileDigest?
        /// Version 3: size and digest of each of the shard's files, by name (`meta.mdb`,
        /// `level-224.mdb`, …).
        public var files: [String: FileDigest]?
        public init(name: String, firstIndex: Int, count: Int, file: FileDigest? = nil, files: [String: FileDigest]? = nil) {
            self.name = name; self.firstIndex = firstIndex; self.count = count; self.file = file; self.files = files
        }
        /// The shard's data file in versions 1 and 2, relative to the cache's top: `shard-00000/data.mdb`.
        public var dataPath: String { name + "/data.mdb" }
    }


    /// The size and XXH3-64 digest of a file of the cache, for remote copies to be checked against.
    public struct FileDigest: Codable, Equatable, Sendable {
        public var bytes: Int
        /// XXH3-64 (seed 0), 16 hexadecimal digits.
        public var xxh3: String
        public init(bytes: Int, xxh3: UInt64) { self.bytes = bytes; self.xxh3 = RecordChecksum.hex(xxh3) }
        /// The digest as a number (nil when the manifest's text is not 16 hexadecimal digits).
        public var digest: UInt64? { xxh3.count == 16 ? UInt64(xxh3, radix: 16) : nil }
    }

    /// The name of the labels file a published cache carries: every label, Int32 little-endian,
    /// by sample index (so a remote reader knows them before fetching any shard).
    public static let labelsFileName = "labels.bin"

    public var formatVersion: Int
    public var toolVersion: String
    /// ISO 8601 time the build finished.
    public var createdAt: String
    public var source: Source
    /// Class names; a label is an index into this array.
    public var classes: [String]
    public var sampleCount: Int
    /// 1 (grey) or 3 (sRGB); pixels are interleaved (HWC), 8 bits per channel.
    public var channels: Int
    /// Stored levels, largest first.
    public var levels: [Level]
    public var shape: Shape
    public var codec: Codec
    public var shards: [Shard]
    /// Per-channel mean of the largest level's pixels, on a 0...1 scale.
    public var mean: [Double]
    /// Per-channel standard deviation of the largest level's pixels, on a 0...1 scale.
    public var std: [Double]
    /// Samples per class, indexed like `classes`.
    public var labelHistogram: [Int]
    /// Samples skipped as unreadable (details in `build-report.json`).
    public var skipped: Int
    /// The options the build ran with, as given on the command line.
    public var buildOptions: [String: String]
    /// Wall time of the build, summed over resumed parts.
    public var buildSeconds: Double
    /// Size and digest of ``labelsFileName`` (optional: present in published caches).
    public var labels: FileDigest?

    /// The identity of the build that made this cache (a random id drawn at its start, also in
    /// every shard): two caches with the same id are the same cache. Nil in caches too old to carry it.
    public var buildID: String? { buildOptions["buildID"] }

    public init(
        toolVersion: String, createdAt: String, source: Source, classes: [String], sampleCount: Int,
        channels: Int, levels: [Level], shape: Shape, codec: Codec, shards: [Shard], mean: [Double],
        std: [Double], labelHistogram: [Int], skipped: Int, buildOptions: [String: String], buildSeconds: Double
    ) {
        self.formatVersion = Manifest.currentFormatVersion
        self.toolVersion = toolVersion; self.createdAt = createdAt; self.source = source
        self.classes = classes; self.sampleCount = sampleCount; self.channels = channels
        self.levels = levels; self.shape = shape; self.codec = codec; self.shards = shards
        self.mean = mean; self.std = std; self.labelHistogram = labelHistogram; self.skipped = skipped
        self.buildOptions = buildOptions; self.buildSeconds = buildSeconds
    }

    /// Level sizes, largest first.
    public var levelSizes: [Int] { levels.map(\.size) }

    /// The level with nominal size `size`.
    /// - Throws: ``CacheError/unknownLevel(level:available:)``.
    public func level(_ size: Int) throws -> Level {
        guard let level = levels.first(where: { $0.size == size }) else {
            throw CacheError.unknownLevel(level: size, available: levelSizes)
        }
        return level
    }

    /// The shard holding sample `index`, by binary search over the shard ranges.
    /// - Complexity: O(log shards).
    public func shardNumber(of index: Int) -> Int? {
        guard index >= 0, index < sampleCount else { return nil }
        var lo = 0, hi = shards.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shards[mid].firstIndex <= index { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Checks internal consistency: shards are named `shard-00000`, `shard-00001`, … in order (so a
    /// reader never opens anything outside the cache directory), their ranges tile `0..<sampleCount`,
    /// levels are distinct and descending.
    public func validate(path: String) throws {
        var next = 0
        for (number, shard) in shards.enumerated() {
            guard shard.name == shardDirectoryName(number) else {
                throw CacheError.invalidManifest(path: path, reason: "shard \(number) is named \(String(reflecting: shard.name)), expected \(shardDirectoryName(number))")
            }
            guard shard.count >= 0, shard.count <= Int(Int32.max) else {
                throw CacheError.invalidManifest(path: path, reason: "shard \(shard.name) holds \(shard.count) samples (0...\(Int32.max))")
            }
            guard shard.firstIndex == next else {
                throw CacheError.invalidManifest(path: path, reason: "shard \(shard.name) starts at \(shard.firstIndex), expected \(next)")
            }
            next += shard.count
            if let f = shard.file, f.bytes < 0 || f.digest == nil {
                throw CacheError.invalidManifest(path: path, reason: "shard \(shard.name): file size \(f.bytes) or digest \(String(reflecting: f.xxh3)) is not valid")
            }
            for (name, f) in shard.files ?? [:] where f.bytes < 0 || f.digest == nil
                || !(name == Self.metaFileName || levels.contains { Self.levelFileName($0.size) == name }) {
                throw CacheError.invalidManifest(path: path, reason: "shard \(shard.name): file \(String(reflecting: name)) (\(f.bytes) bytes, digest \(String(reflecting: f.xxh3))) is not one of its files or not valid")
            }
        }
        if let f = labels, f.bytes != 4 * sampleCount || f.digest == nil {
            throw CacheError.invalidManifest(path: path, reason: "labels: \(f.bytes) bytes or digest \(String(reflecting: f.xxh3)) do not fit \(sampleCount) samples")
        }
        guard (0...Int(Int32.max)).contains(sampleCount) else {
            throw CacheError.invalidManifest(path: path, reason: "sampleCount \(sampleCount) is outside 0...\(Int32.max)")
        }
        guard next == sampleCount else {
            throw CacheError.invalidManifest(path: path, reason: "shards hold \(next) samples but sampleCount is \(sampleCount)")
        }
        guard !levels.isEmpty, zip(levels, levels.dropFirst()).allSatisfy({ $0.size > $1.size }) else {
            throw CacheError.invalidManifest(path: path, reason: "levels must be distinct and listed largest first")
        }
        guard channels == 1 || channels == 3 else {
            throw CacheError.invalidManifest(path: path, reason: "channels must be 1 or 3, found \(channels)")
        }
        for level in levels where !(1...Int(UInt16.max)).contains(level.size) || !(level.size...Int(UInt16.max)).contains(level.storedShortSide) {
            throw CacheError.invalidManifest(path: path, reason: "level \(level.size) (stored short side \(level.storedShortSide)) is outside 1...65535 px")
        }
        // Pixels are on a 0...1 scale: a mean or deviation outside it is damage, not data.
        guard mean.count == channels, std.count == channels, mean.allSatisfy({ (0...1).contains($0) }), std.allSatisfy({ (0...1).contains($0) }) else {
            throw CacheError.invalidManifest(path: path, reason: "mean \(mean) and std \(std) must hold one value in 0...1 per channel")
        }
        guard shape.margin.isFinite, (1...16).contains(shape.margin), ["center", "full"].contains(shape.crop) else {
            throw CacheError.invalidManifest(path: path, reason: "shape: crop \(shape.crop) margin \(shape.margin) (crop is center or full, margin 1...16)")
        }
        guard Int32(exactly: codec.level) != nil else {
            throw CacheError.invalidManifest(path: path, reason: "zstd level \(codec.level) is out of range")
        }
        for level in levels {
            switch (level.codec, level.quality) {
            case (nil, nil), ("zstd", nil): break
            case ("jpeg", let q?) where (1...100).contains(q) && formatVersion >= 2:
                guard level.dictionary == nil else {
                    throw CacheError.invalidManifest(path: path, reason: "level \(level.size) is JPEG but has a zstd dictionary")
                }
            default:
                throw CacheError.invalidManifest(
                    path: path,
                    reason: "level \(level.size): unknown codec \(level.codec ?? "-") quality \(level.quality.map(String.init) ?? "-") in a version \(formatVersion) cache")
            }
        }
    }

    /// Writes the manifest atomically: a temporary file in the same directory, then a rename.
    public func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(self), to: directory.appendingPathComponent(Manifest.fileName))
    }
}
