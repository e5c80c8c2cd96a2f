import Foundation
import PyramidLoader
import Testing
@testable import PyramidTrain

@Suite struct LossTests {
    func numeric(_ t: Tensor, _ f: () -> Float, eps: Float = 1e-3) -> [Float] {
        GradientCheck.numericGradient(of: t, epsilon: eps) { Double(f()) }
    }

    @Test(arguments: [Float(0), 0.1])
    func crossEntropyGradient(smoothing: Float) {
        let z = Tensor(shape: [4, 5], values: GradientCheck.random(20, seed: 1, scale: 2))
        let labels: [Int32] = [0, 3, 4, 1]
        let g = Tensor(shape: [0])
        _ = Losses.crossEntropy(logits: z, labels: labels, smoothing: smoothing, grad: g)
        let n = numeric(z) { Losses.crossEntropy(logits: z, labels: labels, smoothing: smoothing, grad: nil) }
        #expect(zip(g.array, n).allSatisfy { abs($0 - $1) < 2e-3 }, "\(g.array) vs \(n)")
        // Uniform logits: loss is log K whatever the smoothing.
        let u = Tensor(shape: [2, 5])
        #expect(abs(Losses.crossEntropy(logits: u, labels: [1, 2], smoothing: smoothing, grad: nil) - log(5)) < 1e-5)
    }

    @Test func distillationGradientTreatsTheTeacherAsConstant() {
        let z = Tensor(shape: [3, 4], values: GradientCheck.random(12, seed: 2, scale: 2))
        // The teacher's logits must outlive the pointer softmax reads (a temporary Tensor is freed
        // right after `.data`, and another test's allocation could then overwrite it).
        let teacherLogits = Tensor(shape: [3, 4], values: GradientCheck.random(12, seed: 3))
        let teacher = withExtendedLifetime(teacherLogits) { Losses.softmax(teacherLogits.data, n: 3, k: 4) }
        let g = Tensor(shape: [3, 4])
        let kl = Losses.distillation(student: z, teacher: teacher, grad: g)
        #expect(kl > 0)
        let n = numeric(z) { let s = Tensor(shape: [3, 4]); return Losses.distillation(student: z, teacher: teacher, grad: s) }
        #expect(zip(g.array, n).allSatisfy { abs($0 - $1) < 2e-3 })
        // KL(p‖p) = 0.
        let same = Losses.distillation(student: z, teacher: Losses.softmax(z.data, n: 3, k: 4), grad: Tensor(shape: [3, 4]))
        #expect(abs(same) < 1e-5)
    }

    /// MRED: the branch gradients match finite differences of the total loss with every teacher
    /// held fixed, and α's gradient comes from the ensemble loss alone.
    @Test(arguments: MRED.Distillation.allCases)
    func mredGradients(mode: MRED.Distillation) {
        let s = 3, n = 4, k = 5
        let logits = (0..<s).map { Tensor(shape: [n, k], values: GradientCheck.random(n * k, seed: UInt64(10 + $0), scale: 2)) }
        let labels: [Int32] = [1, 0, 4, 2]
        var alpha: [Float] = [0.3, -0.2, 0.5]
        let mred = MRED(distillation: mode)
        func run(_ alpha: [Float]) -> (MRED.Terms, [Tensor], [Float]) {
            let grads = (0..<s).map { _ in Tensor(shape: [n, k]) }
            var ga = [Float](repeating: 0, count: s)
            let terms = alpha.withUnsafeBufferPointer { a in ga.withUnsafeMutableBufferPointer { g in
                mred.loss(logits: logits, labels: labels, alpha: a.baseAddress!, alphaGrad: g.baseAddress!, grads: grads)
            } }
            return (terms, grads, ga)
        }
        let (terms, grads, alphaGrad) = run(alpha)
        // α: finite differences of L_ens alone.
        for j in 0..<s {
            let numeric = alpha.withUnsafeMutableBufferPointer { a in
                GradientCheck.centralDifference(at: a.baseAddress! + j, epsilon: 1e-3) { Double(run(Array(a)).0.ensemble) }
            }
            #expect(abs(alphaGrad[j] - numeric) < 2e-3, "alpha[\(j)]")
        }
        // Distillation must not reach α: same α gradient whatever the distillation mode.
        let (_, _, plain) = { () -> (MRED.Terms, [Tensor], [Float]) in
            let grads = (0..<s).map { _ in Tensor(shape: [n, k]) }
            var ga = [Float](repeating: 0, count: s)
            let t = alpha.withUnsafeBufferPointer { a in ga.withUnsafeMutableBufferPointer { g in
                MRED(distillation: .none).loss(logits: logits, labels: labels, alpha: a.baseAddress!, alphaGrad: g.baseAddress!, grads: grads)
            } }
            return (t, grads, ga)
        }()
        #expect(zip(alphaGrad, plain).allSatisfy { abs($0 - $1) < 1e-6 })
        // Branch gradients: CE of the branch plus KL terms with detached teachers.
        let p0Fixed: [Float] = {
            let w = alpha.map { exp($0) }, sw = w.reduce(0, +)
            let z0 = Tensor(shape: [n, k])
            for i in 0..<s { for e in 0..<(n * k) { z0.data[e] += w[i] / sw * logits[i].data[e] } }
            return Losses.softmax(z0.data, n: n, k: k)
        }()
        let probs = logits.map { Losses.softmax($0.data, n: n, k: k) }
        let factor: Float = mode == .full ? 2 / Float(s + 1) : 1
        for b in 0..<s {
            let numeric = numeric(logits[b]) {
                var l = Losses.crossEntropy(logits: logits[b], labels: labels, grad: nil)
                if mode != .none {
                    l += factor * Losses.distillation(student: logits[b], teacher: p0Fixed, grad: Tensor(shape: [n, k]))
                    if mode == .full { for t in 0..<b { l += factor * Losses.distillation(student: logits[b], teacher: probs[t], grad: Tensor(shape: [n, k])) } }
                }
                return l
            }
            #expect(zip(grads[b].array, numeric).allSatisfy { abs($0 - $1) < 3e-3 }, "branch \(b)")
        }
        #expect(terms.total.isFinite && (mode == .none) == (terms.distillation == 0))
        alpha = []
    }
}
