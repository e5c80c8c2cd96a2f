import ArgumentParser
import Foundation
@_spi(Benchmark) import PyramidTrain

struct BenchMPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi",
        abstract: "Check and time the data-parallel step: mpirun -np N pyramid bench mpi CACHE.",
        discussion: """
            Takes the first training batch of CACHE (--batch images at --size, the loader's training \
            view) split among the N processes; each computes the gradient of its share with BatchNorm \
            frozen (running statistics, so that no sample depends on the rest of its batch), and the \
            trainer's exchange (one allreduce of gradients, BatchNorm statistics and the step's \
            scalars) averages them. Rank 0 then computes the gradient of the whole batch in one pass \
            and prints the largest relative difference over the parameter tensors, ‖split − whole‖ / \
            ‖whole‖: float32 rounding, about 1e-7 to 1e-6; more than --tolerance exits with status 1. \
            Then times the allreduce of the exchange block alone (mean of 20). Alone (no mpirun) it \
            checks and times the one-process path.

            --json prints one object: processes, batch, exchangeFloats, relativeError, worstTensor, \
            overallRelativeError, splitLoss, wholeLoss, allreduceSeconds.
            """)

    @Argument(help: "A training cache.")
    var cache: String

    @Option(help: "Model.")
    var model: String = "resnet20"

    @Option(parsing: .unconditional, help: "Image size.")
    var size: Int = 28

    @OptionGroup var step: BatchArgument
    var batch: Int { step.value }

    @Option(parsing: .unconditional, help: "Seed of the weights and the batch.")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Threads per process (default: the cores divided among the processes on this machine).")
    var threads: Int = Processes.coresPerProcess

    @Option(parsing: .unconditional, help: "Largest relative difference accepted.")
    var tolerance: Double = 1e-5

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let group = try Processes.group()
        let r = try TrainBenchmark.dataParallelStep(cache: cache, model: model, size: size, batch: batch, seed: seed, group: group, threads: threads)
        guard group.isRoot else { return }
        if json {
            try printJSON(r)
        } else {
            print(String(format: "%d process%@ × %d images at %d px, %@: split gradient vs whole batch: largest relative difference %.2e (%@), overall %.2e; loss %.6f vs %.6f",
                         r.processes, r.processes == 1 ? "" : "es", r.batch / r.processes, size, model as NSString,
                         r.relativeError, r.worstTensor as NSString, r.overallRelativeError, r.splitLoss, r.wholeLoss))
            print(String(format: "allreduce of %d floats (%.2f MB): %.3f ms", r.exchangeFloats, Double(r.exchangeFloats * 4) / 1e6, r.allreduceSeconds * 1e3))
        }
        if !(r.relativeError <= tolerance) {
            throw Failure.failure(String(format: "the split gradient differs from the whole batch's by %.2e (%@), more than --tolerance %.1e",
                                         r.relativeError, r.worstTensor as NSString, tolerance))
        }
    }
}
