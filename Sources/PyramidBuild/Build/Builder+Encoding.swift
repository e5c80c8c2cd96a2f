import Foundation
import PyramidCache

/// The work of one chunk on a worker thread: render (libvips), encode (zstd) and sum pixel statistics.
extension Builder {
    struct EncodedSample {
        var label: Int
        var records: [[UInt8]]
        var rawBytes: [Int]
        var sums: [UInt64]
        var squares: [UInt64]
        var pixelCount: UInt64
    }

    struct EncodedChunk {
        var samples: [EncodedSample]
        var skipped: [(Int, SkippedItem)]
        /// Files kept although libvips warned while decoding them.
        var warned: [(Int, SkippedItem)] = []
    }

    static func encodeChunk(_ positions: [Int], renderer: ChunkRenderer, encoders: [RecordEncoder], channels: Int) throws -> EncodedChunk {
        let (rendered, skipped) = try renderer.render(positions)
        var samples: [EncodedSample] = []
        samples.reserveCapacity(rendered.count)
        for sample in rendered {
            var records: [[UInt8]] = []
            var raw: [Int] = []
            for (l, level) in sample.levels.enumerated() {
                records.append(try level.pixels.withUnsafeBytes {
                    try encoders[l].encode(pixels: $0, width: level.width, height: level.height, channels: channels)
                })
                raw.append(level.pixels.count)
            }
            var sums = [UInt64](repeating: 0, count: channels), squares = sums
            let top = sample.levels[0].pixels
            top.withUnsafeBufferPointer { px in
                var i = 0
                while i < px.count {
                    for c in 0..<channels { let v = UInt64(px[i + c]); sums[c] += v; squares[c] += v * v }
                    i += channels
                }
            }
            samples.append(EncodedSample(label: sample.label, records: records, rawBytes: raw, sums: sums,
                                         squares: squares, pixelCount: UInt64(top.count / channels)))
        }
        return EncodedChunk(samples: samples, skipped: skipped, warned: renderer.takeWarnings())
    }
}
