import CVips
import Foundation

/// Resizes many same-sized images with one libvips call per target size.
///
/// One libvips pipeline costs about 0.7 ms whatever the image size, so 60,000 small images
/// resized one call at a time would take minutes. Instead the images are laid out as tiles of one
/// mosaic, each tile padded by copying its edge pixels outward (P pixels on every side), and the
/// mosaic is resized once per target size; the tiles are then cut out again.
///
/// A tile's result depends only on that tile: P is a multiple of `w / gcd(w, tw)` (and the same
/// vertically) for every target, so tile borders land on whole output pixels and every tile sees
/// the same sampling grid; and P is wider than the resampling kernel's reach, so no kernel reads a
/// neighbour. Hence a sample's bytes do not depend on which other samples share its mosaic, and the
/// cache is identical for any number of workers or shards. When such a P would be larger than the
/// image itself, each image is resized alone (no padding) instead; which path is used depends only
/// on the image size and the targets.
struct MosaicResizer {
    let width: Int
    let height: Int
    let inChannels: Int
    let outChannels: Int
    /// Target sizes (width, height).
    let targets: [(Int, Int)]
    /// Padding per side, in source pixels; 0 when images are resized one at a time.
    let padding: Int
    let tiled: Bool

    /// Radius, in output pixels, of the resampling kernel (libvips' linear kernel: a triangle of
    /// radius 1, stretched by the shrink factor when shrinking).
    static let kernelRadius = 1.0

    init(width: Int, height: Int, inChannels: Int, outChannels: Int, targets: [(Int, Int)]) {
        self.width = width; self.height = height
        self.inChannels = inChannels; self.outChannels = outChannels
        self.targets = targets
        var step = 1
        var reach = 0.0
        for (tw, th) in targets where tw != width || th != height {
            step = lcm(step, width / gcd(width, tw))
            step = lcm(step, height / gcd(height, th))
            reach = max(reach, MosaicResizer.kernelRadius * max(Double(width) / Double(tw), Double(height) / Double(th), 1.0))
        }
        let need = Int(reach.rounded(.up)) + 2
        let p = reach == 0 ? 0 : step * ((need + step - 1) / step)
        tiled = p <= max(width, height)
        padding = tiled ? p : 0
    }

    /// Resizes `images` (each `width × height × inChannels` bytes) to every target.
    /// - Returns: `result[t][i]`, image `i` at target `t`, `tw × th × outChannels` bytes.
    func resize(_ images: [[UInt8]]) throws -> [[[UInt8]]] {
        if images.isEmpty { return targets.map { _ in [] } }
        if !tiled && images.count > 1 {
            let one = try images.map { try resize([$0]) }
            return targets.indices.map { t in one.map { $0[t][0] } }
        }
        let p = padding
        let (tileW, tileH) = (width + 2 * p, height + 2 * p)
        let cols = Int(Double(images.count).squareRoot().rounded(.up))
        let rows = (images.count + cols - 1) / cols
        let mosaic = buildMosaic(images, cols: cols, rows: rows, tileW: tileW, tileH: tileH)
        var result: [[[UInt8]]] = []
        for (tw, th) in targets {
            if tw == width && th == height && inChannels == outChannels {
                result.append(images)
                continue
            }
            // Output tile geometry: exact integers by the choice of P.
            let outTileW = tileW * tw / width, outTileH = tileH * th / height
            let offX = p * tw / width, offY = p * th / height
            let pixels: [UInt8] = try mosaic.withUnsafeBytes { raw in
                var image = try VImage.wrap(raw, width: cols * tileW, height: rows * tileH, bands: inChannels)
                image = try image.apply("vips_copy") {
                    pyr_vips_copy_interpretation($0, $1, inChannels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB)
                }
                if tw != width || th != height {
                    let hs = Double(tw) / Double(width), vs = Double(th) / Double(height)
                    image = try image.apply("vips_resize") { pyr_vips_resize($0, $1, hs, vs) }
                }
                if inChannels != outChannels {
                    image = try image.apply("vips_colourspace") {
                        pyr_vips_colourspace($0, $1, outChannels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB)
                    }
                }
                image = try image.apply("vips_cast") { pyr_vips_cast_uchar($0, $1) }
                guard image.width == cols * outTileW, image.height == rows * outTileH, image.bands == outChannels else {
                    throw BuildError.vips(function: "vips_resize", message: "mosaic came out \(image.width)x\(image.height)x\(image.bands), expected \(cols * outTileW)x\(rows * outTileH)x\(outChannels)")
                }
                return try image.pixels(strip: 16)
            }
            let rowBytes = cols * outTileW * outChannels
            var level: [[UInt8]] = []
            level.reserveCapacity(images.count)
            pixels.withUnsafeBytes { src in
                for i in 0..<images.count {
                    let (cx, cy) = (i % cols, i / cols)
                    var tile = [UInt8](repeating: 0, count: tw * th * outChannels)
                    tile.withUnsafeMutableBytes { dst in
                        for y in 0..<th {
                            let from = (cy * outTileH + offY + y) * rowBytes + (cx * outTileW + offX) * outChannels
                            dst.baseAddress!.advanced(by: y * tw * outChannels)
                                .copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: tw * outChannels)
                        }
                    }
                    level.append(tile)
                }
            }
            result.append(level)
        }
        return result
    }

    /// Lays images out as padded tiles, replicating each image's edge pixels into its padding.
    private func buildMosaic(_ images: [[UInt8]], cols: Int, rows: Int, tileW: Int, tileH: Int) -> [UInt8] {
        let c = inChannels, p = padding
        let rowBytes = cols * tileW * c
        var mosaic = [UInt8](repeating: 0, count: rows * tileH * rowBytes)
        mosaic.withUnsafeMutableBytes { m in
            let base = m.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for (i, image) in images.enumerated() {
                let (cx, cy) = (i % cols, i / cols)
                image.withUnsafeBytes { srcRaw in
                    let src = srcRaw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    for ty in 0..<tileH {
                        let sy = min(max(ty - p, 0), height - 1)
                        let dstRow = base + (cy * tileH + ty) * rowBytes + cx * tileW * c
                        let srcRow = src + sy * width * c
                        for x in 0..<p { // left and right padding: edge pixel copies
                            for k in 0..<c {
                                dstRow[x * c + k] = srcRow[k]
                                dstRow[(p + width + x) * c + k] = srcRow[(width - 1) * c + k]
                            }
                        }
                        (dstRow + p * c).update(from: srcRow, count: width * c)
                    }
                }
            }
        }
        return mosaic
    }
}

func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
func lcm(_ a: Int, _ b: Int) -> Int { a / gcd(a, b) * b }
