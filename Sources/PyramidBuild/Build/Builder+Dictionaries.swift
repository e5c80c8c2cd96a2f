import Foundation
import PyramidCache

/// Per-level zstd dictionaries, trained before the first chunk.
extension Builder {
    /// Trains one dictionary per zstd level from evenly spaced source items (the same items for any
    /// number of workers or shards), on the bytes zstd will see (after the filter).
    func trainDictionaries() throws -> [String: String] {
        let renderer = ChunkRenderer(catalog: catalog, options: options, channels: channels)
        let topBytes = options.storedSide(levels[0]) * options.storedSide(levels[0]) * channels
        let want = min(catalog.count, 4000, max(64, (8 << 20) / max(topBytes, 1)))
        let positions = (0..<want).map { $0 * catalog.count / want }
        var samplesPerLevel = Array(repeating: [[UInt8]](), count: levels.count)
        for start in stride(from: 0, to: positions.count, by: chunkSize) {
            let (rendered, _) = try renderer.render(Array(positions[start..<min(start + chunkSize, positions.count)]))
            for sample in rendered {
                for (l, level) in sample.levels.enumerated() {
                    var bytes = level.pixels
                    if options.filter == .sub {
                        bytes.withUnsafeMutableBytes { RecordFilter.applySub($0, width: level.width, height: level.height, channels: channels) }
                    }
                    samplesPerLevel[l].append(bytes)
                }
            }
        }
        var out: [String: String] = [:]
        for (l, size) in levels.enumerated() where codecs[l] == .zstd {
            if let dict = RecordDictionary.train(samples: samplesPerLevel[l]) { out[String(size)] = Data(dict).base64EncodedString() }
        }
        return out
    }
}
