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
        #expect(faults > 1900, "the checksum should catch nearly every damaged record: \(faults) of 2000")
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
