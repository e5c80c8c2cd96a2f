import ArgumentParser
import PyramidCache
import Foundation

/// The tool's names for the libraries' settings.
enum Flags {
    /// The flag that sets a library setting (a `BuildOptions`, `LoaderConfiguration` or
    /// `RunConfiguration` property): its kebab-case name unless the tool calls it something else.
    static func name(of setting: String) -> String {
        let renamed = [
            "architecture": "model", "testCache": "test", "sharedBatchNorm": "shared-bn", "forcedBank": "bank",
            "batchSize": "batch", "learningRate": "lr", "codecs": "codec",
        ]
        if let flag = renamed[setting] { return "--" + flag }
        var flag = ""
        for c in setting {
            if c.isUppercase { flag += "-" + c.lowercased() } else { flag.append(c) }
        }
        return "--" + flag
    }

    /// The subcommand path of `command` below `pyramid` (`train`, `bench load`).
    static func path(of command: ParsableCommand.Type) -> String {
        func find(_ node: ParsableCommand.Type, _ trail: [String]) -> [String]? {
            if node == command { return trail }
            for sub in node.configuration.subcommands {
                if let found = find(sub, trail + [sub.configuration.commandName ?? "\(sub)"]) { return found }
            }
            return nil
        }
        return find(Pyramid.self, [])?.joined(separator: " ") ?? (command.configuration.commandName ?? "\(command)")
    }
}

/// Parses a comma-separated list of integers for the flag named `flag`.
func parseIntList(_ text: String, flag: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    var out: [Int] = []
    for p in parts {
        guard let v = Int(p) else { throw ValidationError("--\(flag): '\(p)' is not a whole number (expected e.g. 28,24,20)") }
        out.append(v)
    }
    return out
}

/// `--codec`: nil for `auto`, else the codecs as given (one, or one per level).
func parseCodecList(_ text: String) throws -> [LevelCodec]? {
    if text == "auto" { return nil }
    return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
        let name = part.trimmingCharacters(in: .whitespaces)
        guard let c = LevelCodec(name) else {
            throw ValidationError("--codec: '\(name)' is not a codec (auto, zstd, jpeg or jpeg:Q with Q in 1...100)")
        }
        return c
    }
}
