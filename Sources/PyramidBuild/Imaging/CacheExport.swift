import CVips
import Foundation
import PyramidCache

/// Pictures of a cache: one sample at one level, or a contact sheet of many samples at every level.
public enum CacheExport {
    /// Writes sample `index` at `level` (default: the largest) as PNG.
    public static func exportSample(_ reader: CacheReader, index: Int, level: Int?, to path: String) throws {
        let session = reader.makeSession()
        let size = level ?? reader.manifest.levels[0].size
        let (header, pixels) = try session.image(index: index, level: size)
        try ImageWriter.writePNG(pixels, width: header.width, height: header.height, channels: header.channels, to: path)
    }

    /// Writes a contact sheet of the first `count` samples: one row per sample (its index and
    /// class), one column per level (its size), each level at its stored size (scaled alike).
    /// - Returns: the sheet's width and height.
    @discardableResult
    public static func exportGrid(_ reader: CacheReader, count: Int, to path: String) throws -> (Int, Int) {
        let m = reader.manifest
        let session = reader.makeSession()
        let labels = try reader.labels()
        var rows: [[SheetImage]] = []
        for i in 0..<min(count, m.sampleCount) {
            rows.append(try m.levels.map { level in
                let (header, pixels) = try session.image(index: i, level: level.size)
                return SheetImage(width: header.width, height: header.height, pixels: pixels)
            })
        }
        let sheet = ContactSheet(title: "each row: one sample at every stored level, largest first",
                                 columnTitles: m.levels.map { "\($0.size) px" },
                                 rowLabels: rows.indices.map { rowLabel(index: $0, label: labels[$0], classes: m.classes) },
                                 rows: rows, channels: m.channels)
        return try sheet.write(to: path)
    }

    /// `#7 Sneaker`: a sample's index and class name.
    public static func rowLabel(index: Int, label: Int32, classes: [String]) -> String {
        // Classes that are bare numbers (an IDX or CIFAR source without --class-names) read as "class 9".
        let name = classes.indices.contains(Int(label)) ? classes[Int(label)] : "\(label)"
        return "#\(index) \(Int(name) != nil ? "class \(name)" : name)"
    }

    /// One picture of a contact sheet: `width × height × channels` interleaved bytes.
    public struct SheetImage: Sendable {
        public var width: Int
        public var height: Int
        public var pixels: [UInt8]
        public init(width: Int, height: Int, pixels: [UInt8]) { self.width = width; self.height = height; self.pixels = pixels }
    }
}

