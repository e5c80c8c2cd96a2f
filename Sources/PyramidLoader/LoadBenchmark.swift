import Foundation
import PyramidCache

/// Limits a loader is measured against, over exactly the records and bytes one of its epochs uses.
public enum LoadBenchmark {
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
        let element = c.output == .float32 ? 4 : 1
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
        var errors: [Error?] = Array(repeating: nil, count: threads)
        let start = DispatchTime.now().uptimeNanoseconds
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let session = cache.makeSession()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
            defer { buffer.deallocate() }
            let lo = t * records.count / threads, hi = (t + 1) * records.count / threads
            do {
                for r in records[lo..<hi] { _ = try session.read(index: r.index, level: r.level, into: buffer) }
            } catch {
                lock.lock(); errors[t] = error; lock.unlock()
            }
        }
        if let e = errors.compactMap({ $0 }).first { throw e }
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
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let (src, dst) = buffers[t]
            var left = bytes / threads
            while left > 0 {
                let n = min(left, block)
                memcpy(dst, src, n)
                left -= n
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        // Keep the copies observable.
        if buffers.contains(where: { $0.1.load(as: UInt8.self) == 0 }) { print("") }
        return seconds
    }
}

extension Loader {
    /// The order of `epoch`: `order[position]` is the sample index at that stream position.
    public func order(epoch: Int) -> [Int32] { sampler.order(epoch: epoch) }
}
