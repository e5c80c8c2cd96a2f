import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

/// A folder with every kind of bad input beside good images.
struct BadCorpus {
    let dir = TempDirectory("bad-corpus")
    /// Expected report: path → a fragment of the reason.
    var expected: [String: String] = [:]
    let goodCount = 3

    init() throws {
        let fm = FileManager.default
        let cls = dir.path("class")
        try fm.createDirectory(atPath: cls, withIntermediateDirectories: true)
        for i in 0..<goodCount {
            try Fixtures.writeImage(Fixtures.pattern(width: 48, height: 40, channels: 3, seed: i), width: 48, height: 40, channels: 3, to: "\(cls)/good-\(i).jpg")
        }
        // Truncated JPEG and PNG: the first part of a real file.
        try Fixtures.writeImage(Fixtures.pattern(width: 64, height: 64, channels: 3, seed: 9), width: 64, height: 64, channels: 3, to: "\(cls)/full.jpg")
        try Fixtures.writeImage(Fixtures.pattern(width: 64, height: 64, channels: 3, seed: 9), width: 64, height: 64, channels: 3, to: "\(cls)/full.png")
        for (name, from) in [("truncated.jpg", "full.jpg"), ("truncated.png", "full.png")] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(cls)/\(from)"))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: "\(cls)/\(name)"))
            try fm.removeItem(atPath: "\(cls)/\(from)")
            expected["\(cls)/\(name)"] = "cannot decode"
        }
        try Data().write(to: URL(fileURLWithPath: "\(cls)/empty.jpg"))
        expected["\(cls)/empty.jpg"] = "empty file"
        try "this is not a picture\n".write(toFile: "\(cls)/text.jpg", atomically: true, encoding: .utf8)
        expected["\(cls)/text.jpg"] = "not an image"
        try Fixtures.writePNGBomb(to: "\(cls)/bomb.png", width: 60000, height: 60000)
        expected["\(cls)/bomb.png"] = "more than --max-pixels"
        try fm.createSymbolicLink(atPath: "\(cls)/unreadable.png", withDestinationPath: dir.path("does-not-exist.png"))
        expected["\(cls)/unreadable.png"] = "cannot open"
        try "stray".write(toFile: dir.path("stray.txt"), atomically: true, encoding: .utf8)
        expected[dir.path("stray.txt")] = "not inside a class folder"
    }
}

@Suite struct BadInputTests {
    /// An image so wide that, stored whole at the level's short side, a side would not fit a
    /// record's 16-bit header: skipped with its reason (it used to trap while encoding).
    @Test func anImageTooWideForARecordIsSkipped() throws {
        let src = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: src.path("a"), withIntermediateDirectories: true)
        try Fixtures.writeImage([UInt8](repeating: 90, count: 70_000 * 2), width: 70_000, height: 2, channels: 1, to: src.path("a/wide.png"))
        try Fixtures.writeImage(Fixtures.pattern(width: 40, height: 30, channels: 3), width: 40, height: 30, channels: 3, to: src.path("a/ok.png"))
        var options = BuildOptions(levels: [16])
        options.crop = .full
        let report = try build(src.url.path, out.url.appendingPathComponent("c"), options)
        #expect(report.samplesWritten == 1)
        #expect(report.skipped.map(\.path) == [src.path("a/wide.png")])
        #expect(report.skipped.first?.reason.contains("560000x16 px; a record holds at most 65535 px a side") == true, "\(report.skipped)")
    }

    /// A truncated file's reason says what is wrong with it (libvips' message for that decode), not
    /// a stale message left in libvips' process-wide error buffer by an earlier call.
    @Test func aTruncatedFilesReasonIsItsOwn() throws {
        let corpus = try BadCorpus()
        let out = TempDirectory()
        var options = BuildOptions(levels: [32, 16])
        options.maxPixels = 10_000_000
        options.workers = 1
        let report = try build(corpus.dir.url.path, out.url.appendingPathComponent("c"), options)
        for item in report.skipped where item.path.hasSuffix("truncated.jpg") || item.path.hasSuffix("truncated.png") {
            print("\(item.path): \(item.reason)")
            #expect(!item.reason.contains("orientation") && !item.reason.contains("vips_image_get"), "\(item.path): \(item.reason)")
            #expect(["premature", "truncated", "end of", "not enough", "read error", "out of data"].contains { item.reason.lowercased().contains($0) },
                    "\(item.path): '\(item.reason)' does not say the file is cut short")
        }
    }

    @Test func eachBadInputIsSkippedAndReported() throws {
        let corpus = try BadCorpus()
        let out = TempDirectory()
        var options = BuildOptions(levels: [32, 16])
        options.maxPixels = 10_000_000
        let report = try build(corpus.dir.url.path, out.url.appendingPathComponent("c"), options)
        #expect(report.samplesWritten == corpus.goodCount)
        #expect(report.skippedCount == corpus.expected.count)
        #expect(Set(report.skipped.map(\.path)) == Set(corpus.expected.keys))
        for item in report.skipped {
            let fragment = corpus.expected[item.path] ?? "?"
            #expect(item.reason.contains(fragment), "\(item.path): '\(item.reason)' should mention '\(fragment)'")
        }
        // The report on disk says the same, and the cache is complete and sound.
        let onDisk = try JSONDecoder().decode(BuildReport.self, from: Data(contentsOf: out.url.appendingPathComponent("c/build-report.json")))
        #expect(onDisk.skipped == report.skipped)
        let reader = try CacheReader(url: out.url.appendingPathComponent("c"))
        #expect(reader.manifest.skipped == corpus.expected.count)
        #expect(try CacheVerifier(reader: reader).verify().ok)
        #expect(report.summary.contains("\(corpus.expected.count) skipped"))
    }

    @Test func strictStopsAtTheFirstBadInputWithoutAManifest() throws {
        let corpus = try BadCorpus()
        let out = TempDirectory()
        var options = BuildOptions(levels: [16])
        options.strict = true
        #expect(throws: BuildError.self) { try build(corpus.dir.url.path, out.url.appendingPathComponent("c"), options) }
        do { try build(corpus.dir.url.path, out.url.appendingPathComponent("d"), options) } catch let BuildError.badInput(path, _) {
            #expect(corpus.expected[path] != nil)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path("c/manifest.json")))
    }

    @Test func bombIsRefusedFromItsHeader() throws {
        // 60000 x 60000 x 3 would be 10.8 GB decoded; the refusal must come from the header alone.
        let dir = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: dir.path("c"), withIntermediateDirectories: true)
        try Fixtures.writePNGBomb(to: dir.path("c/bomb.png"), width: 60000, height: 60000)
        try Fixtures.writeImage(Fixtures.pattern(width: 10, height: 10, channels: 3), width: 10, height: 10, channels: 3, to: dir.path("c/ok.png"))
        let report = try build(dir.url.path, out.url.appendingPathComponent("c"), BuildOptions(levels: [8]))
        #expect(report.skipped.count == 1)
        #expect(report.skipped.first?.reason.contains("60000x60000") == true)
    }
}
