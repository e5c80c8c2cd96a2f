import ArgumentParser
import Foundation
import PyramidCache

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a cache: samples, classes, levels, bytes per level, compression, mean/std, build options.")

    @Argument(help: "The cache: a directory or s3://bucket/prefix.")
    var cache: String

    @Flag(help: "Print the manifest as JSON instead.")
    var json = false

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let reader = try CacheReader.open(cache, remote: remoteOptions)
        let m = reader.manifest
        if json {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(m), as: UTF8.self))
            return
        }
        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
        var out = "cache        \(cache)\n"
        out += "format       version \(m.formatVersion), built by pyramid \(m.toolVersion) at \(m.createdAt)\n"
        switch m.formatVersion {
        case 3...:
            out += "layout       a file per level in each shard: a run reads, fetches and keeps only the levels it uses\n"
            if m.heldLevels.count < m.levels.count {
                out += "held levels  \(m.heldLevels.map(String.init).joined(separator: ",")) (a publication of some levels; the others are not here)\n"
            }
        case 2:
            out += "layout       one file per shard (every level together): every read and download moves every level;\n"
                + "             pyramid upgrade \(cache) --out NEW converts it to version 3 (a file per level) without decoding\n"
        default:
            out += "layout       one file per shard, records without checksums: rebuild with pyramid build for version 3\n"
        }
        out += "source       \(m.source.format) \(m.source.path)\(m.source.split.map { " (\($0))" } ?? "")\n"
        out += "samples      \(m.sampleCount) in \(m.shards.count) shard\(m.shards.count == 1 ? "" : "s"), \(m.skipped) skipped at build\n"
        let shownClasses = m.classes.prefix(12).enumerated().map { "\($1) \(m.labelHistogram[safe: $0] ?? 0)" }.joined(separator: ", ")
        out += "classes      \(m.classes.count): \(shownClasses)\(m.classes.count > 12 ? ", …" : "")\n"
        out += "pixels       \(m.channels == 1 ? "grey" : "sRGB"), crop \(m.shape.crop), margin \(m.shape.margin)\n"
        let lossless = m.levels.contains { $0.levelCodec == .zstd }
        out += "codec        " + (lossless ? "zstd levels: zstd level \(m.codec.level), filter \(m.codec.filter); " : "")
            + (m.formatVersion >= 2 ? "XXH3-64 checksum per record\n" : "zstd checksum per record\n")
        out += "mean         \(m.mean.map { String(format: "%.4f", $0) }.joined(separator: " "))\n"
        out += "std          \(m.std.map { String(format: "%.4f", $0) }.joined(separator: " "))\n"
        out += "levels\n"
        out += "   size  stored  codec          bytes   bytes/sample   ratio  dictionary\n"
        var totalBytes = 0, totalRaw = 0
        for l in m.levels {
            totalBytes += l.bytes; totalRaw += l.rawBytes
            let perSample = Double(l.bytes) / Double(max(m.sampleCount, 1))
            let ratio = Double(l.rawBytes) / Double(max(l.bytes, 1))
            let dict = l.dictionaryBytes.map { "\($0.count) B" } ?? "-"
            out += String(format: "  %5d  %6d  %-7@  %11@  %13.1f  %6.2f  %@\n", l.size, l.storedShortSide, l.levelCodec.description as NSString,
                          mib(l.bytes) as NSString, perSample, ratio, dict as NSString)
        }
        out += String(format: "  total                   %11@  %13.1f  %6.2f\n", mib(totalBytes) as NSString,
                      Double(totalBytes) / Double(max(m.sampleCount, 1)), Double(totalRaw) / Double(max(totalBytes, 1)))
        out += String(format: "build        %.1f s", m.buildSeconds)
        let shown = m.buildOptions.filter { $0.key != "buildID" && !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        out += "; " + shown.joined(separator: " ")
        print(out)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
