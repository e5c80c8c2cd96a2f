import Foundation
import PyramidCache
import PyramidBuild
import PyramidImageTestSupport
import PyramidTestSupport
import Testing

/// `--quiet` means quiet: libvips' warnings about damaged files go into the build report, per
/// file, never to the terminal.
@Suite struct QuietTests {
    @Test func libvipsWarningsGoToTheReportNotTheTerminal() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let photo = src.path("cat/photo.jpg")
        try Fixtures.writeImage(Fixtures.pattern(width: 96, height: 80, channels: 3, seed: 5), width: 96, height: 80, channels: 3, to: photo)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: photo))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: src.path("dog/cut.jpg")))
        // Damage inside the entropy-coded data: libjpeg warns ("Corrupt JPEG data") and decodes.
        var damaged = [UInt8](bytes)
        for i in stride(from: damaged.count / 2, to: damaged.count - 64, by: 97) { damaged[i] = 0xFF; damaged[i + 1] = 0xD3 }
        try Data(damaged).write(to: URL(fileURLWithPath: src.path("dog/damaged.jpg")))
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "32,16", "--quiet"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.isEmpty && b.stdout.isEmpty, "--quiet printed: \(b.stderr)\(b.stdout)")
        let report = try JSONDecoder().decode(BuildReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(cache)/build-report.json")))
        let cut = try #require(report.skipped.first { $0.path.hasSuffix("cut.jpg") })
        print("cut.jpg: \(cut.reason)")
        print("warnings: \(report.warnings ?? [])")
        #expect(cut.reason.contains("Premature end"), "\(cut.reason)")
        let warned = try #require(report.warnings)
        #expect(warned.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["damaged.jpg"], "\(warned)")
        #expect(warned.first?.reason.contains("Corrupt JPEG data") == true, "\(warned)")
        #expect(report.skipped.map { URL(fileURLWithPath: $0.path).lastPathComponent }.sorted() == ["broken.jpg", "cut.jpg"])
    }
}
