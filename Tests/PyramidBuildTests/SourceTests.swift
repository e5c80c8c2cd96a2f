import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct SourceTests {
    @Test(arguments: [true, false])
    func idxGzippedOrNot(gzip: Bool) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 30, gzip: gzip)
        let catalog = try SourceFormat.open(path: src.url.path, format: nil, split: "train", classNames: nil)
        #expect(catalog.source.format == "idx" && catalog.count == 30 && catalog.naturalChannels == 1)
        var options = BuildOptions(levels: [28, 14])
        options.workers = 1
        try build(src.url.path, out.url.appendingPathComponent("c"), options)
        let reader = try CacheReader(url: out.url.appendingPathComponent("c"))
        // Level 28 of a 28 px source is the source itself, byte for byte.
        for i in [0, 7, 29] {
            #expect(try reader.makeSession().image(index: i, level: 28).pixels == Fixtures.pattern(width: 28, height: 28, channels: 1, seed: i))
        }
        #expect(try reader.labels() == (0..<30).map { Int32($0 % 10) })
    }

    @Test func idxWithWrongCountIsAMalformedSource() throws {
        let src = TempDirectory()
        try makeIDX(src, count: 5, gzip: false)
        let path = src.path("train-images-idx3-ubyte")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.removeLast(10)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: BuildError.self) { try SourceFormat.open(path: src.url.path, format: nil, split: "train", classNames: nil) }
    }

    @Test func cifar10And100AreDeinterleavedWithTheirLabels() throws {
        let dir = TempDirectory()
        let images = (0..<6).map { Fixtures.pattern(width: 32, height: 32, channels: 3, seed: $0) }
        for b in 1...5 { try Fixtures.writeCIFAR(path: dir.path("data_batch_\(b).bin"), images: images, labels: (0..<6).map { [UInt8(($0 + b) % 10)] }) }
        try "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".write(toFile: dir.path("batches.meta.txt"), atomically: true, encoding: .utf8)
        let c10 = try SourceFormat.open(path: dir.url.path, format: nil, split: "train", classNames: nil)
        #expect(c10.source.format == "cifar10" && c10.count == 30 && c10.classes[9] == "truck")
        #expect(c10.label(at: 6) == 2) // batch 2, record 0: (0 + 2) % 10
        guard case .raster(let r) = c10.items else { Issue.record("CIFAR should be raster"); return }
        #expect(Array(r.pixels[0..<3072]) == images[0])

        let d100 = TempDirectory()
        try Fixtures.writeCIFAR(path: d100.path("train.bin"), images: images, labels: (0..<6).map { [UInt8($0), UInt8(90 + $0)] })
        let c100 = try SourceFormat.open(path: d100.url.path, format: nil, split: "train", classNames: nil)
        #expect(c100.source.format == "cifar100" && c100.classes.count == 100)
        #expect((0..<6).map { c100.label(at: $0) } == (0..<6).map { 90 + $0 }) // the fine label
    }

    @Test func listFileWithNamesAndABadLine() throws {
        let dir = TempDirectory()
        try Fixtures.writeImage(Fixtures.pattern(width: 20, height: 20, channels: 3), width: 20, height: 20, channels: 3, to: dir.path("a.png"))
        try Fixtures.writeImage(Fixtures.pattern(width: 20, height: 20, channels: 3, seed: 1), width: 20, height: 20, channels: 3, to: dir.path("b.png"))
        try "# comment\na.png\tzebra\nb.png\tant\nno-tab-here\n\n".write(toFile: dir.path("list.txt"), atomically: true, encoding: .utf8)
        let catalog = try SourceFormat.open(path: dir.path("list.txt"), format: nil, split: "train", classNames: nil)
        #expect(catalog.source.format == "list")
        #expect(catalog.classes == ["ant", "zebra"])
        #expect(catalog.count == 2 && catalog.label(at: 0) == 1 && catalog.label(at: 1) == 0)
        #expect(catalog.refused == [SkippedItem(path: dir.path("list.txt") + ":4", reason: "expected `path<TAB>label`")])
    }

    @Test func folderClassesAreSortedAndStrayFilesRefused() throws {
        let dir = TempDirectory()
        for cls in ["b-cat", "a-dog"] {
            try FileManager.default.createDirectory(atPath: dir.path(cls), withIntermediateDirectories: true)
            for i in 0..<2 {
                try Fixtures.writeImage(Fixtures.pattern(width: 16, height: 16, channels: 3, seed: i), width: 16, height: 16, channels: 3, to: dir.path("\(cls)/\(i).png"))
            }
        }
        try "notes".write(toFile: dir.path("README.txt"), atomically: true, encoding: .utf8)
        let catalog = try SourceFormat.open(path: dir.url.path, format: nil, split: "train", classNames: nil)
        #expect(catalog.classes == ["a-dog", "b-cat"])
        #expect(catalog.count == 4 && catalog.label(at: 0) == 0 && catalog.label(at: 3) == 1)
        #expect(catalog.refused == [SkippedItem(path: dir.path("README.txt"), reason: "not inside a class folder")])
    }

    @Test func missingSourceIsNamed() {
        #expect(throws: BuildError.missingSource(path: "/nonexistent/data")) {
            try SourceFormat.open(path: "/nonexistent/data", format: nil, split: "train", classNames: nil)
        }
    }
}
