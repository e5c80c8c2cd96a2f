import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

/// The contact sheet says what it shows: column headings, row labels, a title; blocks separated
/// by white and a rule, never by grey.
@Suite struct ContactSheetTests {
    func picture(_ side: Int, _ value: UInt8) -> ContactSheet.Picture { .init(width: side, height: side, pixels: [UInt8](repeating: value, count: side * side)) }

    @Test func theSheetLabelsEveryColumnAndRow() throws {
        let rows = (0..<30).map { i in [28, 20, 14].map { picture($0, UInt8(i)) } }
        let labels = (0..<30).map { CacheExport.rowLabel(index: $0, label: Int32($0 % 3), classes: ["T-shirt/top", "Trouser", "Pullover"]) }
        let sheet = ContactSheet(title: "each row: one sample at every stored level", columnTitles: ["28 px", "20 px", "14 px"],
                                 rowLabels: labels, rows: rows, channels: 1)
        let svg = try sheet.svg(path: "test.svg")
        #expect(svg.contains(">each row: one sample at every stored level</text>"))
        let layout = sheet.layout
        #expect(layout.blocks > 1, "30 rows wrap into blocks: \(layout)")
        for title in ["28 px", "20 px", "14 px"] {
            #expect(svg.components(separatedBy: ">\(title)</text>").count - 1 == layout.blocks, "\(title) heads every block")
        }
        for label in ["#0 T-shirt/top", "#1 Trouser", "#29 Pullover"] { #expect(svg.contains(">\(label)</text>"), "\(label)") }
        #expect(svg.components(separatedBy: "<image ").count - 1 == 90)
        #expect(!svg.contains("#606060") && svg.contains("fill=\"white\""))
        // Blocks hold the rows evenly (none a stub).
        #expect(layout.rowsPerBlock * layout.blocks - 30 < layout.blocks)
    }

    @Test func classesThatAreNumbersReadAsClasses() {
        #expect(CacheExport.rowLabel(index: 7, label: 9, classes: (0..<10).map(String.init)) == "#7 class 9")
        #expect(CacheExport.rowLabel(index: 3, label: 1, classes: ["cat", "dog"]) == "#3 dog")
    }

    @Test func aSheetIsWrittenAsPNGOrSVG() throws {
        let out = TempDirectory()
        let sheet = ContactSheet(title: "t", columnTitles: ["8 px"], rowLabels: ["#0 x"], rows: [[picture(8, 200)]], channels: 1)
        let (w, h) = try sheet.write(to: out.path("s.png"))
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out.path("s.png"))))
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47] && w > 8 && h > 8)
        try sheet.write(to: out.path("s.svg"))
        #expect(try String(contentsOfFile: out.path("s.svg"), encoding: .utf8).hasPrefix("<svg"))
    }
}
