import Foundation
import PyramidCache

/// A labelled contact sheet: one row per sample (its index and class at the left), one column per
/// size (its size in px on top), so that the eye reads "one sample, all its sizes" from left to
/// right. Many rows wrap into blocks side by side, each with its own column headings, separated
/// by a white gutter and a rule (never by grey that looks like a missing picture).
///
/// The sheet is an SVG document (pictures embedded as PNG, labels as text), rendered to PNG with
/// libvips' SVG loader; a `.svg` output gets the document itself.
public struct ContactSheet {
    /// One picture: `width × height × channels` interleaved bytes.
    public typealias Picture = CacheExport.SheetImage

    public var title: String
    /// The heading of each column (`28 px`).
    public var columnTitles: [String]
    /// The label of each row (`#7 Sneaker`).
    public var rowLabels: [String]
    /// The pictures, row by row.
    public var rows: [[Picture]]
    public var channels: Int

    public init(title: String, columnTitles: [String], rowLabels: [String], rows: [[Picture]], channels: Int) {
        self.title = title; self.columnTitles = columnTitles; self.rowLabels = rowLabels; self.rows = rows; self.channels = channels
    }

    /// Where everything goes, in px of the document.
    public struct Layout: Equatable {
        /// Pictures are drawn `scale` times their size (nearest neighbour), so that the largest is
        /// at least 56 px: small levels stay visible and keep their proportions.
        public var scale: Int
        public var labelWidth: Int
        public var columnWidths: [Int]
        public var rowHeight: Int
        public var rowsPerBlock: Int
        public var blocks: Int
        public var blockWidth: Int
        public var width: Int
        public var height: Int
        static let margin = 10, gap = 6, gutter = 24, titleHeight = 26, headerHeight = 18
    }

    public var layout: Layout {
        let largest = rows.flatMap { $0.map { max($0.width, $0.height) } }.max() ?? 1
        let scale = max(1, Int((56.0 / Double(largest)).rounded(.up)))
        let columns = max(columnTitles.count, rows.map(\.count).max() ?? 0)
        var widths = Array(repeating: 0, count: columns)
        var rowHeight = 14
        for row in rows {
            for (k, p) in row.enumerated() { widths[k] = max(widths[k], p.width * scale); rowHeight = max(rowHeight, p.height * scale) }
        }
        for (k, t) in columnTitles.enumerated() { widths[k] = max(widths[k], 7 * t.count) }
        let labelWidth = 7 * (rowLabels.map(\.count).max() ?? 0) + Layout.gap
        let blockWidth = labelWidth + widths.reduce(0) { $0 + $1 + Layout.gap }
        let n = max(rows.count, 1)
        // Blocks side by side, as many as make the sheet closest to 4:3 (never more than needed).
        var best = (rows: n, score: Double.infinity)
        for count in 1...n {
            let perBlock = (n + count - 1) / count  // rows spread evenly over the blocks
            let blocks = (n + perBlock - 1) / perBlock
            let w = Double(blocks * blockWidth + (blocks - 1) * Layout.gutter)
            let h = Double(Layout.titleHeight + Layout.headerHeight + perBlock * (rowHeight + Layout.gap))
            let score = abs(log(w / h / (4.0 / 3.0)))
            if score < best.score - 1e-9 { best = (perBlock, score) }
        }
        let blocks = (n + best.rows - 1) / best.rows
        return Layout(scale: scale, labelWidth: labelWidth, columnWidths: widths, rowHeight: rowHeight, rowsPerBlock: best.rows,
                      blocks: blocks, blockWidth: blockWidth,
                      width: 2 * Layout.margin + blocks * blockWidth + (blocks - 1) * Layout.gutter,
                      height: 2 * Layout.margin + Layout.titleHeight + Layout.headerHeight + best.rows * (rowHeight + Layout.gap))
    }

    /// The sheet as an SVG document (`path` names the destination in errors).
    public func svg(path: String) throws -> String {
        let l = layout
        func esc(_ t: String) -> String {
            t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(l.width)\" height=\"\(l.height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(Layout.margin)\" y=\"\(Layout.margin + 14)\" font-size=\"14\">\(esc(title))</text>\n"
        let top = Layout.margin + Layout.titleHeight
        for block in 0..<l.blocks {
            let x0 = Layout.margin + block * (l.blockWidth + Layout.gutter)
            if block > 0 {
                let rule = x0 - Layout.gutter / 2
                s += "<line x1=\"\(rule)\" y1=\"\(top)\" x2=\"\(rule)\" y2=\"\(l.height - Layout.margin)\" stroke=\"#bbb\"/>\n"
            }
            var x = x0 + l.labelWidth
            for (k, t) in columnTitles.enumerated() {
                s += "<text x=\"\(x + l.columnWidths[k] / 2)\" y=\"\(top + 12)\" text-anchor=\"middle\" fill=\"#444\">\(esc(t))</text>\n"
                x += l.columnWidths[k] + Layout.gap
            }
        }
        for (i, row) in rows.enumerated() {
            let (block, r) = (i / l.rowsPerBlock, i % l.rowsPerBlock)
            let x0 = Layout.margin + block * (l.blockWidth + Layout.gutter)
            let y = top + Layout.headerHeight + r * (l.rowHeight + Layout.gap)
            if i < rowLabels.count {
                s += "<text x=\"\(x0)\" y=\"\(y + l.rowHeight / 2 + 4)\">\(esc(rowLabels[i]))</text>\n"
            }
            var x = x0 + l.labelWidth
            for (k, p) in row.enumerated() {
                let png = try ImageWriter.pngData(p.pixels, width: p.width, height: p.height, channels: channels, path: path)
                s += "<image x=\"\(x)\" y=\"\(y)\" width=\"\(p.width * l.scale)\" height=\"\(p.height * l.scale)\" image-rendering=\"optimizeSpeed\" "
                    + "preserveAspectRatio=\"none\" href=\"data:image/png;base64,\(Data(png).base64EncodedString())\"/>\n"
                x += l.columnWidths[k] + Layout.gap
            }
        }
        s += "</svg>\n"
        return s
    }

    /// Writes the sheet: the SVG document for a path ending in `.svg`, else a PNG rendered from it.
    /// - Returns: the sheet's width and height.
    @discardableResult
    public func write(to path: String) throws -> (Int, Int) {
        let document = try svg(path: path)
        if path.lowercased().hasSuffix(".svg") {
            try writeOutput(Data(document.utf8), to: path)
        } else {
            try ImageWriter.writePNG(svg: document, to: path)
        }
        let l = layout
        return (l.width, l.height)
    }
}
