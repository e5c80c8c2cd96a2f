import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct DeterminismTests {
    @Test func workersAndShardsDoNotChangeTheRecords() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 700) // several mosaic chunks, uneven last chunk
        var results: [[[UInt8]]] = []
        for (workers, shards) in [(1, 1), (2, 1), (2, 3), (3, 7)] {
            var options = BuildOptions(levels: [28, 24, 20, 16, 14, 12])
            options.workers = workers; options.shards = shards; options.dictionary = true
            options.codecs = [.jpeg(quality: 90), .zstd, .jpeg(quality: 75), .zstd, .zstd, .jpeg(quality: 90)]
            let dir = out.url.appendingPathComponent("w\(workers)s\(shards)")
            try build(src.url.path, dir, options)
            results.append(try recordBytes(dir))
        }
        for r in results.dropFirst() { #expect(r == results[0]) }
    }

    @Test func photoFolderIsIdenticalForOneAndTwoWorkers() throws {
        let src = TempDirectory(), out = TempDirectory()
        for c in 0..<2 {
            try FileManager.default.createDirectory(atPath: src.path("c\(c)"), withIntermediateDirectories: true)
            for i in 0..<20 { // more than one chunk of 16 per class, two sizes so both mosaic groups occur
                let (w, h) = i % 3 == 0 ? (120, 90) : (100, 130)
                try Fixtures.writeImage(Fixtures.pattern(width: w, height: h, channels: 3, seed: i + c * 50), width: w, height: h, channels: 3, to: src.path("c\(c)/\(i).jpg"))
            }
        }
        var a = BuildOptions(levels: [64, 48, 32]); a.workers = 1; a.filter = .sub
        var b = a; b.workers = 2; b.shards = 3
        try build(src.url.path, out.url.appendingPathComponent("a"), a)
        try build(src.url.path, out.url.appendingPathComponent("b"), b)
        #expect(try recordBytes(out.url.appendingPathComponent("a")) == recordBytes(out.url.appendingPathComponent("b")))
        // A photo folder's default: JPEG from 64 px up, lossless below.
        let manifest = try CacheReader(url: out.url.appendingPathComponent("a")).manifest
        #expect(manifest.levels.map(\.levelCodec) == [.jpeg(quality: 90), .zstd, .zstd])
    }

    @Test func aSampleDoesNotDependOnItsMosaicNeighbours() throws {
        // The same image built alone and among 300 others must give the same bytes at every level.
        let one = TempDirectory(), many = TempDirectory(), out = TempDirectory()
        let image = Fixtures.pattern(width: 28, height: 28, channels: 1, seed: 42)
        try Fixtures.writeIDX(directory: one.url.path, prefix: "train", images: [image], rows: 28, cols: 28, labels: [3], gzip: false)
        var images = (0..<300).map { Fixtures.pattern(width: 28, height: 28, channels: 1, seed: 1000 + $0) }
        images[157] = image
        try Fixtures.writeIDX(directory: many.url.path, prefix: "train", images: images, rows: 28, cols: 28,
                              labels: [UInt8](repeating: 3, count: 300), gzip: false)
        let options = BuildOptions(levels: [28, 22, 17, 12, 9])
        try build(one.url.path, out.url.appendingPathComponent("one"), options)
        try build(many.url.path, out.url.appendingPathComponent("many"), options)
        let a = try CacheReader(url: out.url.appendingPathComponent("one")).makeSession()
        let b = try CacheReader(url: out.url.appendingPathComponent("many")).makeSession()
        for level in options.sortedLevels {
            #expect(try a.image(index: 0, level: level).pixels == b.image(index: 157, level: level).pixels, "level \(level)")
        }
    }
}
