import Foundation
import PyramidCache
import PyramidLoader
import PyramidTestSupport
import Testing
@testable import PyramidTrain

/// Step parity with PyTorch: the trainer's own step (`Trainer.step`) replays the
/// training steps that `Tools/parity/step.py` ran in PyTorch 2.13 on the same network, weights and
/// batches, and must land on what PyTorch recorded to float32 rounding: the loss, every gradient as
/// the optimizer saw it, every updated parameter and every BatchNorm running statistic, over three
/// consecutive steps (so the Nesterov momentum buffers and the running norm of MixSize's gradient
/// smoothing count too). Weights and batches come from a counter-based hash both sides compute
/// bit for bit; the fixture holds PyTorch's results, so CI needs no PyTorch.
extension TrainerSuites {
@Suite(.serialized) struct ParityTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var name: String, kind: String, depth: Int, sizes: [Int], batches: [Int], steps: Int, lr: Float
            var smoothing: Bool?
        }
        struct TensorSpec: Decodable { var name: String, count: Int, bound: Double, offset: Double }
        struct Summary: Decodable { var norm: Double, dot: Double, values: [Double] }
        struct Step: Decodable { var loss: Double, grads: [Summary], values: [Summary], state: [Summary] }
        /// `steps` is PyTorch's float32 run, or with `float32Steps` its float64 run (the reference).
        struct Run: Decodable { var `case`: Case, tensors: [TensorSpec], steps: [Step], float32Steps: [Step]? }
        var torch: String
        var cases: [Run]
    }

    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/parity-steps.json")
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    /// `Tools/parity/step.py`'s `uniform`: a counter-based integer hash in [0, 1).
    static func uniform(stream: Int, count: Int) -> [Double] {
        let mask: UInt64 = 0xFFFF_FFFF
        let base = (UInt64(stream) &* 0x85EB_CA77) & mask
        return (0..<count).map { i in
            var h = (UInt64(i) &* 0x9E37_79B1 &+ base) & mask
            h ^= h >> 16; h = (h &* 0x7FEB_352D) & mask
            h ^= h >> 15; h = (h &* 0x846C_A68B) & mask
            h ^= h >> 16
            return Double(h) / 4_294_967_296
        }
    }

    static func symmetric(stream: Int, count: Int, bound: Double) -> [Float] {
        uniform(stream: stream, count: count).map { Float((2 * $0 - 1) * bound) }
    }

    /// The schedule string a case trains under (it decides banks, MRED and smoothing in the trainer).
    static func schedule(_ c: Fixture.Case) -> String {
        switch c.kind {
        case "rsnets": return "parallel:" + c.sizes.map(String.init).joined(separator: ",")
        case "mixsize": return "mixsize:12,16,20@0.3,0.4,0.3"
        default: return "fixed:\(c.sizes[0])"
        }
    }

    /// `Tools/parity/step.py`'s `summary`: the norm, the dot product with the hash vector of
    /// `stream`, and 8 evenly spaced entries.
    static func summary(_ values: [Float], stream: Int) -> Fixture.Summary {
        let v = values.map(Double.init)
        let r = uniform(stream: stream, count: v.count).map { 2 * $0 - 1 }
        let picks = (0..<8).map { $0 * (v.count - 1) / 7 }
        return Fixture.Summary(norm: v.reduce(0) { $0 + $1 * $1 }.squareRoot(), dot: zip(v, r).reduce(0) { $0 + $1.0 * $1.1 },
                               values: picks.map { v[$0] })
    }

    /// How far summary `a` is from `expected`: the norm and the dot product relative to the
    /// expected norm (a dot product with ±1 entries is at most √n·‖v‖), the sampled entries relative
    /// to the largest expected sampled magnitude; the largest of these.
    static func deviation(_ a: Fixture.Summary, from expected: Fixture.Summary) -> Double {
        let scale = max(expected.norm, 1e-12)
        let big = max(expected.values.map(abs).max() ?? 0, 1e-12)
        var worst = max(abs(a.norm - expected.norm), abs(a.dot - expected.dot)) / scale
        for (x, e) in zip(a.values, expected.values) { worst = max(worst, abs(x - e) / big) }
        return worst
    }

    /// The small cases, and the RS-Nets recipe's network at its five sizes (ResNet-20, batch 32),
    /// whose layers take the paths that depend on the batch and the plane (several column chunks
    /// per thread, or one kept per thread for the backward).
    @Test(arguments: ["fixed", "mixsize", "rsnets", "rsnets-resnet20"])
    func stepsMatchPyTorch(name: String) throws {
        let run = try #require(Self.fixture.cases.first { $0.case.name == name }, "no case \(name) in the fixture")
        let c = run.case
        let dir = TempDirectory("pyramid-parity")
        let cache = dir.url.appendingPathComponent("cache")
        // The levels the schedule trains on (the steps themselves take the fixture's views).
        let levels = c.kind == "rsnets" ? c.sizes : [16, 12]
        try CacheFixture.write(CacheFixture.randomSamples(count: 32, levels: levels, channels: 1, classes: 10, seed: 1),
                               levels: levels, channels: 1, classes: 10, to: cache)
        var model = Network.Configuration(architecture: "resnet\(c.depth)", inputChannels: 1, classes: 10)
        model.zeroInitResidual = false
        let configuration = RunConfiguration(
            cache: cache.path, model: model, schedule: Self.schedule(c), epochs: 1, batch: 8,
            learningRate: .init(kind: .constant, base: c.lr),
            optimizer: .init(momentum: 0.9, nesterov: true, weightDecay: 5e-4, decayAll: true),
            gradientSmoothing: c.smoothing ?? false, distillation: .full, seed: 0, workers: 1, threads: 2)
        let trainer = try Trainer(configuration: configuration, directory: dir.url.appendingPathComponent("run"), resume: false)
        let store = trainer.network.store

        // The same tensors in the same order, with the fixture's values.
        try #require(store.slices.count == run.tensors.count, "Pyramid has \(store.slices.count) parameter tensors, PyTorch \(run.tensors.count)")
        for (t, (slice, spec)) in zip(store.slices, run.tensors).enumerated() {
            try #require(slice.count == spec.count, "tensor \(t): Pyramid \(slice.name) has \(slice.count) values, PyTorch \(spec.name) \(spec.count)")
            let values = Self.symmetric(stream: 1000 + t, count: spec.count, bound: spec.bound).map { $0 + Float(spec.offset) }
            values.withUnsafeBufferPointer { (store.values + slice.offset).update(from: $0.baseAddress!, count: spec.count) }
        }
        let stateSlices = store.stateSlices

        let parallel = c.kind == "rsnets"
        for (k, expected) in run.steps.enumerated() {
            let n = c.batches[k]
            let sizes = parallel ? c.sizes : [c.sizes[k]]
            let views = sizes.enumerated().map { b, s in Self.symmetric(stream: 10000 + 10 * k + b, count: n * s * s, bound: 1) }
            let labels = Self.uniform(stream: 20000 + k, count: n).map { Int32(($0 * 10).rounded(.down)) }
            let outcome = views.withBuffers { buffers in
                trainer.step(views: buffers, count: n, channels: 1, size: sizes[0], labels: labels, lr: c.lr, stop: false)
            }
            #expect(abs(Double(outcome.loss) - expected.loss) <= 1e-5 * max(1, abs(expected.loss)), "\(name) step \(k): loss \(outcome.loss) vs \(expected.loss)")
            let grads = store.gradArray, values = store.parameterArray, state = store.stateArray
            // Every tensor: its group, name, Pyramid's values, PyTorch's summary (and its float32 one
            // when the reference is float64), the hash stream, the tolerance.
            var checks: [(group: String, what: String, values: ArraySlice<Float>, expected: Fixture.Summary, single: Fixture.Summary?,
                          stream: Int, tolerance: Double)] = []
            let single = run.float32Steps?[k]
            for (t, slice) in store.slices.enumerated() {
                let range = slice.offset..<(slice.offset + slice.count)
                checks.append(("gradients", "gradient of \(slice.name)", grads[range], expected.grads[t], single?.grads[t], 30000 + t, 1e-4))
                checks.append(("updated parameters", slice.name, values[range], expected.values[t], single?.values[t], 40000 + t, 1e-5))
            }
            for (t, slice) in stateSlices.enumerated() {
                let range = slice.offset..<(slice.offset + slice.count)
                checks.append(("running statistics", slice.name, state[range], expected.state[t], single?.state[t], 50000 + t, 1e-5))
            }
            var worst = 0.0
            // Float64-reference cases: every deviation, Pyramid's and PyTorch's float32, by group.
            var groups: [String: (mine: [Double], single: [Double])] = [:]
            for check in checks {
                let mine = Self.summary(Array(check.values), stream: check.stream)
                let d = Self.deviation(mine, from: check.expected)
                worst = max(worst, d)
                if let single = check.single {
                    groups[check.group, default: ([], [])].mine.append(d)
                    groups[check.group, default: ([], [])].single.append(Self.deviation(single, from: check.expected))
                } else {
                    #expect(d <= check.tolerance, "\(name) step \(k) \(check.what): norm \(mine.norm) vs \(check.expected.norm), dot \(mine.dot) vs \(check.expected.dot), entries \(mine.values) vs \(check.expected.values)")
                }
            }
            for (group, d) in groups.sorted(by: { $0.key < $1.key }) {
                // At this scale a few ReLUs switch on rounding (a pre-activation within float32's
                // error of 0), and every gradient below such a switch moves by up to a percent, in
                // PyTorch's float32 step as in Pyramid's, at different layers. So each tensor must be
                // as close to float64 as the furthest of PyTorch's float32 tensors of its group, within
                // 3x: a step that mixed up branches or banks is off by O(1).
                let (mineMax, singleMax) = (d.mine.max()!, d.single.max()!)
                print("parity \(name) step \(k) \(group), deviation from float64: Pyramid up to \(mineMax), PyTorch's float32 up to \(singleMax)")
                #expect(mineMax <= 3 * singleMax, "\(name) step \(k) \(group): Pyramid's deviation from float64 reaches \(mineMax), PyTorch float32's \(singleMax)")
            }
            if run.float32Steps == nil { print("parity \(name) step \(k): loss \(outcome.loss) (PyTorch \(expected.loss)), largest relative difference \(worst)") }
        }
    }
}
}

extension Array where Element == [Float] {
    /// Calls `body` with a buffer pointer to each array, valid inside `body`.
    func withBuffers<R>(_ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) -> R {
            if i == count { return body(acc) }
            return self[i].withUnsafeBufferPointer { go(i + 1, acc + [$0]) }
        }
        return go(0, [])
    }
}
