import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Synchronization
import PyramidCache

/// Limits a loader is measured against, over exactly the records and bytes one of its epochs uses
/// (`pyramid bench load`). Benchmark support, not part of the loader's API: reach it with
/// `@_spi(Benchmark) import PyramidLoader`.
@_spi(Benchmark)
public enum LoadBenchmark {
    /// One measured epoch: the loader's rate and the limits measured over the same work.
    public struct Measurement: Codable, Sendable {
        /// Stream positions served (images), samples rendered (images × sizes × duplicates),
        /// records read and output bytes of the epoch.
        public var images: Int, samples: Int, records: Int, outputBytes: Int
        /// The loader's rate and the limits': reading and decompressing the records alone, and a memcpy of the output.
        public var loaderImagesPerSecond: Double, decodeOnlyImagesPerSecond: Double, copyImagesPerSecond: Double
        public var ratioToDecodeOnly: Double, ratioToCopy: Double
        /// The loader's fastest epoch in seconds, and the fraction of it the consumer waited for batches.
        public var loaderSeconds: Double, consumerWaitFraction: Double
        public var workers: Int
    }

    /// Measures epoch `epoch` of `loader` against its limits, each the best of `repetitions`
    /// alternations; the consumer spins `consumerMicroseconds` per batch.
    /// - Throws: what reading the cache throws.
    public static func measure(_ loader: Loader, epoch: Int, repetitions: Int, consumerMicroseconds: Int = 0) throws -> Measurement {
        let records = records(of: loader, epoch: epoch)
        let plan = loader.plan(epoch: epoch)
        let images = plan.images, steps = plan.steps.count
        let samples = plan.steps.reduce(0) { $0 + $1.globalImages * $1.duplicates }
        let outBytes = outputBytes(of: loader, epoch: epoch)
        let workers = loader.configuration.workers
        var decode = Double.infinity, copied = Double.infinity, load = Double.infinity, waited = 0.0
        for _ in 0..<max(1, repetitions) {
            decode = min(decode, try decodeOnly(loader.cache, records: records, threads: workers))
            copied = min(copied, copy(bytes: outBytes, block: outBytes / max(1, steps), threads: workers))
            let (seconds, wait) = try timeEpoch(loader, epoch: epoch, consumerMicroseconds: consumerMicroseconds)
            if seconds < load { load = seconds; waited = wait }
        }
        let rate = Double(images) / load, decodeRate = Double(images) / decode, copyRate = Double(images) / copied
        return Measurement(images: images, samples: samples, records: records.count, outputBytes: outBytes,
                           loaderImagesPerSecond: rate, decodeOnlyImagesPerSecond: decodeRate, copyImagesPerSecond: copyRate,
                           ratioToDecodeOnly: rate / decodeRate, ratioToCopy: rate / copyRate,
                           loaderSeconds: load, consumerWaitFraction: waited / load, workers: workers)
    }

    /// One epoch through the loader, the consumer taking each batch (and spinning
    /// `consumerMicroseconds` on it). - Returns: wall seconds and the seconds the consumer waited.
    public static func timeEpoch(_ loader: Loader, epoch: Int, consumerMicroseconds: Int = 0) throws -> (seconds: Double, waited: Double) {
        let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        let start = clock()
        var it = try loader.batches(epoch: epoch)
        var waited = 0.0, sink: Float = 0
        while true {
            let before = clock()
            guard let batch = try it.next() else { break }
            waited += clock() - before
            if batch.format.isFloat { sink += batch.images().floats[0] }
            if consumerMicroseconds > 0 {
                let until = clock() + Double(consumerMicroseconds) / 1e6
                while clock() < until {}
            }
        }
        // Keep the batches observable.
        if sink.isNaN { print("") }
        return (clock() - start, waited)
    }

    /// The records epoch `epoch` reads for this rank, in order: (sample index, level) per image
    /// and per distinct source level of its step.
    public static func records(of loader: Loader, epoch: Int) -> [(index: Int, level: Int)] {
        let order = loader.order(epoch: epoch)
        let c = loader.configuration
        var out: [(Int, Int)] = []
        for step in loader.plan(epoch: epoch).steps {
            var levels: [Int] = []
            for s in step.sizes { let l = loader.sourceLevel(for: s); if !levels.contains(l) { levels.append(l) } }
            for p in Sampler.positions(cursor: step.cursor, batchSize: step.batchSize, rank: c.rank, worldSize: c.worldSize, available: step.globalImages) {
                for l in levels { out.append((Int(order[p]), l)) }
            }
        }
        return out
    }

    /// Output bytes of epoch `epoch` for this rank.
    public static func outputBytes(of loader: Loader, epoch: Int) -> Int {
        let c = loader.configuration
        let element = c.output.bytesPerValue
        return loader.plan(epoch: epoch).steps.reduce(0) { total, step in
            let n = Sampler.positions(cursor: step.cursor, batchSize: step.batchSize, rank: c.rank, worldSize: c.worldSize, available: step.globalImages).count
            return total + n * step.duplicates * step.sizes.reduce(0) { $0 + $1 * $1 } * loader.cache.manifest.channels * element
        }
    }

    /// Reads and decompresses `records` with `threads` threads (contiguous shares), each into one
    /// reused buffer, doing nothing else: the loader's reading limit.
    /// - Returns: wall seconds.
    public static func decodeOnly(_ cache: CacheReader, records: [(index: Int, level: Int)], threads: Int) throws -> Double {
        let largest = cache.manifest.levels.map { $0.storedShortSide }.max()! 
        let capacity = largest * largest * cache.manifest.channels * 4
        let errors = Mutex<[any Error]>([])
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let session = cache.makeSession()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
            defer { buffer.deallocate() }
            let lo = t * records.count / threads, hi = (t + 1) * records.count / threads
            do {
                for r in records[lo..<hi] { _ = try session.read(index: r.index, level: r.level, into: buffer) }
            } catch {
                errors.withLock { $0.append(error) }
            }
        }
        if let e = errors.withLock({ $0.first }) { throw e }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Copies `bytes` bytes in blocks of `block` bytes from one buffer to another with `threads`
    /// threads: the cost of merely writing the loader's output once.
    /// - Returns: wall seconds.
    public static func copy(bytes: Int, block: Int, threads: Int) -> Double {
        let block = max(64, block)
        // Buffers are allocated and touched before timing: page faults are not part of the limit.
        let buffers = (0..<threads).map { t -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer) in
            let src = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 64)
            let dst = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 64)
            memset(src, Int32(t + 1), block); memset(dst, 0, block)
            return (src, dst)
        }
        defer { for (s, d) in buffers { s.deallocate(); d.deallocate() } }
        // Addresses cross into the threads as integers: each thread touches only its own pair.
        let addresses = buffers.map { (UInt(bitPattern: $0.0), UInt(bitPattern: $0.1)) }
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let src = UnsafeRawPointer(bitPattern: addresses[t].0)!, dst = UnsafeMutableRawPointer(bitPattern: addresses[t].1)!
            var left = bytes / threads
            while left > 0 {
                let n = min(left, block)
                memcpy(dst, src, n)
                left -= n
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        blackHole(buffers.reduce(0) { $0 &+ Int($1.1.load(as: UInt8.self)) })
        return seconds
    }
}

extension Loader {
    /// The order of `epoch`: `order[position]` is the sample index at that stream position.
    @_spi(Benchmark)
    public func order(epoch: Int) -> [Int32] { sampler.order(epoch: epoch) }
}

/// Consumes `value` where the optimizer cannot see, so that the work producing it is kept.
@inline(never) @_optimize(none)
func blackHole<T>(_ value: T) {}
