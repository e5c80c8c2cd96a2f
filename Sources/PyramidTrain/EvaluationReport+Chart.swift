import Foundation

/// SVG charts of top-1 against test size.
extension EvaluationReport {
    /// An SVG line chart of top-1 against test size (and calibrated top-1 when present).
    public var svg: String {
        var series: [(String, [Evaluator.Result])] = [(alpha == nil ? "running statistics" : "per-size banks", results)]
        if let c = calibrated { series.append(("calibrated", c)) }
        return Self.chart(title: "top-1 by test size: \(schedule)", series: series,
                          reference: ensembleTop1.map { ("ensemble (training sizes)", $0) })
    }

    /// A chart of several series of results against test size, with an optional horizontal line.
    public static func chart(title: String, series: [(String, [Evaluator.Result])], reference: (String, Double)? = nil) -> String {
        // The plot is 600 px wide; the legend is a column to its right, as wide as its longest label.
        let labels = series.map(\.0) + (reference.map { [$0.0] } ?? [])
        let legend = 40 + 7.0 * Double(labels.map(\.count).max() ?? 0)
        let plotWidth = 600.0, w = plotWidth + legend, left = 60.0, right = 20.0, top = 30.0, bottom = 50.0
        let h = max(360.0, top + 18 * Double(labels.count) + 20)
        let allResults = series.flatMap(\.1)
        let sizes = allResults.map { Double($0.size) }
        let all = allResults.map(\.top1) + (reference.map { [$0.1] } ?? [])
        // The y axis runs between round numbers that enclose the data, with a tick at each.
        let axis = AxisTicks(from: 100 * (all.min() ?? 0), to: 100 * (all.max() ?? 1), within: 0...100)
        let lo = axis.lower / 100, hi = axis.upper / 100
        let xmin = sizes.min() ?? 0, xmax = max(sizes.max() ?? 1, xmin + 1)
        let plotRight = plotWidth - right
        func x(_ v: Double) -> Double { left + (v - xmin) / (xmax - xmin) * (plotRight - left) }
        func y(_ v: Double) -> Double { top + (hi - v) / max(hi - lo, 1e-6) * (h - top - bottom) }
        func esc(_ t: String) -> String { t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"18\">\(esc(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(plotRight)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for v in Set(sizes).sorted() { s += "<text x=\"\(x(v) - 8)\" y=\"\(h - bottom + 18)\">\(Int(v))</text>\n" }
        for tick in axis.ticks {
            let v = tick / 100
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, y(v) + 4, axis.label(tick) + "%")
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y(v), plotRight, y(v))
        }
        s += String(format: "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" text-anchor=\"middle\">top-1</text>\n", (top + h - bottom) / 2, (top + h - bottom) / 2)
        s += "<text x=\"\(plotWidth / 2 - 30)\" y=\"\(h - 12)\">test size (px)</text>\n"
        // Ten colours, then the same colours dashed.
        let colors = ["#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#2ca02c"]
        func legendEntry(_ row: Int, _ label: String, _ color: String, _ dash: String) -> String {
            let ly = top + 18 * Double(row) + 6
            return String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"2\"%@/>\n",
                          plotWidth, ly, plotWidth + 24, ly, color as NSString, dash as NSString)
                + "<text x=\"\(plotWidth + 30)\" y=\"\(ly + 4)\" fill=\"\(color)\">\(esc(label))</text>\n"
        }
        for (row, (label, rs)) in series.enumerated() {
            let color = colors[row % colors.count], dash = row >= colors.count ? " stroke-dasharray=\"6 3\"" : ""
            let pts = rs.sorted { $0.size < $1.size }.map { String(format: "%.1f,%.1f", x(Double($0.size)), y($0.top1)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(pts)\"/>\n"
            for r in rs { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", x(Double(r.size)), y(r.top1), color as NSString) }
            s += legendEntry(row, label, color, dash)
        }
        if let (label, e) = reference {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"6 4\"/>\n", left, y(e), plotRight, y(e))
            s += legendEntry(series.count, label, "#2ca02c", " stroke-dasharray=\"6 4\"")
        }
        s += "</svg>\n"
        return s
    }
}

/// Round tick values for a chart axis, as matplotlib, ggplot and Vega choose them: a step of 1, 2,
/// 2.5 or 5 times a power of ten giving about five intervals over the data (padded by 5% of its
/// range on each side), and an axis that starts and ends on a tick. 7.3…86.4 gives 0…100 by 20;
/// 91.2…93.4 gives 91…94 by 0.5.
public struct AxisTicks: Equatable, Sendable {
    public var lower: Double
    public var upper: Double
    public var step: Double

    /// - Parameters:
    ///   - within: the values the axis may not leave (0…100 for a percentage).
    public init(from low: Double, to high: Double, within bounds: ClosedRange<Double>? = nil, intervals: Double = 5) {
        var lo = min(low, high), hi = max(low, high)
        let pad = hi > lo ? 0.05 * (hi - lo) : max(1, abs(hi) * 0.05)
        lo -= pad; hi += pad
        if let bounds { lo = max(lo, bounds.lowerBound); hi = min(hi, bounds.upperBound) }
        let raw = (hi - lo) / intervals
        let power = pow(10, (log10(raw)).rounded(.down))
        step = [1, 2, 2.5, 5, 10].map { $0 * power }.first { $0 >= raw * (1 - 1e-9) } ?? 10 * power
        lower = (lo / step + 1e-9).rounded(.down) * step
        upper = (hi / step - 1e-9).rounded(.up) * step
        if let bounds { lower = max(lower, bounds.lowerBound); upper = min(upper, bounds.upperBound) }
    }

    /// Every tick from ``lower`` to ``upper``.
    public var ticks: [Double] {
        let n = Int(((upper - lower) / step).rounded())
        return (0...max(n, 0)).map { lower + Double($0) * step }
    }

    /// Decimals that show every tick exactly (0 for a step of 20, 1 for 0.5, 2 for 0.25).
    public var decimals: Int {
        (0...6).first { d in let scaled = step * pow(10, Double(d)); return abs(scaled - scaled.rounded()) < 1e-6 } ?? 6
    }

    /// `value` written with ``decimals`` decimals.
    public func label(_ value: Double) -> String { String(format: "%.\(decimals)f", value) }
}
