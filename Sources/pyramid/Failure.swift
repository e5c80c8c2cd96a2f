import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache
import PyramidLoader
import PyramidTrain

/// How a command that did not succeed ends: one message on standard error and an exit status.
///
/// This is the one place where the libraries' errors become what a person reads, the way
/// swift-argument-parser's `MessageInfo` does it for parsing errors: each module's error enum maps
/// to a ``Kind`` and a line, the library's setting names become the flags that set them, and the
/// remedies that are commands or flags (`--resume`, `--overwrite`) are added here, not in the libraries.
struct Failure: Error {
    enum Kind {
        /// A flag or argument is wrong: exit 64 (EX_USAGE), with the command's usage.
        case usage
        /// The work failed: exit 1.
        case failure
        /// Stopped on request (Ctrl-C) at a safe point: exit 130.
        case interrupted

        var exitCode: Int32 {
            switch self { case .usage: 64; case .failure: 1; case .interrupted: 130 }
        }
    }

    var kind: Kind
    var message: String
    /// Every rank of a distributed run meets this failure at the same point (a training run stopped
    /// on request stops all ranks at one step; a rank told that rank 0 failed): the ranks end
    /// together, rank 0 printing, instead of aborting the job.
    var onEveryRank = false

    static func usage(_ message: String) -> Failure { Failure(kind: .usage, message: message) }
    static func failure(_ message: String) -> Failure { Failure(kind: .failure, message: message) }

    /// A usage failure of one flag: `--flag: reason`.
    static func flag(_ setting: String, _ reason: String) -> Failure { .usage("\(Flags.name(of: setting)): \(reason)") }
}

extension Failure {
    /// The failure that `error` means, or nil for swift-argument-parser's own errors and exit codes
    /// (help and version requests, `ExitCode`, `CleanExit`) and anything unforeseen, which
    /// `exit(withError:)` reports.
    init?(_ error: Error) {
        switch error {
        case let e as Failure: self = e
        case BuildError.peerFailed:
            // Rank 0 reports why (and stops the job); this rank ends without a message of its own.
            self = Failure(kind: .failure, message: "", onEveryRank: true)
        case let e as BuildError: self = Failure(e)
        case let e as CacheError: self = Failure(e)
        case let e as LoaderError: self = Failure(e)
        case let e as TrainError: self = Failure(e)
        case let e as RemoteError: self = Failure(e)
        case let e as ValidationError: self = .usage(e.message)
        case is ExitCode, is CleanExit: return nil
        case let e as CocoaError:
            self = .failure([e.userInfo[NSFilePathErrorKey] as? String, e.localizedDescription].compactMap { $0 }.joined(separator: ": "))
        default: return nil  // swift-argument-parser's own (help, version, parse errors) and the unforeseen
        }
    }

    init(_ error: BuildError) {
        switch error {
        case .invalidOption(let name, let reason): self = .flag(name, reason)
        case .interrupted(let committed, let total, let output):
            self = Failure(kind: .interrupted, message: "interrupted after \(committed) of \(total) source items; run the same command with --resume to finish \(output)")
        case .occupiedOutput(let path, let content):
            let remedy: String
            switch content {
            case .foreignFiles: remedy = "choose a new --out"
            case .completeCache: remedy = "--overwrite replaces it"
            case .interruptedBuild: remedy = "--resume finishes it, --overwrite starts again"
            case .unreadableState: remedy = "--overwrite starts again"
            }
            self = .failure("\(path): \(content) (\(remedy))")
        case .resumeMismatch:
            self = .failure("\(error) (use the same options, or --overwrite to start again)")
        case .badInput(let path, let reason):
            self = .failure("\(path): \(reason) (--strict stops at the first bad input)")
        default: self = .failure(error.description)
        }
    }

    init(_ error: CacheError) {
        switch error {
        case .missingManifest(let path):
            // Only an interrupted build (its state file present) can be finished with --resume.
            let interrupted = FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(Builder.stateFileName))
            self = .failure(interrupted
                ? "\(path): no manifest.json: an interrupted build; run the same pyramid build command with --resume to finish it"
                : "\(error)")
        case .diskFull:
            self = .failure("\(error); nothing written so far is lost: free some space, then run the same command again (with --resume for a build or a training run)")
        default: self = .failure(error.description)
        }
    }

    init(_ error: LoaderError) {
        switch error {
        case .invalidSchedule: self = .flag("schedule", error.description)
        case .invalidAugmentation: self = .flag("augment", error.description)
        case .unservableSize: self = .usage(error.description)
        case .invalidLabel: self = .failure("\(error) (pyramid verify CACHE lists every bad label)")
        case .invalidConfiguration(let key, let reason): self = .flag(key.rawValue, reason)
        default: self = .failure(error.description)
        }
    }

    init(_ error: RemoteError) {
        switch error {
        case .invalidLocation: self = .usage(error.description)
        default: self = .failure(error.description)
        }
    }

    init(_ error: TrainError) {
        switch error {
        case .unknownArchitecture: self = .flag("architecture", error.description)
        case .unknownShortcut: self = .flag("shortcut", error.description)
        case .invalidSetting(let setting, let reason): self = .flag(setting, reason)
        case .incompatibleCache, .noRun: self = .usage(error.description)
        case .nonFinite:
            // The loss is summed over the ranks first, so every rank stops at the same step.
            self = Failure(kind: .failure, message: error.description, onEveryRank: true)
        case .interrupted(let directory, let epoch, let cursor):
            self = Failure(kind: .interrupted, message: "interrupted in epoch \(epoch) at sample \(cursor); checkpoint written. Continue with: pyramid train --resume \(directory)",
                           onEveryRank: true)
        default: self = .failure(error.description)
        }
    }

    /// Prints the failure (with `command`'s usage for a usage failure) and exits with its status.
    func exit(command: ParsableCommand.Type) -> Never {
        var text = kind == .interrupted ? "pyramid \(Flags.path(of: command)): \(message)" : "Error: \(message)"
        if kind == .usage {
            text += "\nUsage: \(Pyramid.usageString(for: command))\n  See 'pyramid \(Flags.path(of: command)) --help' for more information."
        }
        if onEveryRank {
            if Processes.launchRank == 0 { printError(text) }
            Processes.finish()
            Foundation.exit(kind.exitCode)
        }
        Processes.fail(text, code: kind.exitCode)
    }
}
