import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import Testing

@Suite struct ImageFormatTests {
    /// One solid-colour image per format; after the build, each sample's pixels must be that colour.
    @Test func everyFormatDecodesToItsColour() throws {
        let dir = TempDirectory(), out = TempDirectory()
        let cls = dir.path("c")
        try FileManager.default.createDirectory(atPath: cls, withIntermediateDirectories: true)
        let color: [UInt8] = [200, 60, 30]
        let px = Fixtures.solid(width: 40, height: 30, color: color)
        let cases: [(String, UInt8?, Bool, Bool)] = [
            ("a-baseline.jpg", nil, false, false), ("b-progressive.jpg[interlace]", nil, false, false),
            ("c-cmyk.jpg", nil, true, false), ("d-8bit.png", nil, false, false), ("e-alpha.png", 255, false, false),
            ("f-16bit.png[bitdepth=16]", nil, false, true), ("g-16bit-alpha.png[bitdepth=16]", 255, false, true),
            ("h.webp", nil, false, false), ("i.tif", nil, false, false), ("j.gif", nil, false, false),
        ]
        for (name, alpha, cmyk, sixteen) in cases {
            try Fixtures.writeImage(px, width: 40, height: 30, channels: 3, to: "\(cls)/\(name)", alpha: alpha, cmyk: cmyk, sixteenBit: sixteen)
        }
        // Transparent pixels are flattened onto white.
        try Fixtures.writeImage(px, width: 40, height: 30, channels: 3, to: "\(cls)/k-transparent.png", alpha: 0)
        var options = BuildOptions(levels: [16, 8])
        options.workers = 2
        let report = try build(dir.url.path, out.url.appendingPathComponent("c"), options)
        #expect(report.skipped == [], "\(report.skipped)")
        let reader = try CacheReader(url: out.url.appendingPathComponent("c"))
        #expect(reader.manifest.sampleCount == 11)
        let session = reader.makeSession()
        // CMYK goes through a colour profile both ways: libvips' own sRGB→CMYK→sRGB round trip of
        // (200,60,30) gives (209,74,53), a mean difference of 15.3, so allow 20 there.
        let tolerance: [Int: Double] = [2: 20]
        for i in 0..<10 {
            let image = try session.image(index: i, level: 16)
            #expect(image.header.width == 16 && image.header.height == 16 && image.header.channels == 3)
            let diff = meanAbsDiff(image.pixels, Fixtures.solid(width: 16, height: 16, color: color))
            #expect(diff <= tolerance[i, default: 4], "\(cases[i].0): mean difference \(diff)")
            // Channel order survives (a CMYK file read as RGB would not be red).
            #expect(image.pixels[0] > image.pixels[1] + 100 && image.pixels[1] > image.pixels[2], "\(cases[i].0): \(image.pixels[0..<3])")
        }
        let white = try session.image(index: 10, level: 8).pixels
        #expect(meanAbsDiff(white, [UInt8](repeating: 255, count: white.count)) < 2)
    }

    @Test func largeJPEGUsesShrinkOnLoadAndATruncatedOneIsStillCaught() throws {
        // 1600x1200 to a 96 px top level: libjpeg decodes at 1/8 (factor 12.5), then libvips resamples.
        let dir = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: dir.path("c"), withIntermediateDirectories: true)
        let big = Fixtures.pattern(width: 1600, height: 1200, channels: 3, seed: 3)
        try Fixtures.writeImage(big, width: 1600, height: 1200, channels: 3, to: dir.path("c/big.jpg"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path("c/big.jpg")))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: dir.path("c/big-truncated.jpg")))
        let report = try build(dir.url.path, out.url.appendingPathComponent("c"), BuildOptions(levels: [96, 48]))
        #expect(report.samplesWritten == 1)
        #expect(report.skipped.map(\.path) == [dir.path("c/big-truncated.jpg")])
        let image = try CacheReader(url: out.url.appendingPathComponent("c")).makeSession().image(index: 0, level: 96)
        // Compare with a box-filtered centre square of the source, at 96 px.
        var reference = [UInt8]()
        let (x0, side) = (200, 1200)
        for y in 0..<96 { for x in 0..<96 { for c in 0..<3 {
            var s = 0, n = 0
            for yy in stride(from: y * side / 96, to: (y + 1) * side / 96, by: 2) {
                for xx in stride(from: x0 + x * side / 96, to: x0 + (x + 1) * side / 96, by: 2) { s += Int(big[(yy * 1600 + xx) * 3 + c]); n += 1 }
            }
            reference.append(UInt8(s / n))
        } } }
        let diff = meanAbsDiff(image.pixels, reference)
        #expect(diff < 12, "mean difference \(diff) from a box-filtered reference")
    }

    @Test func greyOutputFromColourAndColourFromGrey() throws {
        let dir = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: dir.path("c"), withIntermediateDirectories: true)
        try Fixtures.writeImage(Fixtures.solid(width: 20, height: 20, color: [255, 255, 255]), width: 20, height: 20, channels: 3, to: dir.path("c/white.png"))
        try Fixtures.writeImage(Fixtures.solid(width: 20, height: 20, color: [90]), width: 20, height: 20, channels: 1, to: dir.path("c/grey.png"))
        var grey = BuildOptions(levels: [10]); grey.channels = 1
        try build(dir.url.path, out.url.appendingPathComponent("g"), grey)
        let g = try CacheReader(url: out.url.appendingPathComponent("g")).makeSession()
        #expect(try g.image(index: 1, level: 10).pixels == [UInt8](repeating: 255, count: 100))
        var rgb = BuildOptions(levels: [10]); rgb.channels = 3
        try build(dir.url.path, out.url.appendingPathComponent("r"), rgb)
        let r = try CacheReader(url: out.url.appendingPathComponent("r")).makeSession()
        #expect(meanAbsDiff(try r.image(index: 0, level: 10).pixels, [UInt8](repeating: 90, count: 300)) < 1)
    }

    /// A photo whose EXIF orientation says "rotate 90°" is stored upright: a 40x20 landscape file
    /// shown as a 20x40 portrait keeps that portrait shape (--crop full), its left half on top.
    @Test func exifOrientationIsTurnedUpright() throws {
        let dir = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: dir.path("c"), withIntermediateDirectories: true)
        var px = [UInt8](repeating: 0, count: 40 * 20 * 3)
        for y in 0..<20 { for x in 0..<40 { let i = (y * 40 + x) * 3; if x < 20 { px[i] = 250 } else { px[i + 2] = 250 } } }
        try Fixtures.writeImage(px, width: 40, height: 20, channels: 3, to: dir.path("c/rotated.jpg"), orientation: 6)
        var options = BuildOptions(levels: [10])
        options.crop = .full
        let report = try build(dir.url.path, out.url.appendingPathComponent("c"), options)
        #expect(report.skipped == [], "\(report.skipped)")
        let (header, pixels) = try CacheReader(url: out.url.appendingPathComponent("c")).makeSession().image(index: 0, level: 10)
        #expect(header.width == 10 && header.height == 20, "\(header.width)x\(header.height)")
        // Orientation 6 shows the stored image turned 90° clockwise: its left (red) half ends up on top.
        let top = pixels[(2 * 10 + 5) * 3], bottom = pixels[(17 * 10 + 5) * 3]
        #expect(top > 200 && bottom < 50, "red at the top \(top), at the bottom \(bottom)")
    }

    @Test func fullCropKeepsAspectAndMarginEnlargesStoredLevels() throws {
        let dir = TempDirectory(), out = TempDirectory()
        try FileManager.default.createDirectory(atPath: dir.path("c"), withIntermediateDirectories: true)
        try Fixtures.writeImage(Fixtures.pattern(width: 90, height: 60, channels: 3), width: 90, height: 60, channels: 3, to: dir.path("c/wide.png"))
        var full = BuildOptions(levels: [20, 10]); full.crop = .full
        try build(dir.url.path, out.url.appendingPathComponent("f"), full)
        let f = try CacheReader(url: out.url.appendingPathComponent("f"))
        #expect(try f.makeSession().header(index: 0, level: 20) == RecordHeader(codec: .zstd, filter: .none, channels: 3, width: 30, height: 20))
        #expect(try f.makeSession().header(index: 0, level: 10).width == 15)
        #expect(try CacheVerifier(reader: f).verify().ok)

        var margin = BuildOptions(levels: [28, 14]); margin.margin = 1.143
        try build(dir.url.path, out.url.appendingPathComponent("m"), margin)
        let m = try CacheReader(url: out.url.appendingPathComponent("m"))
        #expect(m.manifest.levels.map(\.storedShortSide) == [32, 16])
        #expect(try m.makeSession().header(index: 0, level: 28).width == 32)
    }

    @Test func resizedLevelsMatchAPlainReference() throws {
        // Each level should look like the source shrunk: compare with a box-filter reference.
        let src = TempDirectory(), out = TempDirectory()
        try makeIDX(src, count: 20)
        var options = BuildOptions(levels: [28, 14, 7])
        options.workers = 1
        try build(src.url.path, out.url.appendingPathComponent("c"), options)
        let session = try CacheReader(url: out.url.appendingPathComponent("c")).makeSession()
        for i in [0, 13] {
            let source = Fixtures.pattern(width: 28, height: 28, channels: 1, seed: i)
            for size in [14, 7] {
                let f = 28 / size
                var reference = [UInt8]()
                for y in 0..<size { for x in 0..<size {
                    var s = 0
                    for dy in 0..<f { for dx in 0..<f { s += Int(source[(y * f + dy) * 28 + x * f + dx]) } }
                    reference.append(UInt8(s / (f * f)))
                } }
                let diff = meanAbsDiff(try session.image(index: i, level: size).pixels, reference)
                #expect(diff < 12, "sample \(i) level \(size): mean difference \(diff) from a box filter")
            }
        }
    }
}
