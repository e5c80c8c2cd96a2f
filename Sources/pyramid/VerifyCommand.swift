import ArgumentParser
import Foundation
import PyramidCache

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Read every record of every level and check checksums, headers and counts.",
        discussion: "Exit status 0 when every record is sound; 1 with one line per bad record (shard, index, level, reason).")

    @Argument(help: "The cache directory.")
    var cache: String

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let reader = try CacheReader(url: URL(fileURLWithPath: cache))
        let verifier = CacheVerifier(reader: reader)
        let progress = ProgressLine(quiet: quiet || json)
        let total = verifier.totalRecords
        let started = Date()
        let report = try verifier.verify { progress.update("verify", done: $0, total: total) }
        progress.finish()
        let seconds = Date().timeIntervalSince(started)
        if json {
            let encoder = JSONEncoder(); encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else if report.ok {
            print(String(format: "ok: %d records in %d levels + labels checked in %.1f s", report.recordsChecked, reader.manifest.levels.count, seconds))
        } else {
            for p in report.problems.prefix(100) { print("bad: \(p)") }
            if report.problems.count > 100 { print("… and \(report.problems.count - 100) more") }
            print("\(report.problems.count) bad record\(report.problems.count == 1 ? "" : "s") of \(report.recordsChecked) checked")
        }
        if !report.ok { throw ExitCode(1) }
    }
}
