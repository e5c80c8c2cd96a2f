import Foundation
import Synchronization
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
        struct Tally { var next = 0, rendered = 0; var failure: (any Error)? }
        let tally = Mutex(Tally())
        let started = Date()
        WorkerThreads(count: options.workers, name: "pyramid-render") { [catalog] _ in
            let renderer = ChunkRenderer(catalog: catalog, options: options, channels: channels)
            while true {
                let id = tally.withLock { t in defer { t.next += 1 }; return t.next }
                guard id < chunks.count else { break }
                do {
                    let (samples, _) = try renderer.render(Array(chunks[id]))
                    tally.withLock { $0.rendered += samples.count }
                } catch {
                    tally.withLock { $0.failure = error }
                }
            }
            Vips.threadShutdown()
        }.join()
        let (rendered, failure) = tally.withLock { ($0.rendered, $0.failure) }
        if let failure { throw failure }
        return (rendered, Date().timeIntervalSince(started))
    }
}
