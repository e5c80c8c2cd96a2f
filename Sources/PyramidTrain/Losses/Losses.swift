import Foundation

/// Softmax cross-entropy and KL distillation over logits `(N, K)`; each returns the mean loss over
/// the batch and writes the gradient with respect to the logits.
public enum Losses {
    /// Row-wise softmax of `z` (`n × k`).
    static func softmax(_ z: UnsafePointer<Float>, n: Int, k: Int) -> [Float] {
        var p = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            let row = z + i * k
            var m = -Float.infinity
            for j in 0..<k { m = max(m, row[j]) }
            var sum: Float = 0
            for j in 0..<k { let e = exp(row[j] - m); p[i * k + j] = e; sum += e }
            for j in 0..<k { p[i * k + j] /= sum }
        }
        return p
    }

    /// Mean cross-entropy with label smoothing ε (targets `(1−ε)·onehot + ε/K`).
    /// - Parameters:
    ///   - logits: `(N, K)`.
    ///   - labels: the N class indices.
    ///   - smoothing: ε.
    ///   - weight: scales the gradient.
    ///   - grad: receives `∂L/∂z = (p − q)/N`, scaled by `weight`, *added* when `accumulate`.
    ///   - accumulate: add to `grad` instead of overwriting it.
    public static func crossEntropy(logits: Tensor, labels: [Int32], smoothing: Float = 0, weight: Float = 1,
                                    grad: Tensor?, accumulate: Bool = false) -> Float {
        let n = logits.shape[0], k = logits.shape[1]
        let p = softmax(logits.data, n: n, k: k)
        if let grad { grad.reshape(logits.shape); if !accumulate { grad.zero() } }
        var loss: Double = 0
        let off = smoothing / Float(k), on = 1 - smoothing + off
        for i in 0..<n {
            let y = Int(labels[i])
            for j in 0..<k {
                let q = j == y ? on : off
                if q > 0 { loss -= Double(q) * log(Double(max(p[i * k + j], 1e-30))) }
                if let grad { grad.data[i * k + j] += weight * (p[i * k + j] - q) / Float(n) }
            }
        }
        return Float(loss / Double(n))
    }

    /// `KL(teacher ‖ softmax(student))` averaged over the batch ("batchmean"), the teacher
    /// detached (given as probabilities); the gradient `(p_s − p_t)/N · weight` is added to `grad`.
    public static func distillation(student: Tensor, teacher: [Float], weight: Float = 1, grad: Tensor) -> Float {
        let n = student.shape[0], k = student.shape[1]
        let p = softmax(student.data, n: n, k: k)
        var loss: Double = 0
        for i in 0..<(n * k) {
            let t = Double(teacher[i])
            if t > 0 { loss += t * (log(t) - log(Double(max(p[i], 1e-30)))) }
            grad.data[i] += weight * (p[i] - teacher[i]) / Float(n)
        }
        return Float(loss / Double(n))
    }

    /// Top-1 and top-k hits of `logits` against `labels`.
    public static func hits(logits: Tensor, labels: [Int32], k: Int = 5) -> (top1: Int, topK: Int) {
        let n = logits.shape[0], classes = logits.shape[1]
        var top1 = 0, topK = 0
        for i in 0..<n {
            let row = logits.data + i * classes
            let y = Int(labels[i])
            var better = 0
            for j in 0..<classes where j != y && (row[j] > row[y] || (row[j] == row[y] && j < y)) { better += 1 }
            if better == 0 { top1 += 1 }
            if better < k { topK += 1 }
        }
        return (top1, topK)
    }
}
