// A custom training loop on PyramidLoader alone: softmax regression on 7x7 area-pooled images,
// trained under any resolution schedule (the pooling makes the model size-independent).
//
//   swift run -c release loader-example CACHE [SCHEDULE] [EPOCHS]
//   swift run -c release loader-example demo-output/fashion-mnist trd:28,14,p=0.5 3
//
// The loader part is the first ten lines of main(); everything else is the toy model.
import Foundation
import PyramidLoader

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: loader-example CACHE [SCHEDULE] [EPOCHS]   e.g. loader-example demo-output/fashion-mnist trd:28,14,p=0.5 3")
    exit(64)
}
let cachePath = arguments[1]
let scheduleText = arguments.count > 2 ? arguments[2] : "fixed:28"
let epochs = arguments.count > 3 ? Int(arguments[3]) ?? 2 : 2

/// Softmax regression on a `grid x grid` area-pooled image (any input size).
struct PooledSoftmax {
    let grid = 7, classes: Int, channels: Int
    var weights: [Float], bias: [Float]
    init(classes: Int, channels: Int) {
        self.classes = classes; self.channels = channels
        weights = [Float](repeating: 0, count: classes * channels * 49); bias = [Float](repeating: 0, count: classes)
    }
    /// Area-pools one image (C, s, s) to (C, grid, grid).
    func features(_ x: UnsafeBufferPointer<Float>, offset: Int, size s: Int) -> [Float] {
        var f = [Float](repeating: 0, count: channels * grid * grid)
        for c in 0..<channels { for y in 0..<s { for xx in 0..<s {
            f[c * grid * grid + (y * grid / s) * grid + xx * grid / s] += x[offset + (c * s + y) * s + xx]
        } } }
        let cell = Float(s * s) / Float(grid * grid)
        return f.map { $0 / cell }
    }
    /// One SGD step on a batch; returns (mean loss, correct).
    mutating func step(_ x: UnsafeBufferPointer<Float>, labels: [Int32], size s: Int, lr: Float) -> (Float, Int) {
        let d = channels * grid * grid
        var gradW = [Float](repeating: 0, count: weights.count), gradB = [Float](repeating: 0, count: classes)
        var loss: Float = 0, correct = 0
        for n in 0..<labels.count {
            let f = features(x, offset: n * d / (grid * grid) * s * s, size: s)
            var z = (0..<classes).map { k in bias[k] + (0..<d).reduce(Float(0)) { $0 + weights[k * d + $1] * f[$1] } }
            let m = z.max()!
            z = z.map { exp($0 - m) }
            let total = z.reduce(0, +)
            let y = Int(labels[n])
            loss -= log(z[y] / total)
            if z.firstIndex(of: z.max()!) == y { correct += 1 }
            for k in 0..<classes {
                let g = z[k] / total - (k == y ? 1 : 0)
                gradB[k] += g
                for i in 0..<d { gradW[k * d + i] += g * f[i] }
            }
        }
        let scale = lr / Float(labels.count)
        for i in weights.indices { weights[i] -= scale * gradW[i] }
        for k in bias.indices { bias[k] -= scale * gradB[k] }
        return (loss / Float(labels.count), correct)
    }
}

func main() async throws {
    // --- the loader: open, configure, iterate -------------------------------------------------
    let schedule = try ScheduleParser.parse(scheduleText, largestLevel: 28)
    let loader = try Loader(path: cachePath, configuration: LoaderConfiguration(schedule: schedule, batchSize: 128, seed: 1, epochs: epochs))
    var model = PooledSoftmax(classes: loader.cache.manifest.classes.count, channels: loader.cache.manifest.channels)
    for epoch in 0..<epochs {
        var loss: Float = 0, correct = 0, seen = 0, steps = 0
        let started = Date()
        for try await batch in loader.epoch(epoch) {
            let (l, c) = model.step(batch.images().floats, labels: batch.labels, size: batch.size, lr: 0.5)
            loss += l; correct += c; seen += batch.count; steps += 1
        }
        // --------------------------------------------------------------------------------------
        let sizes = loader.plan(epoch: epoch).sizes.map(String.init).joined(separator: ",")
        print(String(format: "epoch %d  size %@  steps %d  loss %.3f  train accuracy %.1f%%  %.1f s",
                     epoch, sizes, steps, loss / Float(max(steps, 1)), 100 * Double(correct) / Double(max(seen, 1)),
                     Date().timeIntervalSince(started)))
    }
}

do { try await main() } catch {
    FileHandle.standardError.write("loader-example: \(error)\n".data(using: .utf8)!)
    exit(1)
}
