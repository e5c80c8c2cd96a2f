#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache

/// A crop of one sample, in coordinates normalized to the stored image (0…1 on each axis), and
/// whether it is mirrored. One box is drawn per sample and rendered at every requested size, so the
/// views of a sample at different sizes show the same content. A box may reach outside the image
/// (pad-and-crop): what lies outside is zero.
public struct CropBox: Equatable, Sendable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    /// Mirror left–right.
    public var flip: Bool

    public init(x: Double, y: Double, width: Double, height: Double, flip: Bool = false) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.flip = flip
    }

    /// The whole image.
    public static let whole = CropBox(x: 0, y: 0, width: 1, height: 1)
}

/// How training (or evaluation) views are cut from the stored images.
///
/// Training: random-resized crop (ImageNet style), pad-and-crop (CIFAR style) or none, plus an
/// optional horizontal flip. Evaluation: the whole image, or a centred square of a fraction of the
/// short side (the "resize to t/0.875, centre-crop t" protocol). The output is always `s × s`: a box
/// that is not square is squashed, as the reference implementations resize.
public struct Augmentation: Sendable, Equatable, CustomStringConvertible {
    /// The crop.
    public enum Crop: Sendable, Equatable {
        /// The whole stored image (small whole-object images: Fashion-MNIST, CIFAR).
        case whole
        /// A centred square whose side is `fraction` of the short side (0.875: photo evaluation).
        case center(fraction: Double)
        /// Shift by up to `pixels` in each direction, measured at the cache's largest level, with
        /// zero fill (pad-and-crop, CIFAR style).
        case pad(pixels: Int)
        /// Random-resized crop (torchvision's `RandomResizedCrop`): area fraction drawn from
        /// `scale`, aspect ratio log-uniform in `ratio`, 10 attempts, then a centre crop clipped
        /// to the ratio range.
        case randomResized(scale: ClosedRange<Double>, ratio: ClosedRange<Double>)
    }

    public var crop: Crop
    /// Mirror left–right with probability ½.
    public var flip: Bool
    /// For several sizes per sample (``Parallel``): draw the flip per size, as the RS-Nets PyTorch
    /// code does, instead of one shared flip (the default, as its TF code and the paper's single
    /// crop intend).
    public var independentFlips: Bool

    public init(crop: Crop, flip: Bool = false, independentFlips: Bool = false) {
        self.crop = crop; self.flip = flip; self.independentFlips = independentFlips
    }

    /// No augmentation: the whole image.
    public static let none = Augmentation(crop: .whole)
    /// ImageNet-style training: random-resized crop (0.08–1, 3/4–4/3) and flip.
    public static let randomResizedCrop = Augmentation(crop: .randomResized(scale: 0.08...1, ratio: (3.0 / 4)...(4.0 / 3)), flip: true)
    /// CIFAR-style training: pad-and-crop by `pixels` and flip.
    public static func padCrop(_ pixels: Int) -> Augmentation { Augmentation(crop: .pad(pixels: pixels), flip: true) }

    /// The evaluation view a cache calls for (docs/design.md, "Evaluation"): a cache stored with a margin holds
    /// the evaluation view as its centred `1/margin`; Fashion-MNIST/CIFAR-like sources (IDX, CIFAR,
    /// or a largest level of at most 64) are whole-object images, resized whole; anything else is
    /// treated as photos: centred square of 0.875 of the short side.
    public static func evaluation(for manifest: Manifest) -> Augmentation {
        if manifest.shape.margin > 1.0001 { return Augmentation(crop: .center(fraction: 1 / manifest.shape.margin)) }
        let small = ["idx", "cifar10", "cifar100"].contains(manifest.source.format) || (manifest.levelSizes.max() ?? 0) <= 64
        return small ? .none : Augmentation(crop: .center(fraction: 0.875))
    }

    /// Training augmentation a cache calls for: pad-and-crop by 1/8 of the largest level plus flip
    /// for small whole-object images (rounded: 4 px at 32 and at 28), random-resized crop for photos.
    public static func training(for manifest: Manifest) -> Augmentation {
        let largest = manifest.levelSizes.max() ?? 0
        let small = ["idx", "cifar10", "cifar100"].contains(manifest.source.format) || largest <= 64
        return small ? .padCrop(max(1, Int((Double(largest) / 8).rounded()))) : .randomResizedCrop
    }

    /// The command-line syntax, for help texts.
    public static let syntax = "none | whole | center[:F] | pad:P | rrc[:SMIN-SMAX] — add +flip (and +flips for per-size flips)"

    /// Parses `none`, `whole`, `center:0.875`, `pad:4+flip`, `rrc+flip`, `rrc:0.25-1+flip`, `pad:4+flip+flips`.
    public static func parse(_ spec: String) throws -> Augmentation {
        func fail(_ reason: String) -> LoaderError { .invalidAugmentation(spec: spec, reason: reason) }
        var parts = spec.split(separator: "+").map { $0.trimmingBlanks().lowercased() }
        guard let head = parts.first, !head.isEmpty else { throw fail("empty") }
        parts.removeFirst()
        var aug: Augmentation
        let name = head.split(separator: ":", maxSplits: 1).first.map(String.init) ?? head
        let arg = head.contains(":") ? String(head.split(separator: ":", maxSplits: 1)[1]) : nil
        switch name {
        case "none", "whole":
            guard arg == nil else { throw fail("\(name) takes no argument") }
            aug = Augmentation(crop: .whole)
        case "center":
            let f = arg.flatMap(Double.init) ?? 0.875
            guard f > 0, f <= 1, arg == nil || Double(arg!) != nil else { throw fail("center:F needs 0 < F ≤ 1") }
            aug = Augmentation(crop: .center(fraction: f))
        case "pad":
            guard let a = arg, let p = Int(a), p >= 0 else { throw fail("pad:P needs a number of pixels, e.g. pad:4") }
            aug = Augmentation(crop: .pad(pixels: p))
        case "rrc":
            var scale = 0.08...1.0
            if let a = arg {
                let b = a.split(separator: "-").compactMap { Double($0) }
                guard b.count == 2, b[0] > 0, b[0] <= b[1], b[1] <= 1 else { throw fail("rrc:MIN-MAX needs 0 < MIN ≤ MAX ≤ 1, e.g. rrc:0.08-1") }
                scale = b[0]...b[1]
            }
            aug = Augmentation(crop: .randomResized(scale: scale, ratio: (3.0 / 4)...(4.0 / 3)))
        default:
            throw fail("unknown crop '\(name)' (expected \(syntax))")
        }
        for p in parts {
            switch p {
            case "flip": aug.flip = true
            case "flips": aug.flip = true; aug.independentFlips = true
            default: throw fail("unknown modifier '+\(p)' (expected +flip or +flips)")
            }
        }
        return aug
    }

    public var description: String {
        var s: String
        switch crop {
        case .whole: s = "whole"
        case .center(let f): s = "center:\(f)"
        case .pad(let p): s = "pad:\(p)"
        case .randomResized(let scale, _): s = "rrc:\(scale.lowerBound)-\(scale.upperBound)"
        }
        if flip { s += independentFlips ? "+flips" : "+flip" }
        return s
    }

    /// Draws the box of one sample.
    /// - Parameters:
    ///   - width: the stored image's width at the level the box is drawn on (only the aspect ratio
    ///     matters: levels differ by a common scale).
    ///   - height: its height at that level.
    ///   - referenceSize: the cache's largest level, which `pad(pixels:)` is measured at.
    ///   - rng: the sample's random stream.
    public func box(width: Int, height: Int, referenceSize: Int, rng: inout SplitMix64) -> CropBox {
        let w = Double(width), h = Double(height), short = min(w, h)
        var box: CropBox
        switch crop {
        case .whole:
            box = .whole
        case .center(let f):
            let side = f * short
            box = CropBox(x: (w - side) / 2 / w, y: (h - side) / 2 / h, width: side / w, height: side / h)
        case .pad(let p):
            // Shifts in whole pixels of the reference level (its short side is `referenceSize`).
            let dx = rng.nextInt(below: 2 * p + 1) - p, dy = rng.nextInt(below: 2 * p + 1) - p
            let px = short / Double(referenceSize)  // this level's pixels per reference pixel
            box = CropBox(x: Double(dx) * px / w, y: Double(dy) * px / h, width: 1, height: 1)
        case .randomResized(let scale, let ratio):
            box = Augmentation.randomResized(w: w, h: h, scale: scale, ratio: ratio, rng: &rng)
        }
        if flip { box.flip = rng.nextUnit() < 0.5 }
        return box
    }

    static func randomResized(w: Double, h: Double, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
                              rng: inout SplitMix64) -> CropBox {
        let area = w * h
        let logLo = log(ratio.lowerBound), logHi = log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * (scale.lowerBound + rng.nextUnit() * (scale.upperBound - scale.lowerBound))
            let aspect = exp(logLo + rng.nextUnit() * (logHi - logLo))
            let bw = (target * aspect).squareRoot(), bh = (target / aspect).squareRoot()
            if bw <= w && bh <= h {
                let x = rng.nextUnit() * (w - bw), y = rng.nextUnit() * (h - bh)
                return CropBox(x: x / w, y: y / h, width: bw / w, height: bh / h)
            }
        }
        // Fallback (torchvision): the whole image, clipped to the ratio range, centred.
        let inRatio = w / h
        var bw = w, bh = h
        if inRatio < ratio.lowerBound { bh = bw / ratio.lowerBound } else if inRatio > ratio.upperBound { bw = bh * ratio.upperBound }
        return CropBox(x: (w - bw) / 2 / w, y: (h - bh) / 2 / h, width: bw / w, height: bh / h)
    }
}
