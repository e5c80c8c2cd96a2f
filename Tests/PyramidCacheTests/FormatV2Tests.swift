import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// Cache format version 2: JPEG levels, the XXH3-64 checksum of every record, and version 1 caches
/// still read.
@Suite struct FormatV2Tests {
    /// Peak signal-to-noise ratio in dB (a plain definition, the reference for JPEG quality).
    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var se = 0.0
        for i in 0..<a.count { let d = Double(a[i]) - Double(b[i]); se += d * d }
        let mse = se / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    /// A smooth colour image, like a photo's large areas (the JPEG bounds below are for such content).
    static func smooth(width: Int, height: Int, channels: Int, seed: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let v = 128 + 60 * sin(Double(x) / 9 + Double(seed + c)) * cos(Double(y) / 13) + 40 * Double(x + y) / Double(width + height) - 20
                    out[(y * width + x) * channels + c] = UInt8(clamping: Int(v.rounded()))
                }
            }
        }
        return out
    }

    static func encode(_ pixels: [UInt8], _ w: Int, _ h: Int, _ c: Int, codec: LevelCodec, filter: RecordHeader.Filter = .none,
                       version: UInt8 = RecordHeader.currentVersion) throws -> [UInt8] {
        try pixels.withUnsafeBytes {
            try RecordEncoder(codec: codec, compressionLevel: 3, filter: filter, recordVersion: version).encode(pixels: $0, width: w, height: h, channels: c)
        }
    }

    static func decode(_ record: [UInt8], count: Int, codec: LevelCodec, filter: RecordHeader.Filter = .none,
                       version: UInt8 = RecordHeader.currentVersion) -> (Result<RecordHeader, RecordFault>, [UInt8]) {
        var out = [UInt8](repeating: 0, count: count)
        let result = record.withUnsafeBytes { r in
            out.withUnsafeMutableBytes { RecordDecoder(codec: codec, dictionary: nil, filter: filter, recordVersion: version).decode(r, into: $0) }
        }
        return (result, out)
    }

    @Test(arguments: [(224, 224, 3), (17, 9, 3), (96, 128, 1), (33, 64, 1), (1, 1, 3)])
    func jpegRoundTripsAtItsExactSizeWithinAPSNRBound(width: Int, height: Int, channels: Int) throws {
        let pixels = Self.smooth(width: width, height: height, channels: channels, seed: 3)
        var quality: [Int: Double] = [:]
        for q in [50, 90] {
            let record = try Self.encode(pixels, width, height, channels, codec: .jpeg(quality: q))
            #expect(record.count < pixels.count + 1024)
            let (result, out) = Self.decode(record, count: pixels.count, codec: .jpeg(quality: q))
            let header = try result.get()
            #expect(header == RecordHeader(codec: .jpeg, filter: .none, channels: channels, width: width, height: height))
            quality[q] = Self.psnr(out, pixels)
        }
        #expect(quality[90]! >= 38, "q90: \(quality[90]!) dB")
        #expect(quality[90]! > quality[50]! || quality[50]! == .infinity, "q90 \(quality[90]!) dB should beat q50 \(quality[50]!) dB")
    }

    @Test func jpegEncodingIsDeterministic() throws {
        let pixels = Fixtures.pattern(width: 64, height: 48, channels: 3)
        let a = try Self.encode(pixels, 64, 48, 3, codec: .jpeg(quality: 90))
        let b = try Self.encode(pixels, 64, 48, 3, codec: .jpeg(quality: 90))
        #expect(a == b)
        let (r1, p1) = Self.decode(a, count: pixels.count, codec: .jpeg(quality: 90))
        let (r2, p2) = Self.decode(a, count: pixels.count, codec: .jpeg(quality: 90))
        #expect((try? r1.get()) != nil && (try? r2.get()) != nil && p1 == p2)
    }

    @Test(arguments: [LevelCodec.jpeg(quality: 90), .zstd])
    func everyFlippedByteOfAVersion2RecordFailsItsChecksum(codec: LevelCodec) throws {
        let pixels = Fixtures.pattern(width: 24, height: 20, channels: 3)
        let record = try Self.encode(pixels, 24, 20, 3, codec: codec, filter: codec == .zstd ? .sub : .none)
        #expect((try? Self.decode(record, count: pixels.count, codec: codec, filter: codec == .zstd ? .sub : .none).0.get()) != nil)
        for i in 0..<record.count {
            for bit in [0x01, 0x80] as [UInt8] {
                var bad = record
                bad[i] ^= bit
                let (result, _) = Self.decode(bad, count: pixels.count, codec: codec, filter: codec == .zstd ? .sub : .none)
                switch result {
                case .success: Issue.record("flip of bit \(bit) at byte \(i) of \(record.count) decoded")
                case .failure(let f): #expect(f.reason.hasPrefix("checksum mismatch"), "byte \(i): \(f.reason)")
                }
            }
        }
        // A record cut short is caught too.
        #expect((try? Self.decode(Array(record.dropLast(3)), count: pixels.count, codec: codec, filter: codec == .zstd ? .sub : .none).0.get()) == nil)
    }

    /// Rewrites header byte `at` and recomputes the checksum: a record that is intact but says the
    /// wrong thing (another writer's bug) is still refused by the header checks.
    static func forged(_ record: [UInt8], byte at: Int, to value: UInt8) -> [UInt8] {
        var body = Array(record.dropLast(RecordChecksum.size))
        body[at] = value
        let sum = body.withUnsafeBytes { RecordChecksum.xxh3($0) }
        return body + withUnsafeBytes(of: sum.littleEndian, Array.init)
    }

    @Test func headerFieldsAreCheckedBehindTheChecksum() throws {
        let pixels = Fixtures.pattern(width: 16, height: 12, channels: 3)
        let jpeg = try Self.encode(pixels, 16, 12, 3, codec: .jpeg(quality: 90))
        let zstd = try Self.encode(pixels, 16, 12, 3, codec: .zstd)
        let cases: [(String, [UInt8], LevelCodec, String)] = [
            ("version 1 in a version 2 cache", Self.forged(zstd, byte: 0, to: 1), .zstd, "record version 1"),
            ("JPEG record claiming zstd", Self.forged(jpeg, byte: 1, to: 1), .jpeg(quality: 90), "the level stores JPEG"),
            ("zstd record claiming JPEG", Self.forged(zstd, byte: 1, to: 3), .zstd, "the level stores zstd"),
            ("filtered JPEG", Self.forged(jpeg, byte: 2, to: 1), .jpeg(quality: 90), "filter sub on a JPEG"),
            ("grey JPEG claimed", Self.forged(jpeg, byte: 3, to: 1), .jpeg(quality: 90), "JPEG has 3 channels"),
            ("wider JPEG claimed", Self.forged(jpeg, byte: 4, to: 17), .jpeg(quality: 90), "JPEG is 16x12"),
            ("taller zstd claimed", Self.forged(zstd, byte: 6, to: 13), .zstd, "header promises"),
        ]
        for (name, record, codec, reason) in cases {
            let (result, _) = Self.decode(record, count: 17 * 13 * 3, codec: codec)
            switch result {
            case .success: Issue.record("\(name) decoded")
            case .failure(let f): #expect(f.reason.contains(reason), "\(name): \(f.reason)")
            }
        }
    }

    @Test func version1RecordsDecodeAndAreNotMistakenForVersion2() throws {
        let pixels = Fixtures.pattern(width: 20, height: 20, channels: 1)
        let v1 = try Self.encode(pixels, 20, 20, 1, codec: .zstd, filter: .sub, version: 1)
        #expect(v1[0] == 1)
        let (ok, out) = Self.decode(v1, count: pixels.count, codec: .zstd, filter: .sub, version: 1)
        #expect(try ok.get().version == 1 && out == pixels)
        // Read as version 2, a version 1 record has no valid checksum; and the other way round.
        #expect((try? Self.decode(v1, count: pixels.count, codec: .zstd, filter: .sub, version: 2).0.get()) == nil)
        let v2 = try Self.encode(pixels, 20, 20, 1, codec: .zstd, filter: .sub)
        #expect((try? Self.decode(v2, count: pixels.count, codec: .zstd, filter: .sub, version: 1).0.get()) == nil)
    }

    @Test(arguments: [1, 3])
    func mixedCodecCacheReadsAndVerifies(channels: Int) throws {
        let levels = [48, 32, 16]
        let codecs: [LevelCodec] = [.jpeg(quality: 90), .zstd, .jpeg(quality: 75)]
        let samples = (0..<12).map { i in
            CacheFixture.Sample(label: i % 3, levels: levels.map { Self.smooth(width: $0, height: $0, channels: channels, seed: i) })
        }
        let dir = TempDirectory()
        let written = try CacheFixture.write(samples, levels: levels, channels: channels, classes: 3, shards: 2, filter: .sub,
                                             codecs: codecs, to: dir.url)
        #expect(written.formatVersion == 3)
        let reader = try CacheReader(url: dir.url)
        #expect(reader.manifest.levels.map(\.levelCodec) == codecs)
        let text = try String(contentsOf: dir.url.appendingPathComponent(Manifest.fileName), encoding: .utf8)
        #expect(text.contains("\"codec\" : \"jpeg\"") && text.contains("\"quality\" : 75"))
        let session = reader.makeSession()
        for (i, sample) in samples.enumerated() {
            for (l, size) in levels.enumerated() {
                let (header, pixels) = try session.image(index: i, level: size)
                #expect(header.width == size && header.height == size)
                if codecs[l] == .zstd {
                    #expect(pixels == sample.levels[l])
                } else {
                    #expect(Self.psnr(pixels, sample.levels[l]) >= 35, "index \(i) level \(size)")
                }
            }
        }
        let report = try CacheVerifier(reader: reader).verify()
        #expect(report.ok, "\(report.problems)")
        #expect(report.recordsChecked == samples.count * (levels.count + 1))
    }

    @Test func version1CacheStillLoadsAndVerifies() throws {
        let levels = [24, 12]
        let samples = CacheFixture.randomSamples(count: 20, levels: levels, channels: 3, classes: 2, seed: 41)
        let dir = TempDirectory()
        try CacheFixture.write(samples, levels: levels, channels: 3, classes: 2, shards: 2, filter: .sub, dictionary: true,
                               formatVersion: 1, to: dir.url)
        let reader = try CacheReader(url: dir.url)
        #expect(reader.manifest.formatVersion == 1)
        #expect(reader.manifest.levels.allSatisfy { $0.codec == nil && $0.levelCodec == .zstd })
        let session = reader.makeSession()
        for i in 0..<samples.count {
            for (l, size) in levels.enumerated() {
                let (header, pixels) = try session.image(index: i, level: size)
                #expect(header.version == 1 && pixels == samples[i].levels[l])
            }
        }
        #expect(try CacheVerifier(reader: reader).verify().ok)
        // Its records are version 1 ones: a flipped byte in a frame is still caught (zstd's checksum).
        let target = try session.withRecord(index: 13, level: 24) { Array($0) }
        #expect(target[0] == 1)
        #expect(try CacheFixture.flipByte(in: dir.url.appendingPathComponent("shard-00001/data.mdb").path, inside: target, offset: target.count - 2))
        let damaged = try CacheVerifier(reader: CacheReader(url: dir.url)).verify()
        #expect(damaged.problems.map(\.index) == [13])
    }

    @Test func manifestsWithUnknownOrMisplacedCodecsAreRefused() throws {
        let samples = CacheFixture.randomSamples(count: 4, levels: [8], channels: 1, classes: 2, seed: 2)
        let dir = TempDirectory()
        let manifest = try CacheFixture.write(samples, levels: [8], channels: 1, classes: 2, to: dir.url)
        let path = dir.url.appendingPathComponent(Manifest.fileName).path
        func refused(_ edit: (inout Manifest) -> Void, _ reason: String) throws {
            var m = manifest
            edit(&m)
            try m.write(to: dir.url)
            do { _ = try Manifest.load(from: dir.url); Issue.record("accepted: \(reason)") } catch let CacheError.invalidManifest(p, r) {
                #expect(p == path && r.contains(reason), "\(r)")
            }
        }
        try refused({ $0.levels[0].codec = "webp" }, "unknown codec webp")
        try refused({ $0.levels[0].levelCodec = .jpeg(quality: 0) }, "quality 0")
        try refused({ $0.formatVersion = 1; $0.levels[0].levelCodec = .jpeg(quality: 90) }, "version 1 cache")
        var future = manifest
        future.formatVersion = 4
        try future.write(to: dir.url)
        #expect(throws: CacheError.unsupportedVersion(path: path, found: 4, supported: 3)) { try Manifest.load(from: dir.url) }
    }

    @Test func codecNamesParse() {
        #expect(LevelCodec("zstd") == .zstd)
        #expect(LevelCodec("jpeg") == .jpeg(quality: 90))
        #expect(LevelCodec("jpeg:75") == .jpeg(quality: 75))
        for bad in ["jpeg:0", "jpeg:101", "jpeg:", "png", "JPEG", "jpeg:9x"] { #expect(LevelCodec(bad) == nil, "\(bad)") }
        #expect(LevelCodec.jpeg(quality: 85).description == "jpeg:85")
    }
}
