import Foundation
import PyramidCache

/// The end of a build: the report, the manifest (written last) and the state file removed.
extension Builder {
    func finish(progress: [ShardProgress], skippedItems: [SkippedItem], warnedItems: [SkippedItem], state: BuildState, seconds: Double,
                dictionarySeconds: Double, itemsThisRun: Int, resumed: Bool, processes: Int) throws -> BuildReport {
        let skipped = catalog.refused + skippedItems, warned = warnedItems
        var shards: [Manifest.Shard] = []
        var first = 0
        for (k, p) in progress.enumerated() {
            // Size and digest of the finished file, for remote copies to be checked against.
            let name = shardDirectoryName(k)
            let directory = output.appendingPathComponent(name)
            if options.formatVersion >= 3 {
                var files: [String: Manifest.FileDigest] = [:]
                for file in [Manifest.metaFileName] + levels.map(Manifest.levelFileName) {
                    files[file] = Manifest.FileDigest(ofFile: directory.appendingPathComponent(file).path)
                }
                shards.append(Manifest.Shard(name: name, firstIndex: first, count: p.count, files: files))
            } else {
                let file = Manifest.FileDigest(ofFile: directory.appendingPathComponent("data.mdb").path)
                shards.append(Manifest.Shard(name: name, firstIndex: first, count: p.count, file: file))
            }
            first += p.count
        }
        let pixels = Double(progress.reduce(UInt64(0)) { $0 + $1.pixels })
        var mean: [Double] = [], std: [Double] = []
        for c in 0..<channels {
            let s = Double(progress.reduce(UInt64(0)) { $0 + $1.sums[c] })
            let q = Double(progress.reduce(UInt64(0)) { $0 + $1.squares[c] })
            let m = pixels > 0 ? s / pixels : 0
            mean.append(m / 255)
            std.append((max(0, q / max(pixels, 1) - m * m)).squareRoot() / 255)
        }
        var histogram = Array(repeating: 0, count: catalog.classes.count)
        for p in progress { for (i, n) in p.labelCounts.enumerated() where i < histogram.count { histogram[i] += n } }
        let count = first
        if count == 0 { throw BuildError.empty(path: catalog.source.path) }
        var levelEntries: [Manifest.Level] = []
        var levelReports: [BuildReport.LevelReport] = []
        for (l, size) in levels.enumerated() {
            let bytes = progress.reduce(0) { $0 + $1.bytes[l] }
            let raw = progress.reduce(0) { $0 + $1.rawBytes[l] }
            let dict = state.dictionaries[String(size)]
            levelEntries.append(Manifest.Level(size: size, storedShortSide: options.storedSide(size), bytes: bytes, rawBytes: raw,
                                               dictionary: dict, codec: codecs[l]))
            levelReports.append(.init(size: size, storedShortSide: options.storedSide(size), codec: codecs[l].description, bytes: bytes, rawBytes: raw,
                                      bytesPerSample: Double(bytes) / Double(count), compressionRatio: Double(raw) / Double(max(bytes, 1)),
                                      dictionaryBytes: dict.flatMap { Data(base64Encoded: $0)?.count } ?? 0))
        }
        let total = state.priorSeconds + seconds
        let report = BuildReport(
            source: catalog.source.path, format: catalog.source.format, output: output.path, sourceItems: catalog.count,
            samplesWritten: count, skippedCount: skipped.count, skipped: skipped, warnings: warned, levels: levelReports,
            workers: options.workers, shards: options.shards, processes: processes, seconds: seconds, totalSeconds: total,
            dictionarySeconds: dictionarySeconds, itemsPerSecond: Double(itemsThisRun) / max(seconds, 1e-9), resumed: resumed)
        let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(report), to: output.appendingPathComponent(BuildReport.fileName))

        var recorded = recordedOptions
        recorded["buildID"] = state.buildID
        let formatter = ISO8601DateFormatter()
        var manifest = Manifest(
            toolVersion: toolVersion, createdAt: formatter.string(from: Date()), source: catalog.source,
            classes: catalog.classes, sampleCount: count, channels: channels, levels: levelEntries,
            shape: .init(crop: options.crop.rawValue, margin: options.margin),
            codec: .init(level: options.zstdLevel, filter: options.filter.name), shards: shards, mean: mean, std: std,
            labelHistogram: histogram, skipped: skipped.count, buildOptions: recorded, buildSeconds: total)
        manifest.formatVersion = options.formatVersion
        try manifest.write(to: output)
        try? FileManager.default.removeItem(at: output.appendingPathComponent(BuildState.fileName))
        return report
    }
}
