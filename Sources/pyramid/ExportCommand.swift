import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache
import PyramidLoader

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a sample, or a contact sheet of the first N samples at every level, as PNG.",
        discussion: """
            pyramid export CACHE --index 7 --level 14 -o seven.png
            pyramid export CACHE --grid 64 -o sheet.png
            pyramid export CACHE --grid 16 --views 28,20,14 --augment pad:2+flip -o views.png

            --grid N draws one row per sample, labelled with its index and class, and one column per \
            level, headed by its size; an output ending in .svg gives an SVG.

            --views renders what training is given instead of the stored levels: one column per \
            size, every size of a sample from the same crop box and flip, each from the smallest \
            stored level at least that size (the loader's resampler) — as a parallel (RS-Nets) step \
            sees the sample, or any step of a schedule at one of those sizes. The box of sample I \
            depends on --seed and I only, so --index I and --grid N show the same views.
            """)

    @Argument(help: "The cache: a directory or s3://bucket/prefix.")
    var cache: String

    @Option(parsing: .unconditional, help: "The sample index to export.")
    var index: Int?

    @Option(parsing: .unconditional, help: "The level to export (default: the largest).")
    var level: Int?

    @Option(parsing: .unconditional, help: "Contact sheet of the first N samples at every level.")
    var grid: Int?

    @Option(help: "Sizes to render each sample at, as training does (comma-separated), instead of the stored levels.")
    var views: String?

    @OptionGroup var augmentation: AugmentArgument
    /// `--augment`: the augmentation of `--views`.
    var augment: String? { augmentation.augment }

    @Option(parsing: .unconditional, help: "The seed of --views' crops and flips.")
    var seed: UInt64 = 0

    @Option(name: [.short, .customLong("output")], help: "The PNG file to write (a contact sheet ending in .svg is written as SVG); - (or /dev/stdout) writes it to standard output and the messages to standard error.")
    var output: String

    func validate() throws {
        if (index == nil) == (grid == nil) { throw ValidationError("give exactly one of --index I or --grid N") }
        if let grid, grid < 1 { throw ValidationError("--grid: must be at least 1") }
        if grid != nil && level != nil { throw ValidationError("--level goes with --index; --grid shows every level") }
        if views != nil && level != nil { throw ValidationError("--level shows a stored level; --views renders sizes instead: give one of them") }
        if views == nil && augment != nil { throw ValidationError("--augment goes with --views") }
        if let views {
            let sizes = try parseIntList(views, flag: "views")
            if let bad = sizes.first(where: { $0 < 1 }) { throw ValidationError("--views: \(bad) is not a size (expected e.g. 28,20,14)") }
        }
        if let augment { _ = try Augmentation.parse(augment) }
    }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let reader = try CacheReader.open(cache, remote: remoteOptions)
        if let views {
            let sizes = try parseIntList(views, flag: "views")
            let n = reader.manifest.sampleCount
            let first = index ?? 0
            guard first >= 0 && first < n else { throw ValidationError("--index: \(first) is outside the cache's \(n) samples") }
            let count = index == nil ? min(grid ?? 1, n) : 1
            let loader = try Loader(cache: reader, configuration: LoaderConfiguration(
                schedule: Parallel(sizes: sizes), batchSize: count, seed: seed, augmentation: try augment.map(Augmentation.parse),
                output: .uint8, workers: 1, shuffle: false, dropLast: false))
            var batches = try loader.batches(epoch: 0, from: first)
            guard let batch = try batches.next() else { throw ValidationError("--views: nothing to render") }
            let c = batch.channels
            let rows = (0..<batch.count).map { i in
                batch.sizes.map { s in
                    let all = batch.images(size: s).bytes
                    let stride = s * s * c
                    return CacheExport.SheetImage(width: s, height: s, pixels: Array(all[(i * stride)..<((i + 1) * stride)]))
                }
            }
            let labels = try reader.labels()
            let sheet = ContactSheet(
                title: "each row: one sample as training sees it at every size (\(loader.augmentation), seed \(seed))",
                columnTitles: batch.sizes.map { "\($0) px" },
                rowLabels: batch.indices.map { CacheExport.rowLabel(index: $0, label: labels[$0], classes: reader.manifest.classes) },
                rows: rows, channels: c)
            let (w, h) = try sheet.write(to: output)
            say("wrote \(output): \(rows.count) sample(s) from index \(first) at \(batch.sizes.map(String.init).joined(separator: ", ")) px "
                  + "(\(loader.augmentation), seed \(seed)), \(w)x\(h) px", aside: isStandardOutput(output))
        } else if let index {
            try CacheExport.exportSample(reader, index: index, level: level, to: output)
            say("wrote \(output): sample \(index) at level \(level ?? reader.manifest.levels[0].size)", aside: isStandardOutput(output))
        } else if let grid {
            let (w, h) = try CacheExport.exportGrid(reader, count: grid, to: output)
            say("wrote \(output): \(min(grid, reader.manifest.sampleCount)) samples x \(reader.manifest.levels.count) levels, \(w)x\(h) px", aside: isStandardOutput(output))
        }
    }
}
