import ArgumentParser
import PyramidCache
import PyramidLoader

/// The flags that choose the steps a command serves — the schedule and the batch — declared once
/// for `train`, `batches`, `plan` and `bench load`, each with one meaning everywhere. `--batch` is the images
/// of a step over all processes (as `train` has always counted it): with `--world-size N` (or N
/// processes under `mpirun`) each takes `batch / N`, so a recipe does not change with N.
struct StreamArguments: ParsableArguments {
    /// `--batch` when not given.
    static let defaultBatch = 128

    @Option(help: "The resolution schedule (\(ScheduleParser.syntax)); default: fixed at the cache's largest level.")
    var schedule: String?

    @OptionGroup var step: BatchArgument
    /// `--batch` as given (nil: not given).
    var batch: Int? { step.batch }

    /// The images each of `processes` takes per step: `--batch` divided among them.
    /// - Throws: `ValidationError` when it does not divide.
    func batchPerProcess(_ processes: Int) throws -> Int {
        let b = step.value
        guard processes > 0, b % processes == 0 else {
            throw ValidationError("--batch: \(b) images per step cannot be split evenly among \(processes) processes (--batch is the step's images over all of them)")
        }
        return b / processes
    }

    /// The schedule, parsed (`fixed` at `largestLevel` when none was given).
    func parsedSchedule(largestLevel: Int?) throws -> any ResolutionSchedule {
        guard let spec = schedule ?? largestLevel.map({ "fixed:\($0)" }) else {
            throw ValidationError("--schedule: give one (there is no cache to take the largest level from)")
        }
        return try ScheduleParser.parse(spec, largestLevel: largestLevel)
    }

}

/// The flags that choose which samples a step takes and how they are cut: the order of an epoch
/// and the augmentation, declared once for `train`, `batches` and `bench load` (`plan` needs
/// neither: a plan does not depend on them).
struct SampleArguments: ParsableArguments {
    @OptionGroup var augmentation: AugmentArgument
    /// `--augment` as given (nil: the cache's own).
    var augment: String? { augmentation.augment }

    @Option(help: "How epochs are shuffled: global (one permutation of every sample) or shards:W (the shards in a random order, then the samples of every W shards together, so an s3:// cache streams through a small --cache-limit) (default: global for a directory, shards:\(SampleOrder.defaultWindow) for s3://).")
    var shuffle: SampleOrder?

    /// The augmentation, parsed; nil for the cache's own.
    func parsedAugmentation() throws -> Augmentation? { try augmentation.parsed() }
}

/// `--batch`, declared once: every command that takes a batch (the loader's commands through
/// ``StreamArguments``, the trainer's benchmarks directly) means by it a step's images over all
/// processes.
struct BatchArgument: ParsableArguments {
    @Option(parsing: .unconditional, help: "Base images per step, over all processes: with --world-size N (or N processes under mpirun) each takes 1/N of them (default: \(StreamArguments.defaultBatch)).")
    var batch: Int?

    /// The batch, or the default when none was given.
    var value: Int { batch ?? StreamArguments.defaultBatch }

    func validate() throws {
        if let batch, batch < 1 { throw ValidationError("--batch: must be at least 1") }
    }
}

/// `--augment`, declared once (the loader's commands through ``SampleArguments``, and `export --views`).
struct AugmentArgument: ParsableArguments {
    @Option(help: "Augmentation (\(Augmentation.syntax)); default: the cache's training augmentation.")
    var augment: String?

    /// The augmentation, parsed; nil for the cache's own.
    func parsed() throws -> Augmentation? { try augment.map(Augmentation.parse) }
}
