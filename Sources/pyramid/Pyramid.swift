import ArgumentParser
import Foundation
import PyramidCache

@main
struct Pyramid: ParsableCommand {
    static let version = pyramidVersion
    static let configuration = CommandConfiguration(
        commandName: "pyramid",
        abstract: "Multi-resolution image caches for CNN training (TRD, MixSize, RS-Nets).",
        discussion: """
            Decode a dataset once with libvips, store one crop of every image at several resolutions in \
            LMDB shards (zstd or JPEG records, checksummed), look at and check the cache, plan a resolution schedule (fixed, \
            TRD, MixSize, parallel/RS-Nets, progressive), train a ResNet from the cache on OpenBLAS and \
            evaluate it at any test size.
            """,
        version: version,
        subcommands: [BuildCommand.self, PushCommand.self, UpgradeCommand.self, InspectCommand.self, VerifyCommand.self, ExportCommand.self, PlanCommand.self, BatchesCommand.self, TrainCommand.self, EvalCommand.self, BenchCommand.self])

    /// Parses the command line and runs the command; every error of the run goes through
    /// ``Failure`` (one line, exit 64 usage, 1 failure, 130 interrupted).
    static func main() {
        // Arguments reach Swift as Strings, with bytes that are not UTF-8 replaced: a path with
        // such bytes would name another file. Refuse them before parsing.
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) == nil else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
            printError("Error: argument \(i) (\(String(decoding: bytes, as: UTF8.self))) is not valid UTF-8; rename the file or use a link with a UTF-8 name")
            Foundation.exit(64)
        }
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // Under mpirun every rank parses the same arguments: one message is enough.
            if Processes.launchRank != 0 { Foundation.exit(exitCode(for: error).rawValue) }
            exit(withError: error)
        }
        // Under mpirun only build, train and bench mpi are distributed; any other command runs once, on rank 0.
        if Processes.launchRank != 0 && !(command is BuildCommand || command is TrainCommand || command is BenchMPICommand) { Foundation.exit(0) }
        do {
            try command.run()
            Processes.finish()
        } catch {
            guard let failure = Failure(error) else { exit(withError: error) }
            failure.exit(command: type(of: command))
        }
    }
}
