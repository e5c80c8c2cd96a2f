import Foundation

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
