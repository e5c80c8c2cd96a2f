import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct ResumeTests {
    @Test(arguments: [1, 3, 5])
    func interruptedThenResumedEqualsUninterrupted(stopAfterCommits: Int) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 1800)
        var options = BuildOptions(levels: [28, 20, 14])
        options.shards = 3; options.workers = 2; options.dictionary = true
        options.codecs = [.jpeg(quality: 85), .zstd, .jpeg(quality: 70)]
        let reference = out.url.appendingPathComponent("reference")
        try build(src.url.path, reference, options)

        let cache = out.url.appendingPathComponent("interrupted")
        var commits = 0
        #expect(throws: BuildError.self) {
            try build(src.url.path, cache, options, isCancelled: { commits >= stopAfterCommits }, progress: { _ in commits += 1 })
        }
        #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("manifest.json").path))
        #expect(throws: CacheError.self) { try CacheReader(url: cache) }
        // Without --resume the half-built directory is refused, naming what to do.
        #expect(throws: BuildError.self) { try build(src.url.path, cache, options) }
        var resume = options
        resume.mode = .resume
        resume.workers = 1 // a different worker count must not matter
        let report = try build(src.url.path, cache, resume)
        #expect(report.resumed)
        #expect(try recordBytes(cache) == recordBytes(reference))
        // The same shard ranges (the LMDB files' bytes, and so their digests, follow the commits).
        let ranges = { (url: URL) in try CacheReader(url: url).manifest.shards.map { [$0.firstIndex, $0.count] } }
        #expect(try ranges(cache) == ranges(reference))
    }

    @Test func resumeWithOtherOptionsIsRefused() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 600)
        let cache = out.url.appendingPathComponent("c")
        var commits = 0
        _ = try? build(src.url.path, cache, BuildOptions(levels: [28, 14]), isCancelled: { commits >= 1 }, progress: { _ in commits += 1 })
        var other = BuildOptions(levels: [28, 12])
        other.mode = .resume
        #expect(throws: BuildError.resumeMismatch(option: "levels", was: "28,14", now: "28,12")) { try build(src.url.path, cache, other) }
        var lossy = BuildOptions(levels: [28, 14])
        lossy.mode = .resume; lossy.codecs = [.jpeg(quality: 90)]
        #expect(throws: BuildError.resumeMismatch(option: "codecs", was: "zstd,zstd", now: "jpeg:90,jpeg:90")) { try build(src.url.path, cache, lossy) }
    }
}
