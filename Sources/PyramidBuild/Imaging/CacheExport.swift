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

    /// Writes a contact sheet: one row per sample (the first `count`), one column per level, each
    /// level at its stored size on a grey background, so the pyramid can be seen at a glance.
    /// Rows wrap into several blocks side by side when there are many samples.
    /// - Returns: the sheet's width and height.
    @discardableResult
    public static func exportGrid(_ reader: CacheReader, count: Int, to path: String) throws -> (Int, Int) {
        let m = reader.manifest
        let session = reader.makeSession()
        var rows: [[SheetImage]] = []
        for i in 0..<min(count, m.sampleCount) {
            rows.append(try m.levels.map { level in
                let (header, pixels) = try session.image(index: i, level: level.size)
                return SheetImage(width: header.width, height: header.height, pixels: pixels)
            })
        }
        return try writeSheet(rows: rows, channels: m.channels, to: path)
    }

    /// One picture of a contact sheet: `width × height × channels` interleaved bytes.
    public struct SheetImage: Sendable {
        public var width: Int
        public var height: Int
        public var pixels: [UInt8]
        public init(width: Int, height: Int, pixels: [UInt8]) { self.width = width; self.height = height; self.pixels = pixels }
    }

    /// Writes `rows` as a PNG contact sheet on a grey background, 2 px apart: column `k` as wide as
    /// its widest picture, rows as tall as the tallest; rows wrap into blocks side by side so the
    /// sheet stays roughly square.
    /// - Returns: the sheet's width and height.
    @discardableResult
    public static func writeSheet(rows: [[SheetImage]], channels c: Int, to path: String) throws -> (Int, Int) {
        let n = rows.count
        let gap = 2
        let columns = rows.map(\.count).max() ?? 0
        var colWidth = Array(repeating: 0, count: columns)
        var rowHeight = 1
        for row in rows {
            for (k, image) in row.enumerated() {
                colWidth[k] = max(colWidth[k], image.width)
                rowHeight = max(rowHeight, image.height)
            }
        }
        let blockWidth = colWidth.reduce(gap) { $0 + $1 + gap }
        let rowsPerBlock = Int((Double(n) * Double(blockWidth) / Double(rowHeight + gap)).squareRoot().rounded(.up)).clamped(to: 1...max(n, 1))
        let blocks = max(1, (n + rowsPerBlock - 1) / rowsPerBlock)
        let width = blocks * blockWidth + gap
        let height = min(max(n, 1), rowsPerBlock) * (rowHeight + gap) + gap
        var sheet = [UInt8](repeating: 96, count: width * height * c)
        for (i, row) in rows.enumerated() {
            let (block, r) = (i / rowsPerBlock, i % rowsPerBlock)
            var x = block * blockWidth + gap
            let y = r * (rowHeight + gap) + gap
            for (k, image) in row.enumerated() {
                let stride = image.width * c
                for yy in 0..<image.height {
                    let dst = ((y + yy) * width + x) * c
                    sheet.replaceSubrange(dst..<(dst + stride), with: image.pixels[(yy * stride)..<((yy + 1) * stride)])
                }
                x += colWidth[k] + gap
            }
        }
        try ImageWriter.writePNG(sheet, width: width, height: height, channels: c, to: path)
        return (width, height)
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
