import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct RecordCodecTests {
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func roundTripRandomShapes(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<20 {
            let w = Int.random(in: 1...80, using: &rng), h = Int.random(in: 1...80, using: &rng)
            let c = Bool.random(using: &rng) ? 1 : 3
            let pixels = (0..<(w * h * c)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for filter in [RecordHeader.Filter.none, .sub] {
                let record = try pixels.withUnsafeBytes {
                    try RecordEncoder(compressionLevel: 3, filter: filter, dictionary: nil).encode(pixels: $0, width: w, height: h, channels: c)
                }
                var out = [UInt8](repeating: 0, count: pixels.count)
                let result = record.withUnsafeBytes { r in out.withUnsafeMutableBytes { RecordDecoder(dictionary: nil, filter: filter).decode(r, into: $0) } }
                let header = try result.get()
                #expect(header == RecordHeader(codec: .zstd, filter: filter, channels: c, width: w, height: h))
                #expect(out == pixels, "\(w)x\(h)x\(c) filter \(filter.name)")
            }
        }
    }

    @Test func subFilterMatchesNaiveDefinition() {
        var rng = SeededGenerator(seed: 9)
        let (w, h, c) = (13, 7, 3)
        let pixels = (0..<(w * h * c)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var filtered = pixels
        filtered.withUnsafeMutableBytes { RecordFilter.applySub($0, width: w, height: h, channels: c) }
        // Naive twin: PNG's Sub, per row, left neighbour of the same channel, first pixel unchanged.
        var expected = pixels
        for y in 0..<h { for x in 0..<w { for k in 0..<c where x > 0 {
            let i = (y * w + x) * c + k
            expected[i] = pixels[i] &- pixels[i - c]
        } } }
        #expect(filtered == expected)
        filtered.withUnsafeMutableBytes { RecordFilter.undoSub($0, width: w, height: h, channels: c) }
        #expect(filtered == pixels)
    }

    @Test func dictionaryRoundTripAndMissingDictionaryIsAFault() throws {
        let samples = CacheFixture.randomSamples(count: 200, levels: [12], channels: 1, classes: 2, seed: 5).map { $0.levels[0] }
        let bytes = try #require(RecordDictionary.train(samples: samples, capacity: 2048))
        let dict = try RecordDictionary(bytes: bytes, compressionLevel: 3)
        let record = try samples[0].withUnsafeBytes {
            try RecordEncoder(compressionLevel: 3, filter: .none, dictionary: dict).encode(pixels: $0, width: 12, height: 12, channels: 1)
        }
        var out = [UInt8](repeating: 0, count: 144)
        let ok = record.withUnsafeBytes { r in out.withUnsafeMutableBytes { RecordDecoder(dictionary: dict, filter: .none).decode(r, into: $0) } }
        #expect(try ok.get().codec == .zstdDictionary)
        #expect(out == samples[0])
        let missing = record.withUnsafeBytes { r in out.withUnsafeMutableBytes { RecordDecoder(dictionary: nil, filter: .none).decode(r, into: $0) } }
        #expect(throws: RecordFault.self) { try missing.get() }
    }

    @Test func everyFlippedByteIsDetected() throws {
        // A flip anywhere in header or frame must never decode silently to different pixels.
        let pixels = Fixtures.pattern(width: 16, height: 16, channels: 3)
        let record = try pixels.withUnsafeBytes {
            try RecordEncoder(compressionLevel: 3, filter: .sub, dictionary: nil).encode(pixels: $0, width: 16, height: 16, channels: 3)
        }
        var out = [UInt8](repeating: 0, count: pixels.count + 64)
        for i in 0..<record.count {
            var bad = record
            bad[i] ^= 0x01
            let result = bad.withUnsafeBytes { r in out.withUnsafeMutableBytes { RecordDecoder(dictionary: nil, filter: .sub).decode(r, into: $0) } }
            if case .success(let h) = result {
                #expect(Array(out[0..<h.pixelCount]) == pixels && h.pixelCount == pixels.count, "flip at byte \(i) decoded to other pixels")
            }
        }
    }
}
