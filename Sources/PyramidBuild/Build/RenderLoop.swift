import Foundation
import PyramidCache

/// The build's decode-and-resize stage alone (no zstd, no LMDB), over the same items, chunks and
/// worker threads as ``Builder``: the limit a build is measured against in `pyramid bench build`.
public enum RenderLoop {
    /// Renders every item of `catalog` at every level with `options.workers` threads.
    /// - Returns: items rendered (skips excluded) and the wall seconds taken.
    public static func run(catalog: SourceCatalog, options: BuildOptions) throws -> (items: Int, seconds: Double) {
        try Vips.start()
        var catalog = catalog
        if let limit = options.limit { catalog.truncate(to: limit) }
        let channels = options.channels ?? catalog.naturalChannels
        let chunk: Int
        switch catalog.items { case .raster: chunk = 256; case .files: chunk = 16 }
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
