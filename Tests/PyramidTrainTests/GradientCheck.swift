import PyramidLoader
import Testing
@testable import PyramidTrain

/// Finite-difference checks (caffe's `test_gradient_check_util.hpp`): the loss is `Σ r ⊙ f(x)`
/// for a fixed random `r`, so `∂L/∂f = r`; analytic gradients from `backward(r)` are compared
/// with central differences of the loss, element by element.
struct GradientCheck {
    var epsilon: Float = 1e-2
    var tolerance: Float = 1e-2

    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] { Tensor.uniformValues(count, seed: seed, scale: scale) }

    /// `∂f/∂v` at `*value` by central differences: `(f(v + ε) − f(v − ε)) / 2ε`, `*value` restored.
    static func centralDifference(at value: UnsafeMutablePointer<Float>, epsilon: Float, _ f: () -> Double) -> Float {
        let v = value.pointee
        value.pointee = v + epsilon; let plus = f()
        value.pointee = v - epsilon; let minus = f()
        value.pointee = v
        return Float((plus - minus) / Double(2 * epsilon))
    }

    /// The gradient of the scalar `f` with respect to every element of `t`, by central differences.
    static func numericGradient(of t: Tensor, epsilon: Float, _ f: () -> Double) -> [Float] {
        (0..<t.count).map { centralDifference(at: t.data + $0, epsilon: epsilon, f) }
    }

    /// Checks a layer's input gradient and the gradients of `store`'s parameters.
    /// - Returns: the worst relative error seen.
    @discardableResult
    func check(_ layer: Layer, store: ParameterStore?, input shape: [Int], seed: UInt64,
               parameterSample: Int = 40, file: String = #fileID, line: Int = #line) -> Float {
        let x = Tensor(shape: shape, values: Self.random(shape.reduce(1, *), seed: seed))
        let y0 = layer.forward(x, branch: 0)
        let r = Tensor(shape: y0.shape, values: Self.random(y0.count, seed: seed &+ 1))
        func loss() -> Double {
            let y = layer.forward(x, branch: 0)
            var s: Double = 0
            for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
            return s
        }
        store?.zeroGrads()
        _ = layer.forward(x, branch: 0)
        let gx = layer.backward(r, branch: 0).array
        let paramGrads = store?.gradArray ?? []
        var worst: Float = 0
        var analyticInput: [Float] = [], numericInput: [Float] = []
        for i in stride(from: 0, to: x.count, by: max(1, x.count / 60)) {
            analyticInput.append(gx[i]); numericInput.append(Self.centralDifference(at: x.data + i, epsilon: epsilon, loss))
        }
        var analyticParams: [Float] = [], numericParams: [Float] = [], names: [String] = []
        if let store, store.count > 0 {
            for i in stride(from: 0, to: store.count, by: max(1, store.count / parameterSample)) {
                analyticParams.append(paramGrads[i]); numericParams.append(Self.centralDifference(at: store.values + i, epsilon: epsilon, loss))
                names.append(store.slices.first { $0.offset <= i && i < $0.offset + $0.count }?.name ?? "?")
            }
        }
        // Each gradient vector as a whole: ‖analytic − numeric‖ / ‖numeric‖, and every element
        // against the vector's scale (so that tiny entries do not hide behind an absolute floor).
        for (what, a, n) in [("input", analyticInput, numericInput), ("parameters", analyticParams, numericParams)] where !a.isEmpty {
            let diff = zip(a, n).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            let norm = max(n.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), 1e-6)
            let scale = max(n.map { abs($0) }.max()!, 1e-6)
            worst = max(worst, diff / norm)
            #expect(diff / norm < tolerance, "\(what): relative error \(diff / norm) (seed \(seed))", sourceLocation: SourceLocation(fileID: file, filePath: file, line: line, column: 1))
            for (j, (x, y)) in zip(a, n).enumerated() where abs(x - y) / scale > 3 * tolerance {
                Issue.record("\(what)[\(j)] \(what == "parameters" ? names[j] : ""): analytic \(x), numeric \(y) (seed \(seed))")
            }
        }
        return worst
    }
}
