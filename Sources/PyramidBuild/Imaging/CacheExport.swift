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
        let n = min(count, m.sampleCount)
        let session = reader.makeSession()
        let c = m.channels
        let gap = 2
        var images: [[(RecordHeader, [UInt8])]] = []
        var colWidth = Array(repeating: 0, count: m.levels.count)
        var rowHeight = 0
        for i in 0..<n {
            var row: [(RecordHeader, [UInt8])] = []
            for (l, level) in m.levels.enumerated() {
                let image = try session.image(index: i, level: level.size)
                colWidth[l] = max(colWidth[l], image.header.width)
                rowHeight = max(rowHeight, image.header.height)
                row.append(image)
            }
            images.append(row)
        }
        let blockWidth = colWidth.reduce(gap) { $0 + $1 + gap }
        let rowsPerBlock = Int((Double(n) * Double(blockWidth) / Double(rowHeight + gap)).squareRoot().rounded(.up)).clamped(to: 1...max(n, 1))
        let blocks = (n + rowsPerBlock - 1) / rowsPerBlock
        let width = blocks * blockWidth + gap
        let height = min(n, rowsPerBlock) * (rowHeight + gap) + gap
        var sheet = [UInt8](repeating: 96, count: width * height * c)
        for (i, row) in images.enumerated() {
            let (block, r) = (i / rowsPerBlock, i % rowsPerBlock)
            var x = block * blockWidth + gap
            let y = r * (rowHeight + gap) + gap
            for (l, (header, pixels)) in row.enumerated() {
                for yy in 0..<header.height {
                    let dst = ((y + yy) * width + x) * c
                    sheet.replaceSubrange(dst..<(dst + header.width * c), with: pixels[(yy * header.width * c)..<((yy + 1) * header.width * c)])
                }
                x += colWidth[l] + gap
            }
        }
        try ImageWriter.writePNG(sheet, width: width, height: height, channels: c, to: path)
        return (width, height)
    }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}
