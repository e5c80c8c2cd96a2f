import Foundation
import PyramidCache

/// One sample rendered at every level (largest first), before encoding.
struct RenderedSample {
    var position: Int
    var label: Int
    /// Pixels per level, largest first, with each level's width and height.
    var levels: [(pixels: [UInt8], width: Int, height: Int)]
}

/// Turns source items into pixels at every level. One per worker thread (it caches resizers).
final class ChunkRenderer {
    let catalog: SourceCatalog
    let levels: [Int]          // nominal, largest first
    let stored: [Int]          // stored short sides, largest first
    let crop: BuildOptions.Crop
    let channels: Int
    let maxPixels: Int
    private var resizers: [String: MosaicResizer] = [:]
    /// Files that decoded with libvips warnings since ``takeWarnings()`` was last called: position
    /// and (path, the warnings).
    private var warnings: [(Int, SkippedItem)] = []

    /// Takes the warnings collected by ``render(_:)``.
    func takeWarnings() -> [(Int, SkippedItem)] {
        defer { warnings = [] }
        return warnings
    }

    init(catalog: SourceCatalog, options: BuildOptions, channels: Int) {
        self.catalog = catalog
        levels = options.sortedLevels
        stored = levels.map(options.storedSide)
        crop = options.crop
        self.channels = channels
        maxPixels = options.maxPixels
    }

    /// Sizes of every level for a largest-level image of `width × height`.
    func levelSizes(width: Int, height: Int) -> [(Int, Int)] {
        stored.map { s in crop == .center ? (s, s) : fullSize(width: width, height: height, short: s) }
    }

    private func resizer(width: Int, height: Int, inChannels: Int, targets: [(Int, Int)]) -> MosaicResizer {
        let key = "\(width)x\(height)x\(inChannels):" + targets.map { "\($0.0)x\($0.1)" }.joined(separator: ",")
        if let r = resizers[key] { return r }
        let r = MosaicResizer(width: width, height: height, inChannels: inChannels, outChannels: channels, targets: targets)
        resizers[key] = r
        return r
    }

    /// Renders the items at `positions`; unreadable items come back as skips, in position order.
    func render(_ positions: [Int]) throws -> (samples: [RenderedSample], skipped: [(Int, SkippedItem)]) {
        switch catalog.items {
        case .raster(let set): return (try renderRaster(set, positions), [])
        case .files(let files): return try renderFiles(files, positions)
        }
    }

    private func renderRaster(_ set: RasterSet, _ positions: [Int]) throws -> [RenderedSample] {
        // Centre crop to a square in memory (a copy of rows, no resampling), then every level from the source.
        var (w, h) = (set.width, set.height)
        var (x0, y0) = (0, 0)
        if crop == .center && w != h {
            let side = min(w, h)
            (x0, y0) = ((w - side) / 2, (h - side) / 2)
            (w, h) = (side, side)
        }
        let c = set.channels
        let images: [[UInt8]] = positions.map { p in
            let base = p * set.imageBytes
            if w == set.width && h == set.height { return Array(set.pixels[base..<(base + set.imageBytes)]) }
            var out = [UInt8](); out.reserveCapacity(w * h * c)
            for y in 0..<h {
                let from = base + ((y0 + y) * set.width + x0) * c
                out.append(contentsOf: set.pixels[from..<(from + w * c)])
            }
            return out
        }
        let sizes = levelSizes(width: w, height: h)
        let out = try resizer(width: w, height: h, inChannels: c, targets: sizes).resize(images)
        return positions.enumerated().map { i, p in
            RenderedSample(position: p, label: set.labels[p], levels: sizes.indices.map { (out[$0][i], sizes[$0].0, sizes[$0].1) })
        }
    }

    private func renderFiles(_ files: [FileItem], _ positions: [Int]) throws -> ([RenderedSample], [(Int, SkippedItem)]) {
        let decoder = ImageFile(storedSide: stored[0], crop: crop, channels: channels, maxPixels: maxPixels)
        var decoded: [(position: Int, image: ImageFile.Decoded)] = []
        var skipped: [(Int, SkippedItem)] = []
        for p in positions {
            switch decoder.decode(files[p].path) {
            case .success(let d):
                decoded.append((p, d))
                if !d.warnings.isEmpty { warnings.append((p, SkippedItem(path: files[p].path, reason: d.warnings.joined(separator: "; ")))) }
            case .failure(let reason): skipped.append((p, SkippedItem(path: files[p].path, reason: reason.text)))
            }
        }
        // Smaller levels from the largest, one libvips call per level for each group of equal size.
        var byPosition: [Int: RenderedSample] = [:]
        let groups = Dictionary(grouping: decoded.indices, by: { "\(decoded[$0].image.width)x\(decoded[$0].image.height)" })
        for key in groups.keys.sorted() {
            let members = groups[key]!
            let first = decoded[members[0]].image
            let sizes = levelSizes(width: first.width, height: first.height)
            let smaller = Array(sizes.dropFirst())
            let out = try resizer(width: first.width, height: first.height, inChannels: channels, targets: smaller)
                .resize(members.map { decoded[$0].image.pixels })
            for (i, m) in members.enumerated() {
                let d = decoded[m]
                var levels = [(d.image.pixels, d.image.width, d.image.height)]
                for t in smaller.indices { levels.append((out[t][i], smaller[t].0, smaller[t].1)) }
                byPosition[d.position] = RenderedSample(position: d.position, label: files[d.position].label, levels: levels)
            }
        }
        return (positions.compactMap { byPosition[$0] }, skipped)
    }
}
