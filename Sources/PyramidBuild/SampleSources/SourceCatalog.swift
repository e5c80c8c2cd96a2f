import Foundation
import PyramidCache

/// A listed source: what will be built, in a fixed order.
///
/// The order is the order of sample indices (minus skipped items), and it never depends on the
/// file system's listing order: folders and files are sorted by their UTF-8 bytes.
public struct SourceCatalog: Sendable {
    public enum Items: Sendable {
        case files([FileItem])
        case raster(RasterSet)
    }

    /// The most classes a cache holds (labels are stored as 32-bit integers; the manifest lists
    /// every class name, so a bound keeps a stray label from making it millions of names long).
    public static let maxClasses = 1 << 20

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

    /// Whether the items are image files (a folder or a list), which get JPEG levels by default
    /// (``BuildOptions/defaultCodecs(photoSource:)``), rather than raster data sets (IDX, CIFAR).
    public var isPhotoSource: Bool {
        if case .files = items { return true }
        return false
    }

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

/// Sorts by UTF-8 bytes, the same on every machine and locale.
func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
