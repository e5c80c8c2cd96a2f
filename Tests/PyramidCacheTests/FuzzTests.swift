import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// Random truncations and flips of real records and a real manifest: the decoder and the manifest
/// reader return an error or a valid result, never crash (a crash would end the test process).
@Suite struct DecoderFuzzTests {
    @Test func recordDecoderSurvivesDamagedRecords() throws {
        let seed: UInt64 = 1130
        var rng = SeededGenerator(seed: seed)
        let dir = TempDirectory()
        let samples = CacheFixture.randomSamples(count: 6, levels: [16, 8], channels: 3, classes: 2, seed: seed)
        try CacheFixture.write(samples, levels: [16, 8], channels: 3, classes: 2, to: dir.url)
        let reader = try CacheReader(url: dir.url)
        let session = reader.makeSession()
        let decoder = session.recordDecoder(level: 16)
        var faults = 0, valid = 0
        var output = [UInt8](repeating: 0, count: 1 << 16)
        for trial in 0..<2000 {
            var record = try session.withRecord(index: trial % 6, level: 16) { Array($0) }
            if trial % 3 == 0 {
                record.removeSubrange(Int.random(in: 0..<record.count, using: &rng)...)
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &rng) { record[Int.random(in: 0..<record.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
            }
            let result = record.withUnsafeBytes { r in output.withUnsafeMutableBytes { decoder.decode(r, into: $0) } }
            switch result {
            case .failure: faults += 1
            case .success(let header): valid += 1; #expect(header.width * header.height * header.channels <= output.count)
            }
        }
        print("recordDecoderSurvivesDamagedRecords: \(faults) faults, \(valid) valid of 2000")
        #expect(faults == 2000, "the version 2 checksum should catch every damaged record: \(faults) of 2000")
    }

    /// The checksum stops damage before TurboJPEG; this feeds TurboJPEG damaged streams anyway (the
    /// checksum forged to match, as a buggy writer would), which must give a fault or the promised
    /// shape, never a crash or a write past the buffer.
    @Test func jpegDecoderSurvivesDamagedStreamsBehindAValidChecksum() throws {
        let seed: UInt64 = 2207
        var rng = SeededGenerator(seed: seed)
        let (w, h) = (40, 24)
        let pixels = Fixtures.pattern(width: w, height: h, channels: 3)
        let record = try pixels.withUnsafeBytes {
            try RecordEncoder(codec: .jpeg(quality: 90)).encode(pixels: $0, width: w, height: h, channels: 3)
        }
        let decoder = RecordDecoder(codec: .jpeg(quality: 90), dictionary: nil, filter: .none)
        var faults = 0
        var output = [UInt8](repeating: 0, count: w * h * 3)
        for trial in 0..<1500 {
            var body = Array(record.dropLast(RecordChecksum.size))
            if trial % 3 == 0 {
                body.removeSubrange(Int.random(in: RecordHeader.size..<body.count, using: &rng)...)
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    body[Int.random(in: RecordHeader.size..<body.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            }
            let sum = body.withUnsafeBytes { RecordChecksum.xxh3($0) }
            let forged = body + withUnsafeBytes(of: sum.littleEndian, Array.init)
            let result = forged.withUnsafeBytes { r in output.withUnsafeMutableBytes { decoder.decode(r, into: $0) } }
            switch result {
            case .failure: faults += 1
            case .success(let header): #expect(header.width == w && header.height == h && header.channels == 3)
            }
        }
        print("jpegDecoderSurvivesDamagedStreamsBehindAValidChecksum: \(faults) of 1500 refused by TurboJPEG")
        #expect(faults > 0)
    }

    @Test func manifestReaderSurvivesDamagedManifests() throws {
        let seed: UInt64 = 3011
        var rng = SeededGenerator(seed: seed)
        let dir = TempDirectory()
        try CacheFixture.write(CacheFixture.randomSamples(count: 4, levels: [8], channels: 1, classes: 2, seed: seed),
                               levels: [8], channels: 1, classes: 2, to: dir.url)
        let url = dir.url.appendingPathComponent(Manifest.fileName)
        let original = [UInt8](try Data(contentsOf: url))
        var errors = 0
        for trial in 0..<300 {
            var bytes = original
            if trial % 3 == 0 {
                bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &rng)...)
            } else {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            try Data(bytes).write(to: url)
            do { _ = try CacheReader(url: dir.url) } catch is CacheError { errors += 1 }
        }
        print("manifestReaderSurvivesDamagedManifests: \(errors) of 300 refused with a CacheError")
        #expect(errors > 0)
    }
}
