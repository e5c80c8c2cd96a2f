import Foundation
import Testing
@testable import PyramidTrain

/// The charts' y axes run between round numbers with a tick at each.
@Suite struct ChartTests {
    @Test(arguments: [
        (7.3, 86.4, 0.0, 100.0, 20.0),
        (91.2, 93.4, 91.0, 94.0, 0.5),
        (14.8, 19.5, 14.0, 20.0, 2.0),
        (0.0, 100.0, 0.0, 100.0, 20.0),
        (40.0, 40.0, 38.0, 42.0, 1.0),
        (92.11, 92.49, 92.0, 92.6, 0.1),
    ])
    func ticksAreRoundAndEncloseTheData(low: Double, high: Double, lower: Double, upper: Double, step: Double) {
        let axis = AxisTicks(from: low, to: high, within: 0...100)
        #expect(abs(axis.lower - lower) < 1e-9 && abs(axis.upper - upper) < 1e-9 && abs(axis.step - step) < 1e-9, "\(low)…\(high): \(axis)")
        #expect(axis.lower <= low && axis.upper >= high)
        for tick in axis.ticks {
            // A multiple of the step, and the step is 1, 2, 2.5 or 5 times a power of ten.
            #expect(abs((tick / axis.step).rounded() - tick / axis.step) < 1e-6)
        }
        let mantissa = axis.step / pow(10, log10(axis.step).rounded(.down))
        #expect([1, 2, 2.5, 5].contains { abs($0 - mantissa) < 1e-9 }, "step \(axis.step)")
        #expect((4...8).contains(axis.ticks.count), "\(axis.ticks)")
    }

    @Test func labelsShowEachTickExactly() {
        #expect(AxisTicks(from: 7.3, to: 86.4, within: 0...100).ticks.map { AxisTicks(from: 7.3, to: 86.4, within: 0...100).label($0) }
                == ["0", "20", "40", "60", "80", "100"])
        let narrow = AxisTicks(from: 91.2, to: 93.4, within: 0...100)
        #expect(narrow.ticks.map(narrow.label) == ["91.0", "91.5", "92.0", "92.5", "93.0", "93.5", "94.0"])
    }

    @Test func theChartLabelsItsTicksNotTheDataExtremes() {
        let results = [(12, 0.073), (20, 0.5), (28, 0.864)].map { Evaluator.Result(size: $0.0, top1: $0.1, top5: 1, samples: 1, macs: 1, batchNorm: "running", calibrationBatches: 0) }
        let svg = EvaluationReport.chart(title: "t", series: [("run", results)])
        for label in ["0%", "20%", "40%", "60%", "80%", "100%"] { #expect(svg.contains(">\(label)</text>"), "\(label)") }
        #expect(!svg.contains("7.3%") && !svg.contains("86.4%"))
    }
}
