import ArgumentParser
import Foundation

@main
struct Pyramid: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "pyramid",
        abstract: "Multi-resolution image caches for CNN training (TRD, MixSize, RS-Nets).",
        discussion: """
            Decode a dataset once with libvips, store one crop of every image at several resolutions in \
            LMDB shards (zstd records), then look at and check the cache.
            """,
        version: version,
        subcommands: [BuildCommand.self, InspectCommand.self, VerifyCommand.self, ExportCommand.self, PlanCommand.self, TrainCommand.self, EvalCommand.self, BenchCommand.self])
}
