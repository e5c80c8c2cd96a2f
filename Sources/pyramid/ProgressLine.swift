import Foundation

/// A one-line progress display on standard error: count, rate, ETA. Silent when standard error is
/// not a terminal or when asked to be quiet. Under mpirun (`periodicLines`), where standard error is
/// a pipe to `mpirun` whether or not a person watches it, a plain line every 10 seconds instead.
final class ProgressLine {
    let enabled: Bool
    let periodicLines: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false
    private var lastForcedDone = -1

    init(quiet: Bool, periodicLines: Bool = false) {
        enabled = !quiet && (periodicLines || isatty(2) != 0)
        self.periodicLines = periodicLines
    }

    /// Redraws at most ten times a second (every 10 s in periodic lines), and always when `force`.
    func update(_ label: String, done: Int, total: Int, doneThisRun: Int? = nil, extra: String = "", force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        let forced = force && !(periodicLines && done == lastForcedDone)  // one forced line per count in a log
        guard forced || now.timeIntervalSince(lastDraw) >= (periodicLines ? 10 : 0.1) else { return }
        if force { lastForcedDone = done }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 1e-6)
        let rate = Double(doneThisRun ?? done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let percent = total > 0 ? 100 * done / total : 100
        var line = "\(label) \(done)/\(total) \(percent)%  \(Self.rate(rate))/s  ETA \(Self.duration(eta))"
        if !extra.isEmpty { line += "  " + extra }
        if periodicLines {
            FileHandle.standardError.write(Data((line + "\n").utf8))
            return
        }
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
