import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a sample, or a contact sheet of the first N samples at every level, as PNG.",
        discussion: """
            pyramid export CACHE --index 7 --level 14 -o seven.png
            pyramid export CACHE --grid 64 -o sheet.png   (one row per sample, one column per level)
            """)

    @Argument(help: "The cache directory.")
    var cache: String

    @Option(help: "The sample index to export.")
    var index: Int?

    @Option(help: "The level to export (default: the largest).")
    var level: Int?

    @Option(help: "Contact sheet of the first N samples at every level.")
    var grid: Int?

    @Option(name: [.short, .customLong("output")], help: "The PNG file to write.")
    var output: String

    func validate() throws {
        if (index == nil) == (grid == nil) { throw ValidationError("give exactly one of --index I or --grid N") }
        if let grid, grid < 1 { throw ValidationError("--grid: must be at least 1") }
        if grid != nil && level != nil { throw ValidationError("--level goes with --index; --grid shows every level") }
    }

    func run() throws {
        let reader = try CacheReader(url: URL(fileURLWithPath: cache))
        if let index {
            try CacheExport.exportSample(reader, index: index, level: level, to: output)
            print("wrote \(output): sample \(index) at level \(level ?? reader.manifest.levels[0].size)")
        } else if let grid {
            let (w, h) = try CacheExport.exportGrid(reader, count: grid, to: output)
            print("wrote \(output): \(min(grid, reader.manifest.sampleCount)) samples x \(reader.manifest.levels.count) levels, \(w)x\(h) px")
        }
    }
}
