import PyramidCache
import Testing
@testable import PyramidLoader

@Suite struct AugmentationTests {
    @Test func randomResizedBoxesStayInsideWithTheirAreaAndRatio() {
        let aug = Augmentation(crop: .randomResized(scale: 0.25...0.75, ratio: 0.5...2), flip: true)
        var flips = 0, fallbacks = 0
        for i in 0..<2000 {
            var rng = SplitMix64(seed: UInt64(i))
            let box = aug.box(width: 300, height: 200, referenceSize: 200, rng: &rng)
            #expect(box.x >= 0 && box.y >= 0 && box.x + box.width <= 1 + 1e-9 && box.y + box.height <= 1 + 1e-9)
            let area = box.width * box.height            // fraction of the image's area
            let ratio = (box.width * 300) / (box.height * 200)
            if area < 0.25 - 1e-9 || area > 0.75 + 1e-9 { fallbacks += 1 }
            #expect(ratio >= 0.5 - 1e-9 && ratio <= 2 + 1e-9)
            if box.flip { flips += 1 }
        }
        #expect(fallbacks < 40, "\(fallbacks) fallbacks")
        #expect(abs(flips - 1000) < 120)
    }

    @Test func padCropShiftsByWholeReferencePixels() {
        let aug = Augmentation.padCrop(4)
        var seen = Set<Int>()
        for i in 0..<500 {
            var rng = SplitMix64(seed: UInt64(i))
            let box = aug.box(width: 14, height: 14, referenceSize: 28, rng: &rng)
            #expect(box.width == 1 && box.height == 1)
            let dx = box.x * 28
            #expect(abs(dx - dx.rounded()) < 1e-9 && abs(dx) <= 4)
            seen.insert(Int(dx.rounded()))
        }
        #expect(seen == Set(-4...4))
    }

    @Test func centerCropOfANonSquareImage() {
        var rng = SplitMix64(seed: 0)
        let box = Augmentation(crop: .center(fraction: 0.875)).box(width: 400, height: 200, referenceSize: 200, rng: &rng)
        #expect(abs(box.width * 400 - 175) < 1e-9 && abs(box.height * 200 - 175) < 1e-9)
        #expect(abs(box.x * 400 - 112.5) < 1e-9 && abs(box.y * 200 - 12.5) < 1e-9)
    }

    @Test(arguments: [
        ("pad:4+flip", Augmentation(crop: .pad(pixels: 4), flip: true)),
        ("rrc", Augmentation(crop: .randomResized(scale: 0.08...1, ratio: (3.0 / 4)...(4.0 / 3)))),
        ("rrc:0.25-1+flips", Augmentation(crop: .randomResized(scale: 0.25...1, ratio: (3.0 / 4)...(4.0 / 3)), flip: true, independentFlips: true)),
        ("center", Augmentation(crop: .center(fraction: 0.875))),
        ("whole", Augmentation.none),
    ])
    func parse(spec: String, expected: Augmentation) throws {
        #expect(try Augmentation.parse(spec) == expected)
    }

    @Test(arguments: ["pad", "pad:x", "rrc:0.5", "rrc:0.9-0.1", "center:2", "zoom", "pad:4+mirror"])
    func malformedAugmentationsAreNamed(spec: String) {
        #expect { _ = try Augmentation.parse(spec) } throws: { "\($0)".contains("invalid augmentation '\(spec)'") }
    }

    @Test func defaultsFollowTheCache() {
        func manifest(format: String, largest: Int, margin: Double = 1) -> Manifest {
            Manifest(toolVersion: "t", createdAt: "", source: .init(format: format, path: ""), classes: ["a"], sampleCount: 1, channels: 3,
                     levels: [.init(size: largest, storedShortSide: Int(Double(largest) * margin))], shape: .init(crop: "center", margin: margin),
                     codec: .init(level: 1, filter: "none"), shards: [], mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2],
                     labelHistogram: [1], skipped: 0, buildOptions: [:], buildSeconds: 0)
        }
        #expect(Augmentation.evaluation(for: manifest(format: "idx", largest: 28)) == .none)
        #expect(Augmentation.training(for: manifest(format: "cifar10", largest: 32)) == .padCrop(4))
        #expect(Augmentation.evaluation(for: manifest(format: "folder", largest: 224)) == Augmentation(crop: .center(fraction: 0.875)))
        #expect(Augmentation.training(for: manifest(format: "folder", largest: 224)) == .randomResizedCrop)
        let m = Augmentation.evaluation(for: manifest(format: "folder", largest: 224, margin: 8.0 / 7))
        #expect(m == Augmentation(crop: .center(fraction: 0.875)) || {
            if case .center(let f) = m.crop { return abs(f - 0.875) < 1e-9 } else { return false }
        }())
    }
}
