import ArgumentParser
import Foundation
@_spi(Benchmark) import PyramidTrain

struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Time single 3x3 convolution layers with each method against the sgemm peak.",
        discussion: """
            Runs forward and backward (weight and input gradients) of one 3x3, padding-1 convolution \
            layer on a random batch with im2col + sgemm and with Winograd F(2x2,3x3) (16 sgemms of \
            depth CIN), marking with * the one training picks by default; the methods alternate \
            --repetitions times and the fastest forward and backward of each is reported, in \
            milliseconds and as a fraction of the sgemm peak (libxsmm, or OpenBLAS with PYRAMID_GEMM=openblas) measured in the same run (before \
            and after the layers, the higher kept; a \
            training step's convolution work counted as 3 forward passes, 2 FLOPs per MAC of the \
            direct convolution, so Winograd, which multiplies less, can pass 1.0). A layer \
            is CIN:COUT@SIZE, with /2 for stride 2 (e.g. 16:32@28/2; stride-2 layers use im2col only).
            """)

    @Option(help: "Layers, comma-separated CIN:COUT@SIZE[/2]; default: ResNet-20's 3x3 stride-1 layers at 28 px.")
    var layers: String = "16:16@28,32:32@14,64:64@7"

    @OptionGroup var step: BatchArgument
    var batch: Int { step.value }

    @Option(parsing: .unconditional, help: "Threads (batch parts).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(parsing: .unconditional, help: "Timed repetitions of each method (the fastest is reported).")
    var repetitions: Int = 9

    func run() throws {
        reportKernelChoice()
        // The peak before and after the layers, the higher kept: a neighbour's burst during one
        // measurement would otherwise make every ratio too high.
        var peak = TrainBenchmark.sgemmPeak(threads: threads)
        var rows: [(String, Conv2D.Algorithm, Conv2D.Algorithm, TrainBenchmark.ConvolutionResult)] = []
        for layer in try layers.split(separator: ",").map({ try TrainBenchmark.ConvolutionLayer(String($0)) }) {
            let methods: [Conv2D.Algorithm] = layer.stride == 1 ? [.im2col, .winograd] : [.im2col]
            let auto = Conv2D.automaticAlgorithm(inChannels: layer.inChannels, outChannels: layer.outChannels, kernel: 3,
                                                 stride: layer.stride, height: layer.size, width: layer.size)
            for r in TrainBenchmark.convolution(inChannels: layer.inChannels, outChannels: layer.outChannels, size: layer.size,
                                                stride: layer.stride, batch: batch, threads: threads, repetitions: repetitions, methods: methods) {
                rows.append((layer.description, r.method, auto, r))
            }
        }
        peak = max(peak, TrainBenchmark.sgemmPeak(threads: threads))
        print(String(format: "sgemm peak (1024^3, %d thread%@, best before and after): %.1f GFLOP/s", threads, threads == 1 ? "" : "s", peak))
        print("layer           method      forward ms  backward ms  of peak  (* auto)")
        for (spec, method, auto, r) in rows {
            let gflops = Double(r.macs) * 2 * 3 / (r.forward + r.backward) / 1e9
            print(spec.padding(toLength: 16, withPad: " ", startingAt: 0) + method.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: " %10.2f  %11.2f  %7.2f", r.forward * 1e3, r.backward * 1e3, gflops / peak) + (method == auto ? "  *" : ""))
        }
    }
}
