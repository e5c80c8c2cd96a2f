import Foundation
import PyramidCache

/// A build measured against its decode-and-resize stage alone (`pyramid bench build`). Benchmark
/// support, not part of the build API: reach it with `@_spi(Benchmark) import PyramidBuild`.
@_spi(Benchmark)
public enum BuildBenchmark {
    /// The best of the repetitions: both rates and their ratio.
    public struct Measurement: Codable, Sendable {
        /// Samples written by the fastest complete build.
        public var items: Int
        /// Items per second of the render-only loop and of the complete build.
        public var resizeOnlyItemsPerSecond: Double, buildItemsPerSecond: Double
        public var buildSeconds: Double
        /// Build rate / render-only rate: what storing costs on top of resizing.
        public var ratio: Double
        /// Stored bytes per sample over all levels.
        public var bytesPerSample: Double
        public var workers: Int
    }

    /// Alternates the render-only loop and a complete build into `output` (replaced each time)
    /// `repetitions` times; keeps the best of each.
    /// - Throws: what ``Builder`` throws.
    public static func measure(catalog: SourceCatalog, options: BuildOptions, output: URL, repetitions: Int) throws -> Measurement {
        var options = options
        options.mode = .overwrite
        var resizeRate = 0.0, buildRate = 0.0, buildSeconds = Double.infinity
        var best: BuildReport?
        for _ in 0..<max(1, repetitions) {
            let (items, seconds) = try renderOnly(catalog: catalog, options: options)
            resizeRate = max(resizeRate, Double(items) / seconds)
            let started = Date()
            let report = try Builder(catalog: catalog, options: options, output: output).run()
            let s = Date().timeIntervalSince(started)
            if s < buildSeconds { buildSeconds = s; best = report }
            buildRate = max(buildRate, Double(report.samplesWritten) / s)
        }
        let written = best?.samplesWritten ?? 0
        return Measurement(items: written, resizeOnlyItemsPerSecond: resizeRate, buildItemsPerSecond: buildRate,
                           buildSeconds: buildSeconds, ratio: buildRate / resizeRate,
                           bytesPerSample: Double(best?.levels.reduce(0) { $0 + $1.bytes } ?? 0) / Double(max(written, 1)),
                           workers: options.workers)
    }

    /// The build's decode-and-resize stage alone (no zstd, no LMDB), over the same items, chunks and
    /// worker threads as ``Builder``.
    /// - Returns: items rendered (skips excluded) and the wall seconds taken.
    public static func renderOnly(catalog: SourceCatalog, options: BuildOptions) throws -> (items: Int, seconds: Double) {
        try Vips.start()
        var catalog = catalog
        if let limit = options.limit { catalog.truncate(to: limit) }
        let channels = options.channels ?? catalog.naturalChannels
        let chunk = catalog.chunkSize
        let chunks = stride(from: 0, to: catalog.count, by: chunk).map { $0..<min($0 + chunk, catalog.count) }
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var next = 0, rendered = 0
            var failure: Error?
        }
        let shared = Shared()
        let started = Date()
        let threads = (0..<options.workers).map { _ in
            Thread { [catalog] in
                let renderer = ChunkRenderer(catalog: catalog, options: options, channels: channels)
                while true {
                    shared.lock.lock(); let id = shared.next; shared.next += 1; shared.lock.unlock()
                    guard id < chunks.count else { break }
                    do {
                        let (samples, _) = try renderer.render(Array(chunks[id]))
                        shared.lock.lock(); shared.rendered += samples.count; shared.lock.unlock()
                    } catch {
                        shared.lock.lock(); shared.failure = error; shared.lock.unlock()
                    }
                }
                Vips.threadShutdown()
            }
        }
        for t in threads { t.stackSize = 8 << 20; t.start() }
        for t in threads { while !t.isFinished { usleep(1000) } }
        if let failure = shared.failure { throw failure }
        return (shared.rendered, Date().timeIntervalSince(started))
    }
}
