#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache

/// Fills one batch buffer: reads each sample's records, draws its crop, renders every view and
/// writes it in the output layout. One per worker thread (it owns a read session and scratch).
final class SampleRenderer {
    private let loader: Loader
    private let session: ReadSession
    private let resampler = Resampler()
    private let manifest: Manifest
    private let channels: Int
    private let reference: Int
    private var decoded: [Int: (pointer: UnsafeMutableRawPointer, capacity: Int)] = [:]
    /// `lut[c][v]`: the normalized value of byte `v` in channel `c`.
    private let lut: [[Float]]

    init(loader: Loader) {
        self.loader = loader
        session = loader.cache.makeSession()
        manifest = loader.cache.manifest
        channels = manifest.channels
        reference = manifest.levelSizes.max()!
        lut = (0..<manifest.channels).map { c in
            (0..<256).map { Float($0) * loader.normalizeScale[c] + loader.normalizeOffset[c] }
        }
    }

    deinit { for d in decoded.values { d.pointer.deallocate() } }

    /// A decoded sample at one level.
    struct Image { var pixels: UnsafePointer<UInt8>; var width: Int; var height: Int }

    /// Decodes `index` at `level` into this renderer's scratch for that level.
    private func decode(index: Int, level: Int) throws -> Image {
        let shard = manifest.shardNumber(of: index) ?? -1
        let stored = try manifest.level(level).storedShortSide
        var slot: (pointer: UnsafeMutableRawPointer, capacity: Int)
        if let s = decoded[level] { slot = s } else {
            // Square levels have a known size; others grow to the largest record seen.
            let side = stored
            let bytes = manifest.shape.square ? side * side * channels : 4 * side * side * channels
            slot = (.allocate(byteCount: bytes, alignment: 64), bytes)
            decoded[level] = slot
        }
        var header = try session.header(index: index, level: level, ifLargerThan: slot.capacity)
        if let h = header, h.pixelCount > slot.capacity {
            slot.pointer.deallocate()
            slot = (.allocate(byteCount: h.pixelCount, alignment: 64), h.pixelCount)
            decoded[level] = slot
        }
        header = try session.read(index: index, level: level, into: UnsafeMutableRawBufferPointer(start: slot.pointer, count: slot.capacity))
        let h = header!
        guard min(h.width, h.height) == stored, !manifest.shape.square || h.width == h.height else {
            throw CacheError.corruptRecord(shard: shard, index: index, level: level,
                                           reason: "header says \(h.width)x\(h.height), the manifest's short side is \(stored)")
        }
        return Image(pixels: UnsafePointer(slot.pointer.assumingMemoryBound(to: UInt8.self)), width: h.width, height: h.height)
    }

    /// Decodes `index` at every level in `levels`; under `substitute`, moves on to the next
    /// readable sample when a record is corrupt or missing.
    private func load(index: Int, levels: [Int]) throws -> (index: Int, images: [Image], substituted: Bool) {
        let n = manifest.sampleCount
        var candidate = index
        for _ in 0..<n {
            do {
                return (candidate, try levels.map { try decode(index: candidate, level: $0) }, candidate != index)
            } catch let error as CacheError {
                let fault: (shard: Int, level: Int, reason: String)
                switch error {
                case .corruptRecord(let shard, _, let level, let reason): fault = (shard, level, reason)
                case .missingRecord(let shard, _, let level): fault = (shard, level, "missing")
                default: throw LoaderError.cache(error)
                }
                guard loader.configuration.corruptRecords == .substitute else { throw LoaderError.cache(error) }
                let next = (candidate + 1) % n
                loader.record(Substitution(index: candidate, level: fault.level, shard: fault.shard, reason: fault.reason, replacement: next))
                candidate = next
            }
        }
        throw LoaderError.nothingReadable(index: index, level: levels.first ?? 0)
    }

    /// Ends the session's reads (a remote cache's shards can then be closed).
    func endReads() { session.endReads() }

    func fill(_ storage: BatchStorage, epoch: Int, step: Int, plan: StepPlan, order: [Int32]) throws {
        let config = loader.configuration
        let positions = Sampler.positions(cursor: plan.cursor, batchSize: plan.batchSize, rank: config.rank,
                                          worldSize: config.worldSize, available: plan.globalImages)
        let dup = plan.duplicates
        let count = positions.count * dup
        storage.prepare(plan: plan, epoch: epoch, step: step, count: count, channels: channels, format: config.output)
        let levels = plan.sizes.map { loader.sourceLevel(for: $0) }
        var distinct: [Int] = []
        for l in levels where !distinct.contains(l) { distinct.append(l) }
        let source = levels.map { distinct.firstIndex(of: $0)! }  // view → decoded image
        let augmentation = loader.augmentation
        for (i, position) in positions.enumerated() {
            let (index, images, substituted) = try load(index: Int(order[position]), levels: distinct)
            if substituted { storage.substitutions += dup }
            let label = loader.labels[index]
            let first = images[0]
            for d in 0..<dup {
                var rng = SplitMix64(seed: RandomKey.mix(config.seed, UInt64(epoch), UInt64(position), UInt64(d), RandomKey.augmentation))
                var box = augmentation.box(width: first.width, height: first.height, referenceSize: reference, rng: &rng)
                let slot = i * dup + d
                for (v, size) in plan.sizes.enumerated() {
                    if v > 0 && augmentation.flip && augmentation.independentFlips { box.flip = rng.nextUnit() < 0.5 }
                    let image = images[source[v]]
                    if config.output.isFloat {
                        // NCHW: a sample's planes side by side; CNHW: its plane k in channel k's block.
                        let plane = size * size, channelMajor = config.output == .float32ChannelMajor
                        let dst = storage.views[v].pointer.assumingMemoryBound(to: Float.self) + slot * (channelMajor ? plane : channels * plane)
                        resampler.renderPlanes(image.pixels, width: image.width, height: image.height, channels: channels, box: box, size: size,
                                               scale: loader.normalizeScale, offset: loader.normalizeOffset, lut: lut, into: dst,
                                               planeStride: channelMajor ? count * plane : plane)
                    } else {
                        // NHWC: a sample's bytes side by side.
                        let dst = storage.views[v].pointer.assumingMemoryBound(to: UInt8.self) + slot * size * size * channels
                        resampler.renderBytes(image.pixels, width: image.width, height: image.height, channels: channels, box: box, size: size, into: dst)
                    }
                }
                storage.labels.append(label)
                storage.indices.append(index)
            }
        }
    }
}
