import Foundation
import PyramidCache
import PyramidTestSupport
import Testing
@testable import PyramidLoader

/// A small cache whose levels are consistent (each level is the antialiased resample of a smooth
/// 32 px image), so views at different sizes can be compared.
final class SmoothCache {
    static let levels = [16, 12, 8]
    let dir = TempDirectory("pyramid-loader")
    let samples: [CacheFixture.Sample]
    let manifest: Manifest
    var url: URL { dir.url.appendingPathComponent("cache") }

    init(count: Int = 300, channels: Int = 1, shards: Int = 2, codecs: [LevelCodec]? = nil) throws {
        samples = (0..<count).map { i in
            let base = Fixtures.pattern(width: 32, height: 32, channels: channels, seed: i)
            let levels = SmoothCache.levels.map { s in
                ReferenceResampler.render(base, width: 32, height: 32, channels: channels, box: .whole, size: s)
                    .map { UInt8(max(0, min(255, $0.rounded()))) }
            }
            return CacheFixture.Sample(label: i % 10, levels: levels)
        }
        manifest = try CacheFixture.write(samples, levels: SmoothCache.levels, channels: channels, classes: 10, shards: shards,
                                          codecs: codecs, to: dir.url.appendingPathComponent("cache"))
    }

    func loader(_ schedule: String, batch: Int = 16, seed: UInt64 = 1, workers: Int = 2, prefetch: Int? = nil,
                rank: Int = 0, worldSize: Int = 1, augmentation: Augmentation? = .padCrop(2), output: OutputFormat = .float32,
                policy: CorruptRecordPolicy = .fail) throws -> Loader {
        let config = LoaderConfiguration(schedule: try ScheduleParser.parse(schedule, largestLevel: 16), batchSize: batch, seed: seed,
                                         rank: rank, worldSize: worldSize, epochs: 4, augmentation: augmentation, output: output,
                                         prefetch: prefetch, workers: workers, corruptRecords: policy)
        return try Loader(cache: try CacheReader(url: url), configuration: config)
    }
}

/// Everything a batch carries, as plain values.
struct BatchRecord: Equatable {
    var step: Int, sizes: [Int], labels: [Int32], indices: [Int], pixels: [[Float]], cursor: Int
    init(_ b: Batch) {
        step = b.step; sizes = b.sizes; labels = b.labels; indices = b.indices; cursor = b.nextCursor
        pixels = b.sizes.map { b.images(size: $0).floatArray() }
    }
}

func collect(_ loader: Loader, epoch: Int, from cursor: Int = 0, limit: Int = .max) throws -> [BatchRecord] {
    var it = try loader.batches(epoch: epoch, from: cursor)
    var out: [BatchRecord] = []
    while out.count < limit, let b = try it.next() { out.append(BatchRecord(b)) }
    return out
}

@Suite struct LoaderTests {
    static let schedules = ["fixed:16", "trd:16,8,p=0.5", "mixsize:8,12,16,24@0.2,0.3,0.3,0.2", "mixsize:8,12,16@0.3,0.3,0.4,mode=D+",
                            "parallel:16,12,8", "progressive:8,16,start=0,end=2"]

    @Test(arguments: schedules)
    func sameSeedSameBatchesWithOneOrTwoWorkers(schedule: String) async throws {
        let cache = try SmoothCache()
        for epoch in 0..<2 {
            let one = try collect(try cache.loader(schedule, workers: 1), epoch: epoch)
            let two = try collect(try cache.loader(schedule, workers: 2, prefetch: 2), epoch: epoch)
            #expect(!one.isEmpty)
            #expect(one == two, "epoch \(epoch)")
            var async: [BatchRecord] = []
            for try await b in try cache.loader(schedule, workers: 2).epoch(epoch) { async.append(BatchRecord(b)) }
            #expect(async == one)
            #expect(one.map(\.sizes) == (try cache.loader(schedule)).plan(epoch: epoch).steps.map(\.sizes))
        }
        let other = try collect(try cache.loader(schedule, seed: 2), epoch: 0)
        #expect(other != (try collect(try cache.loader(schedule), epoch: 0)))
    }

    @Test(arguments: schedules)
    func everyImageAtMostOncePerEpoch(schedule: String) throws {
        let cache = try SmoothCache()
        let loader = try cache.loader(schedule)
        let batches = try collect(loader, epoch: 1)
        let plan = loader.plan(epoch: 1)
        var images: [Int] = []
        for (b, s) in zip(batches, plan.steps) {
            // Duplicates of an image are adjacent; count images once.
            images += stride(from: 0, to: b.indices.count, by: s.duplicates).map { b.indices[$0] }
            #expect(b.labels == b.indices.map { Int32(cache.samples[$0].label) })
        }
        #expect(Set(images).count == images.count)
        #expect(images.count == plan.images)
        // What is left out: less than one global step per size (MixSize partitions per size).
        let schedule = loader.configuration.schedule
        let slack = (schedule as? MixSize).map { m in m.sizes.reduce(0) { $0 + m.setting(for: $1, baseBatch: 16).batch } } ?? 16
        #expect(plan.images > 300 - slack, "\(plan.images) of 300 served")
    }

    @Test(arguments: ["mixsize:8,12,16,24@0.2,0.3,0.3,0.2", "parallel:16,12,8", "trd:16,8,p=0.5"])
    func resumeAtAStepEqualsTheUninterruptedRun(schedule: String) throws {
        let cache = try SmoothCache()
        let whole = try collect(try cache.loader(schedule), epoch: 2)
        let k = whole.count / 2
        let resumed = try collect(try cache.loader(schedule, workers: 1), epoch: 2, from: whole[k - 1].cursor)
        #expect(Array(whole[k...]) == resumed)
    }

    @Test func ranksReadDisjointBlocksOfTheSameStream() throws {
        let cache = try SmoothCache()
        let single = try collect(try cache.loader("fixed:12", batch: 16), epoch: 0)
        let r0 = try collect(try cache.loader("fixed:12", batch: 8, rank: 0, worldSize: 2), epoch: 0)
        let r1 = try collect(try cache.loader("fixed:12", batch: 8, rank: 1, worldSize: 2), epoch: 0)
        #expect(single.count == r0.count && r0.count == r1.count)
        for (s, (a, b)) in zip(single, zip(r0, r1)) {
            #expect(Set(a.indices).isDisjoint(with: b.indices))
            #expect(a.indices + b.indices == s.indices)
            #expect(a.pixels[0] + b.pixels[0] == s.pixels[0])
        }
    }

    @Test func resumeWithAnotherWorldSizeServesTheRestOnce() throws {
        let cache = try SmoothCache()
        let first = try collect(try cache.loader("mixsize:8,12,16@0.3,0.3,0.4", batch: 16), epoch: 0, limit: 3)
        let cursor = first.last!.cursor
        var rest: [Int] = []
        for rank in 0..<3 {
            let loader = try cache.loader("mixsize:8,12,16@0.3,0.3,0.4", batch: 5, rank: rank, worldSize: 3)
            rest += try collect(loader, epoch: 0, from: cursor).flatMap(\.indices)
        }
        let done = first.flatMap(\.indices)
        #expect(Set(done).isDisjoint(with: rest))
        #expect(Set(rest).count == rest.count)
        #expect(done.count + rest.count > 300 - 15 * 3 - 48)
        // Exactly the positions after the cursor, as far as whole steps go.
        let order = Sampler(sampleCount: 300, seed: 1).order(epoch: 0).map(Int.init)
        #expect(Set(done) == Set(order[0..<cursor]))
        #expect(Set(rest).isSubset(of: Set(order[cursor...])))
    }

    @Test func parallelViewsShowTheSameCrop() throws {
        let cache = try SmoothCache()
        let loader = try cache.loader("parallel:16,12,8", augmentation: .randomResizedCrop, output: .uint8)
        var it = try loader.batches(epoch: 0)
        let batch = try #require(try it.next())
        let order = loader.sampler.order(epoch: 0)
        // Each view is the one box of its sample, rendered from that size's level.
        for (n, index) in batch.indices.enumerated() {
            #expect(Int(order[n]) == index)
            var rng = SplitMix64(seed: RandomKey.mix(1, 0, UInt64(n), 0, RandomKey.augmentation))
            let box = loader.augmentation.box(width: 16, height: 16, referenceSize: 16, rng: &rng)
            for (l, s) in SmoothCache.levels.enumerated() {
                let expected = ReferenceResampler.render(cache.samples[index].levels[l], width: s, height: s, channels: 1, box: box, size: s)
                let got = batch.images(size: s).bytes[(n * s * s)..<((n + 1) * s * s)]
                #expect(zip(got, expected).allSatisfy { abs(Double($0) - $1) <= 0.51 }, "sample \(index) size \(s)")
            }
        }
        // And so the size-s view is close to the size-16 view resampled to s: the same content.
        let big = batch.images(size: 16)
        func distance(_ s: Int, _ n: Int, _ m: Int) -> Double {
            let view = Array(big.bytes[(m * 256)..<((m + 1) * 256)])
            let expected = ReferenceResampler.render(view, width: 16, height: 16, channels: 1, box: .whole, size: s)
            let small = batch.images(size: s).bytes
            return (0..<(s * s)).reduce(0.0) { $0 + abs(Double(small[n * s * s + $1]) - expected[$1]) } / Double(s * s)
        }
        for s in [12, 8] {
            let same = (0..<batch.count).map { distance(s, $0, $0) }.reduce(0, +) / Double(batch.count)
            let other = (0..<batch.count).map { distance(s, $0, ($0 + 1) % batch.count) }.reduce(0, +) / Double(batch.count)
            // Two resamplings from different levels of an image with sharp edges: close, not equal;
            // another sample's view (the wrong pairing) is several times further.
            #expect(same < 12, "size \(s): mean |Δ| \(same)")
            #expect(other > 3 * same, "size \(s): same \(same), other \(other)")
        }
    }

    @Test func storedSizeWithoutAugmentationIsTheStoredPixels() throws {
        let cache = try SmoothCache()
        let bytes = try cache.loader("fixed:12", augmentation: Augmentation.none, output: .uint8)
        let floats = try cache.loader("fixed:12", augmentation: Augmentation.none, output: .float32)
        var a = try bytes.batches(epoch: 0), b = try floats.batches(epoch: 0)
        let x = try #require(try a.next()), y = try #require(try b.next())
        #expect(x.indices == y.indices)
        for (n, index) in x.indices.enumerated() {
            let stored = cache.samples[index].levels[1]
            #expect(Array(x.images().bytes[(n * 144)..<((n + 1) * 144)]) == stored)
            let normalized = stored.map { (Float($0) / 255 - 0.5) / 0.25 }
            let got = Array(y.images().floats[(n * 144)..<((n + 1) * 144)])
            #expect(zip(got, normalized).allSatisfy { abs($0 - $1) < 1e-5 })
        }
        #expect(y.images().shape == [16, 1, 12, 12] && x.images().shape == [16, 12, 12, 1])
    }

    @Test func buffersAreReusedAndKeptBatchesDoNotDeadlock() throws {
        let cache = try SmoothCache()
        let loader = try cache.loader("fixed:16", batch: 4, workers: 2, prefetch: 3)
        var it = try loader.batches(epoch: 0)
        var ids: [Int] = []
        while let b = try it.next() { ids.append(b.bufferID) }
        #expect(ids.count == 75)
        #expect(it.buffersAllocated <= 3)
        #expect(Set(ids).count <= 3)
        // Keeping every batch: the loader allocates more instead of waiting forever.
        var kept: [Batch] = []
        var it2 = try loader.batches(epoch: 1)
        while let b = try it2.next() { kept.append(b) }
        #expect(kept.count == 75)
        #expect(Set(kept.map(\.bufferID)).count == 75)
    }

    /// The next epoch reuses the last one's buffers (the same memory, already faulted in), and a
    /// finished epoch releases everything: no epoch keeps its buffers alive (they leaked before).
    /// A run hands its buffers back when it is released, as its worker threads exit after the last
    /// batch; an epoch started before that (a loaded machine) allocates its own, so each epoch here
    /// waits for the last one's release first.
    @Test func epochsReuseTheSameBufferMemoryAndReleaseTheirRuns() throws {
        let cache = try SmoothCache()
        let loader = try cache.loader("fixed:16", batch: 8, workers: 2, prefetch: 3)
        func addresses(_ epoch: Int) throws -> Set<UnsafeMutableRawPointer> {
            weak var run: EpochRun?
            var seen = Set<UnsafeMutableRawPointer>()
            do {
                var it = try loader.batches(epoch: epoch)
                run = it.handle.run
                while let b = try it.next() { seen.insert(b.storage.views[0].pointer) }
            }
            for _ in 0..<400 where run != nil { usleep(5000) }  // its worker threads are exiting
            #expect(run == nil, "a finished epoch's run is still alive (epoch \(epoch))")
            return seen
        }
        let first = try addresses(0)
        #expect(!first.isEmpty && first.count <= 3)
        for epoch in 1...3 { #expect(try addresses(epoch).isSubset(of: first), "epoch \(epoch) allocated new buffers") }
    }

    @Test func corruptRecordFailsOrIsSubstituted() throws {
        let cache = try SmoothCache(count: 40, shards: 1)
        // Corrupt the level-12 record of one sample: find its stored bytes in the shard file.
        let victim = 7
        let session = try CacheReader(url: cache.url).makeSession()
        let record = try session.withRecord(index: victim, level: 12) { Array($0) }
        let data = try CacheFixture.shardFile(cache.url.path, level: 12)
        #expect(try CacheFixture.flipByte(in: data, inside: record, offset: record.count - 6))

        let failing = try cache.loader("fixed:12", batch: 40, augmentation: Augmentation.none)
        #expect {
            var it = try failing.batches(epoch: 0)
            while try it.next() != nil {}
        } throws: { error in
            guard case LoaderError.cache(.corruptRecord(let shard, let index, let level, _)) = error else { return false }
            return shard == 0 && index == victim && level == 12 && "\(error)".contains("index 7, level 12")
        }
        let substituting = try cache.loader("fixed:12", batch: 40, augmentation: Augmentation.none, output: .uint8, policy: .substitute)
        var it = try substituting.batches(epoch: 0)
        let b = try #require(try it.next())
        #expect(b.count == 40 && b.substitutions == 1)
        #expect(!b.indices.contains(victim))
        #expect(b.indices.filter { $0 == victim + 1 }.count == 2)
        #expect(substituting.substitutions == [Substitution(index: victim, level: 12, shard: 0, reason: substituting.substitutions[0].reason, replacement: victim + 1)])
        // The other levels of the victim are fine.
        #expect(try collect(try cache.loader("fixed:16", batch: 40), epoch: 0).count == 1)
    }

    @Test func badConfigurationsAreNamed() throws {
        let cache = try SmoothCache(count: 20)
        #expect { _ = try cache.loader("fixed:40") } throws: { "\($0)".contains("size 40") && "\($0)".contains("levels 16,12,8") }
        #expect { _ = try cache.loader("fixed:16", rank: 2, worldSize: 2) } throws: { "\($0)".contains("rank") }
        #expect { _ = try cache.loader("fixed:16", batch: 0) } throws: { "\($0)".contains("batch size") }
        #expect { _ = try cache.loader("fixed:16").plan(epoch: 0, from: 21) } throws: { "\($0)".contains("cursor 21") }
    }

    @Test func evaluationServesEverySampleOnceInOrder() throws {
        let cache = try SmoothCache(count: 50)
        let loader = try Loader(cache: try CacheReader(url: cache.url), configuration: .evaluation(size: 12, batchSize: 16))
        let batches = try collect(loader, epoch: 0)
        #expect(batches.map(\.indices.count) == [16, 16, 16, 2])
        #expect(batches.flatMap(\.indices) == Array(0..<50))
    }
}

/// The loader over JPEG levels: the same determinism, resume and corrupt-record guarantees.
@Suite struct JPEGLevelLoaderTests {
    static let codecs: [LevelCodec] = [.jpeg(quality: 90), .jpeg(quality: 80), .zstd]

    @Test(arguments: ["fixed:16", "parallel:16,12,8", "mixsize:8,12,16,24@0.2,0.3,0.3,0.2"])
    func batchesAreDeterministicAndResumeExactly(schedule: String) throws {
        let cache = try SmoothCache(count: 120, channels: 3, codecs: Self.codecs)
        let one = try collect(try cache.loader(schedule, workers: 1), epoch: 1)
        let two = try collect(try cache.loader(schedule, workers: 2, prefetch: 2), epoch: 1)
        #expect(!one.isEmpty && one == two)
        let k = one.count / 2
        #expect(Array(one[k...]) == (try collect(try cache.loader(schedule, workers: 2), epoch: 1, from: one[k - 1].cursor)))
    }

    @Test func aDamagedJPEGRecordFailsOrIsSubstituted() throws {
        let cache = try SmoothCache(count: 40, channels: 3, shards: 1, codecs: Self.codecs)
        let victim = 11
        let record = try CacheReader(url: cache.url).makeSession().withRecord(index: victim, level: 16) { Array($0) }
        #expect(record[1] == RecordHeader.Codec.jpeg.rawValue)
        // A byte in the middle of the JPEG stream: TurboJPEG might decode it to other pixels; the checksum must not let it.
        #expect(try CacheFixture.flipByte(in: try CacheFixture.shardFile(cache.url.path, level: 16), inside: record, offset: record.count / 2))
        #expect {
            var it = try cache.loader("fixed:16", batch: 40, augmentation: Augmentation.none).batches(epoch: 0)
            while try it.next() != nil {}
        } throws: { error in
            guard case LoaderError.cache(.corruptRecord(_, let index, let level, let reason)) = error else { return false }
            return index == victim && level == 16 && reason.hasPrefix("checksum mismatch")
        }
        let substituting = try cache.loader("fixed:16", batch: 40, augmentation: Augmentation.none, output: .uint8, policy: .substitute)
        var it = try substituting.batches(epoch: 0)
        let b = try #require(try it.next())
        #expect(b.substitutions == 1 && !b.indices.contains(victim))
    }
}
