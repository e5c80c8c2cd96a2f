import Foundation
import PyramidTrain

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints a line of a command's messages: to standard output, or to standard error when
/// `aside` (the command's own result is going to standard output: `-o -`, `/dev/stdout`).
func say(_ text: String, terminator: String = "\n", aside: Bool) {
    if aside { FileHandle.standardError.write(Data((text + terminator).utf8)) } else { print(text, terminator: terminator) }
}

/// Prints a `--json` result: one Codable value, keys sorted.
func printJSON<T: Encodable>(_ value: T, pretty: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Reports on standard error why `PYRAMID_KERNELS` or `PYRAMID_GEMM` could not be honoured (the
/// library only says so): called by the commands that train or benchmark the trainer.
func reportKernelChoice() {
    for warning in [InstructionSet.warning, GemmBackend.warning].compactMap({ $0 }) { printError(warning) }
}
