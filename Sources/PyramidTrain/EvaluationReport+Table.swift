import Foundation

/// Text forms of evaluation reports: one run's table, several runs side by side, a Markdown table.
extension EvaluationReport {
    /// A plain-text table.
    public var table: String {
        var out = "run \(run) (\(checkpoint), \(epochsDone) epochs, \(schedule)); test cache \(testCache)\n"
        out += String(format: "training forward MACs: %.3g\n", trainingMacs)
        out += "  size    top-1    top-5   MMACs/image  BatchNorm"
        if calibrated != nil { out += "                 calibrated top-1" }
        out += "\n"
        for (i, r) in results.enumerated() {
            let bn = r.batchNorm.count < 24 ? r.batchNorm + String(repeating: " ", count: 24 - r.batchNorm.count) : r.batchNorm
            out += String(format: "  %4d  %6.2f%%  %6.2f%%  %12.2f  ", r.size, 100 * r.top1, 100 * r.top5, Double(r.macs) / 1e6) + bn
            if let c = calibrated?[i] { out += String(format: "  %6.2f%%", 100 * c.top1) }
            out += "\n"
        }
        if let a = alpha { out += "alpha  " + a.map { String(format: "%.3f", $0) }.joined(separator: " ") + "\n" }
        if let e1 = ensembleTop1, let e5 = ensembleTop5 { out += String(format: "ensemble  top-1 %.2f%%  top-5 %.2f%%\n", 100 * e1, 100 * e5) }
        return out
    }

    /// One Markdown row per run (and one more for its calibrated BatchNorm): top-1 per test size,
    /// the RS-Nets ensemble and α, training MACs relative to the first run, and wall time.
    public static func markdown(_ reports: [EvaluationReport], names: [String]) -> String {
        let sizes = reports[0].results.map(\.size)
        var out = "| run | schedule | " + sizes.map { "\($0) px" }.joined(separator: " | ") + " | ensemble | α (largest size first) | training MACs | time |\n"
        out += "|---|---|" + String(repeating: "---:|", count: sizes.count) + "---:|---|---:|---:|\n"
        let base = max(reports[0].trainingMacs, 1)
        for (name, r) in zip(names, reports) {
            let macs = String(format: "%.3g (%.2fx)", r.trainingMacs, r.trainingMacs / base)
            let time = String(format: "%.0f s", r.trainingSeconds)
            let ensemble = r.ensembleTop1.map { String(format: "%.2f", 100 * $0) } ?? ""
            let alpha = r.alpha.map { $0.map { String(format: "%.2f", $0) }.joined(separator: ", ") } ?? ""
            func row(_ label: String, _ results: [Evaluator.Result]) -> String {
                "| \(label) | `\(r.schedule)` | " + results.map { String(format: "%.2f", 100 * $0.top1) }.joined(separator: " | ")
                    + " | \(ensemble) | \(alpha) | \(macs) | \(time) |\n"
            }
            out += row(name, r.results)
            if let c = r.calibrated { out += row("\(name), BN calibrated (\(c.first?.calibrationBatches ?? 0) batches)", c) }
        }
        return out
    }

    /// Runs side by side: top-1 per test size, then what each run's training cost.
    public static func comparison(_ reports: [EvaluationReport], names: [String]) -> String {
        let width = max(19, names.map(\.count).max()! + 2)
        func cell(_ t: String) -> String { String(repeating: " ", count: max(0, width - t.count)) + t }
        var out = "top-1 by test size\n" + "  size  MMACs/image" + names.map(cell).joined() + "\n"
        for (i, r) in reports[0].results.enumerated() {
            out += String(format: "  %4d  %11.1f", r.size, Double(r.macs) / 1e6)
            out += reports.map { cell(String(format: "%.2f%%", 100 * $0.results[i].top1)) }.joined() + "\n"
        }
        let base = reports[0].trainingMacs
        out += "  training MACs    " + reports.map { cell(String(format: "%.3g (%.2fx)", $0.trainingMacs, $0.trainingMacs / max(base, 1))) }.joined() + "\n"
        out += "  training time    " + reports.map { cell(String(format: "%.0f s", $0.trainingSeconds)) }.joined() + "\n"
        return out
    }
}
