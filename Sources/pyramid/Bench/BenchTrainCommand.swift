import ArgumentParser
import Foundation
@_spi(Benchmark) import PyramidTrain

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps on synthetic batches against the sgemm peak measured in the same run.",
        discussion: """
            Runs full training steps (forward, cross-entropy, backward, SGD) of a model on random \
            images, times each, and reports images/s of the median step (the machine may be shared; \
            a neighbour's burst lengthens a few steps), achieved GFLOP/s (a step counted as three forward passes \
            of direct-convolution MACs; Winograd layers multiply less, so with them this is an effective rate) \
            and its ratio to the trainer's matrix product (libxsmm, or OpenBLAS with \
            PYRAMID_GEMM=openblas) on 1024x1024 matrices run the same way (one single-threaded \
            product per thread).

            The trainer's own loops (im2col, Winograd transforms, BatchNorm, residual sums) run the \
            best version this CPU has (avx512, avx2 or baseline; PYRAMID_KERNELS=NAME picks one, \
            for comparison): the last line names it.

            --profile then runs as many steps again with every convolution, BatchNorm and residual sum \
            timed, and prints milliseconds per step by kind of layer, forward and backward: the stem, 3x3 \
            convolutions by output plane, 1x1 shortcuts, BatchNorm with ReLU and the residual sums, \
            and everything else (pooling, classifier, loss, SGD, input). Tools/bench/profile puts \
            it beside PyTorch's profiler on the same model and batch.

            --json prints one object: sgemmPeakGflops, threads, kernels, and results, one per size: size, \
            imagesPerSecond, macs (forward multiply-adds per image), gflops, and with --profile \
            layers (layer, forwardSeconds, backwardSeconds, calls: per step).
            """)

    @Option(help: "Model.")
    var model: String = "resnet20"

    @Option(help: "Image sizes, comma-separated.")
    var sizes: String = "28,14"

    @Option(parsing: .unconditional, help: "Channels.")
    var channels: Int = 1

    @OptionGroup var step: BatchArgument
    var batch: Int { step.value }

    @Option(parsing: .unconditional, help: "Timed steps per size.")
    var steps: Int = 10

    @Option(parsing: .unconditional, help: "Threads (batch parts).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "3x3 stride-1 convolutions: auto (Winograd on even planes of 8x8 and more, else im2col), im2col or winograd.")
    var conv: Conv2D.Algorithm = .auto

    @Flag(help: "Also time each kind of layer, forward and backward (more steps, after the timed ones).")
    var profile = false

    @Flag(help: "Print JSON.")
    var json = false

    /// `--json`'s object.
    struct Report: Codable {
        var sgemmPeakGflops: Double
        var kernels: String
        var threads: Int
        var results: [TrainBenchmark.Result]
    }

    func run() throws {
        reportKernelChoice()
        let peak = TrainBenchmark.sgemmPeak(threads: threads)
        var results: [TrainBenchmark.Result] = []
        for s in try parseIntList(sizes, flag: "sizes") {
            let r = try TrainBenchmark.trainingSteps(model: model, size: s, channels: channels, batch: batch, steps: steps, threads: threads,
                                                     algorithm: conv, profile: profile)
            results.append(r)
            if !json {
                print(String(format: "%@ %dx%dx%d batch %d: %7.1f images/s  %.1f MMACs/image  %6.1f GFLOP/s  %.2f of sgemm peak", model as NSString,
                             s, s, channels, batch, r.imagesPerSecond, Double(r.macs) / 1e6, r.gflops, r.gflops / peak))
                for row in r.layers ?? [] {
                    print("  " + row.layer.padding(toLength: 58, withPad: " ", startingAt: 0)
                          + String(format: "forward %7.2f ms  backward %7.2f ms", 1000 * row.forwardSeconds, 1000 * row.backwardSeconds))
                }
            }
        }
        if json { return try printJSON(Report(sgemmPeakGflops: peak, kernels: InstructionSet.active.rawValue, threads: threads, results: results)) }
        print(String(format: "sgemm peak (1024^3, %d thread%@, %@): %.1f GFLOP/s; kernels: %@", threads, threads == 1 ? "" : "s",
                     GemmBackend.current.rawValue as NSString, peak, InstructionSet.active.rawValue as NSString))
    }
}
