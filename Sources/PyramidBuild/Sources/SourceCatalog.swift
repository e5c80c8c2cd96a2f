import Foundation
import PyramidCache

/// A source item that was refused while listing the source, before any decoding.
public struct SkippedItem: Codable, Equatable, Sendable {
    /// The file (or `file#record`) that was skipped.
    public var path: String
    /// Why, in words a person can act on.
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// An image file and its label.
public struct FileItem: Equatable, Sendable {
    public var path: String
    public var label: Int
    public init(path: String, label: Int) { self.path = path; self.label = label }
}

/// Many same-sized 8-bit images held in memory (CIFAR, IDX): interleaved HWC, one after another.
public struct RasterSet: Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]
    public var labels: [Int]
    /// Names a record in reports, e.g. `train-images-idx3-ubyte.gz#123`.
    public var recordName: @Sendable (Int) -> String

    public var count: Int { labels.count }
    public var imageBytes: Int { width * height * channels }

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8], labels: [Int], recordName: @escaping @Sendable (Int) -> String) {
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels; self.labels = labels; self.recordName = recordName
    }
}

/// A listed source: what will be built, in a fixed order.
///
/// The order is the order of sample indices (minus skipped items), and it never depends on the
/// file system's listing order: folders and files are sorted by their UTF-8 bytes.
public struct SourceCatalog: Sendable {
    public enum Items: Sendable {
        case files([FileItem])
        case raster(RasterSet)
    }

    public var source: Manifest.Source
    public var classes: [String]
    public var items: Items

    /// Consecutive items a build renders and commits as one chunk: many small decoded rasters
    /// share one libvips mosaic; files are decoded one by one, so fewer make a chunk.
    var chunkSize: Int {
        switch items { case .raster: 256; case .files: 16 }
    }
    /// Items refused while listing (stray files, bad list lines).
    public var refused: [SkippedItem]
    /// Channels of the source when the build does not ask for others.
    public var naturalChannels: Int

    public var count: Int {
        switch items {
        case .files(let f): return f.count
        case .raster(let r): return r.count
        }
    }

    public func label(at position: Int) -> Int {
        switch items {
        case .files(let f): return f[position].label
        case .raster(let r): return r.labels[position]
        }
    }

    public func name(at position: Int) -> String {
        switch items {
        case .files(let f): return f[position].path
        case .raster(let r): return r.recordName(position)
        }
    }

    /// Keeps only the first `limit` items.
    public mutating func truncate(to limit: Int) {
        guard limit < count else { return }
        switch items {
        case .files(let f): items = .files(Array(f.prefix(limit)))
        case .raster(var r):
            r.pixels = Array(r.pixels.prefix(limit * r.imageBytes))
            r.labels = Array(r.labels.prefix(limit))
            items = .raster(r)
        }
    }
}

/// The source formats `pyramid build` reads.
public enum SourceFormat: String, CaseIterable, Sendable {
    case folder, list, cifar10, cifar100, idx

    /// Lists a source: detects its format unless one is named.
    /// - Parameters:
    ///   - split: `train` or `test`, for CIFAR and IDX directories.
    ///   - classNames: names for integer labels (IDX, CIFAR without its meta file, integer list files).
    public static func open(path: String, format: SourceFormat?, split: String, classNames: [String]?) throws -> SourceCatalog {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BuildError.missingSource(path: path)
        }
        let chosen = try format ?? detect(path: path, isDirectory: isDir.boolValue)
        var catalog: SourceCatalog
        switch chosen {
        case .folder: catalog = try FolderSource.list(root: path)
        case .list: catalog = try ListSource.list(file: path)
        case .cifar10, .cifar100: catalog = try CIFARSource.load(path: path, variant: chosen, split: split)
        case .idx: catalog = try IDXSource.load(path: path, split: split)
        }
        if let classNames {
            let needed = (catalog.classes.count)
            guard classNames.count >= needed else {
                throw BuildError.invalidOption(name: "classNames", reason: "\(classNames.count) names given, the source has \(needed) classes")
            }
            catalog.classes = Array(classNames.prefix(max(needed, classNames.count)))
        }
        return catalog
    }

    /// Guesses the format from what is at `path`.
    static func detect(path: String, isDirectory: Bool) throws -> SourceFormat {
        let fm = FileManager.default
        if isDirectory {
            let names = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            if names.contains(where: { $0.contains("idx3-ubyte") }) { return .idx }
            if names.contains(where: { $0.hasPrefix("data_batch_") && $0.hasSuffix(".bin") }) || names.contains("test_batch.bin") { return .cifar10 }
            if names.contains("train.bin") || names.contains("test.bin") { return .cifar100 }
            return .folder
        }
        let name = (path as NSString).lastPathComponent
        if name.contains("idx3-ubyte") { return .idx }
        if name.hasSuffix(".bin") {
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if size > 0 && size % 3073 == 0 { return .cifar10 }
            if size > 0 && size % 3074 == 0 { return .cifar100 }
            throw BuildError.unrecognizedSource(path: path, reason: "a .bin file whose size (\(size) bytes) is not a whole number of CIFAR-10 (3073) or CIFAR-100 (3074) records")
        }
        return .list
    }
}

/// Sorts by UTF-8 bytes, the same on every machine and locale.
func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
