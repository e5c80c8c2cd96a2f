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

    @Test func skippedItemsInAnEarlierShardDoNotChangeTheRecords() throws {
        // Shards are keyed from their first source position while built and renumbered at the end;
        // broken files in shard 0 shift every later shard's sample indices.
        let src = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: src.path("a"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: src.path("b"), withIntermediateDirectories: true)
        for i in 0..<24 {
            let path = src.path(i < 12 ? "a/\(i + 10).jpg" : "b/\(i + 10).jpg")
            if [0, 3, 4].contains(i) {
                try "not an image".write(toFile: path, atomically: true, encoding: .utf8)
            } else {
                try Fixtures.writeImage(Fixtures.pattern(width: 40, height: 30, channels: 3, seed: i), width: 40, height: 30, channels: 3, to: path)
            }
        }
        var one = BuildOptions(levels: [24, 16]); one.workers = 1
        var three = one; three.shards = 3; three.workers = 2
        let a = out.url.appendingPathComponent("one"), b = out.url.appendingPathComponent("three")
        let reportOne = try build(src.url.path, a, one)
        let reportThree = try build(src.url.path, b, three)
        #expect(reportOne.skippedCount == 3 && reportThree.skippedCount == 3)
        #expect(reportThree.skipped.map(\.path) == reportOne.skipped.map(\.path))
        #expect(try recordBytes(a) == recordBytes(b))
        let reader = try CacheReader(url: b)  // opening checks every shard's indices against the manifest
        #expect(reader.manifest.shards.map(\.count) == [5, 8, 8])
        #expect(try reader.labels() == CacheReader(url: a).labels())
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
