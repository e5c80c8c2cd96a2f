import ArgumentParser
import Foundation

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A one-line progress display on standard error: count, rate, ETA. Silent when standard error is
/// not a terminal or when asked to be quiet.
final class ProgressLine {
    let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(quiet: Bool) { enabled = !quiet && isatty(2) != 0 }

    /// Redraws at most ten times a second, and always when `force`.
    func update(_ label: String, done: Int, total: Int, doneThisRun: Int? = nil, extra: String = "", force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(doneThisRun ?? done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let percent = total > 0 ? 100 * done / total : 100
        var line = "\(label) \(done)/\(total) \(percent)%  \(Self.rate(rate))/s  ETA \(Self.duration(eta))"
        if !extra.isEmpty { line += "  " + extra }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    /// Ends the line so later output starts on its own line.
    func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }

    static func rate(_ r: Double) -> String { r >= 100 ? String(Int(r)) : String(format: "%.1f", r) }
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// Set by SIGINT; long commands poll it and stop cleanly.
nonisolated(unsafe) var interruptRequested: Int32 = 0

/// Installs a SIGINT handler that asks long work to stop at its next safe point.
/// A second SIGINT exits at once.
/// SIGINT is also unblocked: a parent (a test runner, a job launcher) may have left it blocked, and
/// worker threads inherit the mask of the thread that starts them.
func installInterruptHandler() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    signal(SIGINT) { _ in
        if interruptRequested != 0 { _exit(Failure.Kind.interrupted.exitCode) }
        interruptRequested = 1
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

/// Prints a `--json` result: one Codable value, keys sorted.
func printJSON<T: Encodable>(_ value: T, pretty: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
