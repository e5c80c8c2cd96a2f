import Testing
import PyramidTestSupport
@testable import PyramidLoader

@Suite struct ResamplerTests {
    static func image(_ w: Int, _ h: Int, _ c: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededGenerator(seed: seed)
        return (0..<(w * h * c)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// A random image (1–70 px a side, 3 channels on even trials), output size (1–48) and crop box
    /// (partly outside the image, any scale, maybe flipped).
    static func randomCase(_ rng: inout SeededGenerator, seed: UInt64, trial: Int) -> (Int, Int, Int, Int, [UInt8], CropBox) {
        let w = Int.random(in: 1...70, using: &rng), h = Int.random(in: 1...70, using: &rng)
        let c = trial % 2 == 0 ? 3 : 1
        let size = Int.random(in: 1...48, using: &rng)
        let px = image(w, h, c, seed: seed &* 1000 &+ UInt64(trial))
        let bw = Double.random(in: 0.05...1.3, using: &rng), bh = Double.random(in: 0.05...1.3, using: &rng)
        let box = CropBox(x: Double.random(in: -0.2...0.9, using: &rng), y: Double.random(in: -0.2...0.9, using: &rng),
                          width: bw, height: bh, flip: Bool.random(using: &rng))
        return (w, h, c, size, px, box)
    }

    func render(_ px: [UInt8], _ w: Int, _ h: Int, _ c: Int, _ box: CropBox, _ size: Int) -> [Float] {
        let r = Resampler()
        return px.withUnsafeBufferPointer { p -> [Float] in
            switch r.render(p.baseAddress!, width: w, height: h, channels: c, box: box, size: size) {
            case .bytes(let b): return (0..<(size * size * c)).map { Float(b[$0]) }
            case .floats(let f): return (0..<(size * size * c)).map { f[$0] }
            }
        }
    }

    @Test(arguments: [
        (28, 28, 1, CropBox.whole, 14), (28, 28, 1, CropBox.whole, 28), (28, 28, 3, CropBox(x: 0.1, y: 0.2, width: 0.5, height: 0.7, flip: true), 24),
        (40, 30, 3, CropBox(x: 0.3, y: 0.1, width: 0.2, height: 0.3), 20), (16, 16, 1, CropBox(x: -0.1, y: 0.125, width: 1, height: 1, flip: true), 16),
        (16, 16, 1, CropBox(x: 0.0625, y: -0.0625, width: 1, height: 1), 12), (64, 48, 3, CropBox(x: 0.05, y: 0.05, width: 0.9, height: 0.9), 9),
        (12, 12, 1, CropBox.whole, 30),
    ])
    func fastResamplerMatchesTheNaiveTwin(w: Int, h: Int, c: Int, box: CropBox, size: Int) {
        let px = Self.image(w, h, c, seed: UInt64(w * 31 + size))
        let fast = render(px, w, h, c, box, size)
        let naive = ReferenceResampler.render(px, width: w, height: h, channels: c, box: box, size: size)
        let worst = zip(fast, naive).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 0.01, "max |fast − naive| = \(worst)")
    }

    /// The uint8 path renders into the batch and rounds eight values at a time; it must give
    /// exactly the nearest byte (ties to even) of the interleaved render, bit for bit, ties (x.5)
    /// included, and every value the render makes must lie where that rounding holds.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func byteRenderEqualsInterleavedRenderThenRounding(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let r = Resampler()
        for trial in 0..<40 {
            var (w, h, c, size, px, box) = Self.randomCase(&rng, seed: seed, trial: trial)
            if trial % 5 == 0 { box = .whole }  // a 2:1 or 1:2 scale: exact halves, ties to round
            let floats = render(px, w, h, c, box, size)
            #expect(floats.allSatisfy { $0 > -0.5 && $0 < 255.5 })
            let expected = floats.map { UInt8($0.rounded(.toNearestOrEven)) }
            var bytes = [UInt8](repeating: 0xAA, count: size * size * c)
            px.withUnsafeBufferPointer { p in
                bytes.withUnsafeMutableBufferPointer { d in
                    r.renderBytes(p.baseAddress!, width: w, height: h, channels: c, box: box, size: size, into: d.baseAddress!)
                }
            }
            #expect(bytes == expected, "trial \(trial): \(w)x\(h)x\(c) → \(size), \(box)")
        }
        // Ties and the edges of the range, through the rounding alone (one lane and eight).
        let values: [Float] = [0.5, 1.5, 2.5, 254.5, -0.49, 0.49999997, 127.5, 0, 255, 1e-30, 254.49998, 255.49998, 3.7, 200.2, 99.5, 100.5]
        for v in values { #expect(Resampler.roundedByte(v) == UInt8(max(0, v.rounded(.toNearestOrEven))), "\(v)") }
        for start in stride(from: 0, to: values.count, by: 8) {
            let lanes = SIMD8<Float>(values[start..<(start + 8)])
            let got = Resampler.roundedBytes(lanes)
            for k in 0..<8 { #expect(got[k] == Resampler.roundedByte(lanes[k]), "\(lanes[k])") }
        }
    }

    /// The float32 path renders into planes and normalizes in one go; it must give exactly what the
    /// interleaved render followed by `v · scale + offset` per channel gives (its twin), bit for bit.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func planarRenderEqualsInterleavedRenderThenNormalize(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let r = Resampler()
        for trial in 0..<40 {
            var (w, h, c, size, px, box) = Self.randomCase(&rng, seed: seed, trial: trial)
            if trial % 7 == 0 { box = CropBox(x: -2.0 / Double(w), y: 0, width: Double(size) / Double(w), height: Double(size) / Double(h), flip: trial % 2 == 0) }
            let scale = (0..<c).map { _ in Float.random(in: 0.001...0.02, using: &rng) }
            let offset = (0..<c).map { _ in Float.random(in: -2...0, using: &rng) }
            let lut = (0..<c).map { k in (0..<256).map { Float($0) * scale[k] + offset[k] } }
            let interleaved = render(px, w, h, c, box, size)
            var expected = [Float](repeating: 0, count: size * size * c)
            for k in 0..<c { for i in 0..<(size * size) { expected[k * size * size + i] = interleaved[i * c + k] * scale[k] + offset[k] } }
            var planes = [Float](repeating: .nan, count: size * size * c)
            px.withUnsafeBufferPointer { p in
                planes.withUnsafeMutableBufferPointer { d in
                    r.renderPlanes(p.baseAddress!, width: w, height: h, channels: c, box: box, size: size,
                                   scale: scale, offset: offset, lut: lut, into: d.baseAddress!)
                }
            }
            #expect(planes == expected, "\(w)x\(h)x\(c) box \(box) size \(size)")
        }
    }

    @Test func storedSizeWholeBoxIsACopyAndAShiftIsAGather() {
        let px = Self.image(16, 16, 3, seed: 1)
        #expect(render(px, 16, 16, 3, .whole, 16) == px.map(Float.init))
        let flipped = render(px, 16, 16, 3, CropBox(x: 0, y: 0, width: 1, height: 1, flip: true), 16)
        for y in 0..<16 { for x in 0..<16 { for k in 0..<3 {
            #expect(flipped[(y * 16 + x) * 3 + k] == Float(px[(y * 16 + 15 - x) * 3 + k]))
        } } }
        // Shift right by 2 pixels and down by 1: zero fill where the box leaves the image.
        let shifted = render(px, 16, 16, 3, CropBox(x: -2.0 / 16, y: 1.0 / 16, width: 1, height: 1), 16)
        for y in 0..<16 { for x in 0..<16 {
            let sx = x - 2, sy = y + 1
            let expected: Float = (sx < 0 || sy > 15) ? 0 : Float(px[(sy * 16 + sx) * 3])
            #expect(shifted[(y * 16 + x) * 3] == expected)
        } }
        let table = AxisTable(source: 16, output: 16, origin: 3, extent: 16, flip: false)
        #expect(table.isGather)
        #expect(!AxisTable(source: 16, output: 16, origin: 0.5, extent: 16, flip: false).isGather)
    }

    /// A pad-and-crop rendered at a smaller size is the antialiased shrink of the same crop made at
    /// full size: the black border counts as pixels of the crop (torchvision's pad, crop, resize),
    /// it is not an edge to renormalize at. Fails if the taps in the padding are dropped.
    @Test(arguments: [(1, false, 14), (3, true, 16), (1, true, 20), (3, false, 42)])
    func paddedCropAtAnotherSizeIsTheResizedFullSizeCrop(c: Int, flip: Bool, size: Int) {
        let n = 28
        let px = Self.image(n, n, c, seed: UInt64(size))
        // Larger than the image on every side: the whole crop is image plus black border.
        let box = CropBox(x: -2.0 / Double(n), y: -3.0 / Double(n), width: 32.0 / Double(n), height: 32.0 / Double(n), flip: flip)
        let full = render(px, n, n, c, box, 32)  // a shift: exact bytes, black outside
        #expect(full[0] == 0 && full[(31 * 32 + 31) * c] == 0)
        let expected = render(full.map { UInt8($0) }, 32, 32, c, .whole, size)
        let actual = render(px, n, n, c, box, size)
        let worst = zip(actual, expected).map { abs($0 - $1) }.max()!
        #expect(worst < 0.01, "max |pad-and-crop at \(size) − resized full-size crop| = \(worst)")
    }

    @Test func shrinkingAveragesEverySourcePixel() {
        // A 2:1 shrink of a checkerboard of columns must come out flat grey (antialiased), not the
        // value of every other column (point sampling).
        let w = 32
        let px = (0..<(w * w)).map { UInt8(($0 % w) % 2 == 0 ? 0 : 200) }
        let out = render(px, w, w, 1, .whole, 8)
        // Interior columns (edge outputs lose the taps beyond the border and renormalize).
        for y in 0..<8 { for x in 1..<7 { #expect(abs(out[y * 8 + x] - 100) < 0.5, "\(out[(y * 8)..<(y * 8 + 8)])") } }
        let point = ReferenceResampler.render(px, width: w, height: w, channels: 1, box: .whole, size: 8)
        #expect(abs(point[3] - Double(out[3])) < 0.01)
    }
}
