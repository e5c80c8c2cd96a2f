import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct OutputTests {
    @Test func existingOutputNeedsResumeOrOverwrite() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 20)
        let cache = out.url.appendingPathComponent("c")
        try build(src.url.path, cache, BuildOptions(levels: [14]))
        #expect(throws: BuildError.self) { try build(src.url.path, cache, BuildOptions(levels: [14])) }
        var resume = BuildOptions(levels: [14]); resume.mode = .resume
        #expect(throws: BuildError.self) { try build(src.url.path, cache, resume) }
        var overwrite = BuildOptions(levels: [14, 7]); overwrite.mode = .overwrite
        try build(src.url.path, cache, overwrite)
        #expect(try CacheReader(url: cache).manifest.levelSizes == [14, 7])
    }

    @Test func aFolderThatIsNotACacheIsNeverWrittenOrDeleted() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 5)
        try "keep me".write(toFile: out.path("precious.txt"), atomically: true, encoding: .utf8)
        var overwrite = BuildOptions(levels: [14]); overwrite.mode = .overwrite
        #expect(throws: BuildError.self) { try build(src.url.path, out.url, overwrite) }
        #expect(FileManager.default.fileExists(atPath: out.path("precious.txt")))
    }

    @Test func badOptionsAreNamed() {
        var o = BuildOptions(levels: [28, 0]); #expect(throws: BuildError.invalidOption(name: "levels", reason: "0 is outside 1...4096")) { try o.validate() }
        o = BuildOptions(levels: [28]); o.channels = 2
        #expect(throws: BuildError.invalidOption(name: "channels", reason: "must be 1 or 3, not 2")) { try o.validate() }
        o = BuildOptions(levels: [28]); o.margin = 0.5
        #expect(throws: BuildError.self) { try o.validate() }
        o = BuildOptions(levels: [28, 28])
        #expect(throws: BuildError.invalidOption(name: "levels", reason: "levels must be distinct")) { try o.validate() }
    }

    @Test func contactSheetAndSingleExportWritePNGs() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 12)
        let cache = out.url.appendingPathComponent("c")
        try build(src.url.path, cache, BuildOptions(levels: [28, 14]))
        let reader = try CacheReader(url: cache)
        let (w, h) = try CacheExport.exportGrid(reader, count: 12, to: out.path("sheet.png"))
        #expect(w > 28 + 14 && h > 28)
        try CacheExport.exportSample(reader, index: 3, level: 14, to: out.path("one.png"))
        let png = try Data(contentsOf: URL(fileURLWithPath: out.path("one.png")))
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        // IHDR width and height of the single export: 14 x 14.
        #expect(Array(png[16..<24]) == [0, 0, 0, 14, 0, 0, 0, 14])
    }
}
