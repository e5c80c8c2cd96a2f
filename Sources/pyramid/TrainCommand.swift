import ArgumentParser
import Foundation
import PyramidCache
import PyramidLoader
import PyramidTrain

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a CNN from a cache under a resolution schedule (OpenBLAS, CPU).",
        discussion: """
            Writes RUNDIR/run.json (the configuration), RUNDIR/log.jsonl (one line per epoch: loss, \
            train accuracy, learning rate, images/s, sizes, multiply-adds of the epoch and of the run, \
            validation accuracy with --test) and RUNDIR/checkpoint.bin after every epoch (atomically; \
            checkpoint-best.bin for the best validation top-1). Ctrl-C writes a checkpoint at the current \
            step; --resume RUNDIR continues, bit for bit the run it would have been (its log \
            too): it takes the run's settings from run.json and refuses the flags that would change \
            them (only --workers, --threads and --quiet may). One process trains a run directory at \
            a time (a lock file, .pyramid.lock, holds its PID); a second is refused. A full disk \
            stops the run with the last good checkpoint kept: free space and --resume.

            Schedules: \(ScheduleParser.syntax)

            A multistep learning rate's milestones become TRD's guard epochs. MixSize schedules turn \
            gradient smoothing on; parallel schedules train one BatchNorm bank per size with \
            multi-resolution ensemble distillation (--distillation).

            Under mpirun (mpirun -np N pyramid train ...), the N processes train data-parallel: \
            each takes BATCH/N images of every step (--batch is the images per step of all of them, \
            so the recipe does not depend on N and must divide by it), BatchNorm normalizes with each \
            process's own share, and one allreduce per step averages the gradients, the running \
            statistics and the loss, so every process holds the same model. Validation is split \
            among them. Rank 0 writes RUNDIR (which every rank must be able to read for --resume) and \
            prints a progress line every 10 seconds. --resume continues on any number of processes; \
            with the same number and seed a run is bit-identical. A process that fails stops all of \
            them. Default --threads: the cores divided among the processes on each machine.

            Example:
              pyramid train fmnist --test fmnist-test --model resnet20 --schedule trd:28,14,p=0.5 \\
                  --epochs 10 --batch 128 --lr 0.1 --out runs/trd
              mpirun -np 2 pyramid train fmnist --test fmnist-test --epochs 10 --batch 128 --out runs/two
            """)

    @Argument(help: "The training cache: a directory or s3://bucket/prefix (not needed with --resume).")
    var cache: String?

    @Option(help: "Run directory to create.")
    var out: String?

    @Option(help: "Continue the run in this directory.")
    var resume: String?

    @Option(help: "A test cache: validation after every epoch, and pyramid eval's default.")
    var test: String?

    // Options that define a run are optional: nil means "not given", so a resume can tell what was
    // given from the parsed values; the defaults are RunConfiguration.Recipe's (`defaults`).

    @Option(help: "The model (default: \(defaults.architecture)).")
    var model: Network.Architecture?

    @OptionGroup(title: "Steps")
    var stream: StreamArguments

    @OptionGroup(title: "Samples")
    var samples: SampleArguments

    @Option(parsing: .unconditional, help: "Epochs (default: \(defaults.epochs)).")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Base learning rate (default: \(defaults.learningRate.base)).")
    var lr: Float?

    @Option(name: .customLong("lr-schedule"), help: "cosine (per iteration), multistep or constant (default: \(defaults.learningRate.kind.rawValue)).")
    var lrSchedule: LearningRateSchedule.Kind?

    @Option(parsing: .unconditional, help: "Multistep milestones: first epochs at each ×0.1 rate, e.g. 5,8.")
    var milestones: String?

    @Option(parsing: .unconditional, help: "Linear warmup epochs (default: 0).")
    var warmup: Int?

    @Option(parsing: .unconditional, help: "SGD momentum (default: \(defaults.optimizer.momentum)).")
    var momentum: Float?

    @Flag(help: "Nesterov momentum.")
    var nesterov = false

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "Weight decay (default: \(defaults.optimizer.weightDecay)).")
    var weightDecay: Float?

    @Flag(name: .customLong("decay-all"), help: "Decay every parameter (BN, biases, α), as RS-Nets does; default: conv/FC weights only.")
    var decayAll = false

    @Option(name: .customLong("label-smoothing"), parsing: .unconditional, help: "Label smoothing ε (default: 0).")
    var labelSmoothing: Float?

    @Option(name: .customLong("gradient-smoothing"), help: "on or off (default: on for mixsize schedules).")
    var gradientSmoothing: Switch?

    @Option(name: .customLong("zero-init-residual"), help: "on or off: start the last BatchNorm γ of every residual block at 0 (default: on for mixsize schedules, as MixSize's reference code; off otherwise, as the ResNet paper and PyTorch).")
    var zeroInitResidual: Switch?

    @Option(help: "Parallel schedules: full, vanilla or none (MRED) (default: \(defaults.distillation.rawValue)).")
    var distillation: MRED.Distillation?

    @Flag(name: .customLong("shared-bn"), help: "Parallel schedules: one BatchNorm for every size instead of a private bank per size (the RS-Nets ablation).")
    var sharedBatchNorm = false

    @Option(help: "Shortcut of shape-changing residual blocks: projection or pad (default: \(defaults.shortcut.rawValue)).")
    var shortcut: BasicBlock.Shortcut?

    @Option(name: .customLong("corrupt-records"), help: "A corrupt training record: fail (stop, naming it) or substitute (serve the next sample; counted in the log) (default: fail).")
    var corruptRecords: CorruptRecordPolicy?

    @Option(parsing: .unconditional, help: "Seed of initialization, order and augmentation (default: 0).")
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Loader worker threads (default: 1).")
    var workers: Int?

    @Option(parsing: .unconditional, help: "Batch parts computed in parallel, one single-threaded GEMM each (default: the cores, divided among the processes on this machine under mpirun).")
    var threads: Int?

    @Flag(help: "No progress line, no per-epoch lines.")
    var quiet = false

    /// One flag that defines a run (saved in run.json, so a resume cannot change it): whether it
    /// was given, and what it sets in the recipe. The one list both ``runDefiningFlagsGiven`` and
    /// ``recipe()`` read: a flag cannot be refused on resume and forgotten by the recipe, or the
    /// reverse. FlagTests checks that every flag of `train` is here or in ``resumableFlags``.
    struct RunFlag: Sendable {
        let name: String
        let given: @Sendable (TrainCommand) -> Bool
        let apply: @Sendable (TrainCommand, inout RunConfiguration.Recipe) throws -> Void
    }

    static let runFlags: [RunFlag] = [
        RunFlag(name: "--test", given: { $0.test != nil }) { c, r in r.testCache = c.test },
        RunFlag(name: "--model", given: { $0.model != nil }) { c, r in r.architecture = c.model ?? r.architecture },
        RunFlag(name: "--schedule", given: { $0.stream.schedule != nil }) { c, r in r.schedule = c.stream.schedule },
        RunFlag(name: "--augment", given: { $0.samples.augment != nil }) { c, r in r.augment = c.samples.augment },
        RunFlag(name: "--epochs", given: { $0.epochs != nil }) { c, r in r.epochs = c.epochs ?? r.epochs },
        RunFlag(name: "--batch", given: { $0.stream.batch != nil }) { c, r in r.batch = c.stream.batch ?? StreamArguments.defaultBatch },
        RunFlag(name: "--lr", given: { $0.lr != nil }) { c, r in r.learningRate.base = c.lr ?? r.learningRate.base },
        RunFlag(name: "--lr-schedule", given: { $0.lrSchedule != nil }) { c, r in r.learningRate.kind = c.lrSchedule ?? r.learningRate.kind },
        RunFlag(name: "--milestones", given: { $0.milestones != nil }) { c, r in
            r.learningRate.milestones = try c.milestones.map { try parseIntList($0, flag: "milestones") } ?? []
        },
        RunFlag(name: "--warmup", given: { $0.warmup != nil }) { c, r in r.learningRate.warmupEpochs = c.warmup ?? 0 },
        RunFlag(name: "--momentum", given: { $0.momentum != nil }) { c, r in r.optimizer.momentum = c.momentum ?? r.optimizer.momentum },
        RunFlag(name: "--nesterov", given: { $0.nesterov }) { c, r in r.optimizer.nesterov = c.nesterov },
        RunFlag(name: "--weight-decay", given: { $0.weightDecay != nil }) { c, r in r.optimizer.weightDecay = c.weightDecay ?? r.optimizer.weightDecay },
        RunFlag(name: "--decay-all", given: { $0.decayAll }) { c, r in r.optimizer.decayAll = c.decayAll },
        RunFlag(name: "--label-smoothing", given: { $0.labelSmoothing != nil }) { c, r in r.labelSmoothing = c.labelSmoothing ?? r.labelSmoothing },
        RunFlag(name: "--gradient-smoothing", given: { $0.gradientSmoothing != nil }) { c, r in r.gradientSmoothing = c.gradientSmoothing.map { $0 == .on } },
        RunFlag(name: "--zero-init-residual", given: { $0.zeroInitResidual != nil }) { c, r in r.zeroInitResidual = c.zeroInitResidual.map { $0 == .on } },
        RunFlag(name: "--distillation", given: { $0.distillation != nil }) { c, r in r.distillation = c.distillation ?? r.distillation },
        RunFlag(name: "--shared-bn", given: { $0.sharedBatchNorm }) { c, r in r.sharedBatchNorm = c.sharedBatchNorm },
        RunFlag(name: "--shortcut", given: { $0.shortcut != nil }) { c, r in r.shortcut = c.shortcut ?? r.shortcut },
        RunFlag(name: "--corrupt-records", given: { $0.corruptRecords != nil }) { c, r in r.corruptRecords = c.corruptRecords ?? r.corruptRecords },
        RunFlag(name: "--seed", given: { $0.seed != nil }) { c, r in r.seed = c.seed ?? r.seed },
        RunFlag(name: "--shuffle", given: { $0.samples.shuffle != nil }) { c, r in r.order = c.samples.shuffle },
    ]

    /// The flags a resume may give (they change how a run is computed or shown, not what it is),
    /// and the ones that say which run.
    static let resumableFlags = ["--out", "--resume", "--workers", "--threads", "--quiet", "--cache-dir", "--cache-limit"]

    /// The flags given that define a run (saved in run.json), which a resume cannot change.
    var runDefiningFlagsGiven: [String] { Self.runFlags.filter { $0.given(self) }.map(\.name) }

    func validate() throws {
        if resume == nil && (cache == nil || out == nil) { throw ValidationError("give CACHE and --out RUNDIR, or --resume RUNDIR") }
        if resume != nil && out != nil { throw ValidationError("--resume continues a run in place; --out is not used with it") }
        if let resume {
            let fixed = runDefiningFlagsGiven
            if cache != nil || !fixed.isEmpty {
                throw ValidationError("--resume continues \(resume) exactly as it was configured; \((cache != nil ? ["CACHE"] : []) + fixed) cannot change it (only --workers, --threads and --quiet can)")
            }
        }
        let r = try recipe()
        if r.epochs < 1 { throw ValidationError("--epochs: must be at least 1") }
        if r.batch < 1 { throw ValidationError("--batch: must be at least 1") }
        let lr = r.learningRate.base, o = r.optimizer
        if !(lr > 0) || !lr.isFinite { throw ValidationError("--lr: must be a positive finite number, not \(lr)") }
        if !(o.momentum >= 0 && o.momentum < 1) { throw ValidationError("--momentum: must be in [0, 1), not \(o.momentum)") }
        if !(o.weightDecay >= 0) || !o.weightDecay.isFinite { throw ValidationError("--weight-decay: must be a finite number ≥ 0, not \(o.weightDecay)") }
        if !(r.labelSmoothing >= 0 && r.labelSmoothing < 1) { throw ValidationError("--label-smoothing: must be in [0, 1), not \(r.labelSmoothing)") }
        let w = r.learningRate.warmupEpochs
        if w < 0 || w > r.epochs { throw ValidationError("--warmup: must be in 0...\(r.epochs) (the epochs), not \(w)") }
        if r.threads < 1 || r.workers < 1 { throw ValidationError("--threads and --workers: must be at least 1") }
    }

    /// The options as a recipe: what was given, the recipe's defaults for the rest.
    func recipe() throws -> RunConfiguration.Recipe {
        var r = RunConfiguration.Recipe()
        for flag in Self.runFlags { try flag.apply(self, &r) }
        r.workers = workers ?? 1
        r.threads = threads ?? Processes.coresPerProcess
        return r
    }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        reportKernelChoice()
        let remoteOptions = try remote.options()
        let directory: URL
        var runConfiguration: RunConfiguration
        if let resume {
            directory = URL(fileURLWithPath: resume)
            do {
                runConfiguration = try RunConfiguration.load(from: directory)
            } catch TrainError.noRun {
                throw Failure.usage("--resume: \(resume) holds no run (no readable \(Trainer.configurationFile))")
            }
            // --workers and --threads given now win over the run's; under mpirun the default
            // threads follow this launch's processes per machine, not the first launch's.
            if let workers { runConfiguration.workers = workers }
            if threads != nil || Processes.distributed { runConfiguration.threads = threads ?? Processes.coresPerProcess }
        } else {
            directory = URL(fileURLWithPath: out!)
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(Trainer.checkpointFile).path) {
                throw Failure.usage("--out: \(out!) already holds a run (--resume \(out!) continues it)")
            }
            runConfiguration = try RunConfiguration.recipe(cache: cache!, try recipe(), remote: remoteOptions)
        }
        let group = try Processes.group()
        let quiet = self.quiet || !group.isRoot
        let trainer = try Trainer(configuration: runConfiguration, directory: directory, resume: resume != nil, group: group, remote: remoteOptions)
        let c = trainer.configuration
        if !quiet {
            let params = trainer.network.store.count
            print("run      \(directory.path): \(c.model.architecture) (\(params) parameters), \(c.schedule), \(c.epochs) epochs, batch \(c.batch), lr \(c.learningRate.base) \(c.learningRate.kind.rawValue)"
                  + (group.size > 1 ? ", \(group.size) processes × \(c.batch / group.size) images" : ""))
            if resume != nil { print("resuming at epoch \(trainer.loaderPosition.epoch), sample \(trainer.loaderPosition.cursor)") }
        }
        installInterruptHandler()
        let progress = ProgressLine(quiet: quiet, periodicLines: group.size > 1)
        defer { progress.finish() }
        // A remote cache: what this process fetched and waited for so far, on the progress line.
        let store = trainer.loader.cache.store
        let remoteStart = store?.statistics
        try trainer.run(progress: { p in
            var extra = String(format: "loss %.3f  %d img/s  size %d", p.loss, Int(p.imagesPerSecond), p.size)
            if let store, let remoteStart { extra += "  " + Self.describe(store.statistics.since(remoteStart)) }
            progress.update("epoch \(p.epoch + 1)/\(p.epochs)", done: p.step, total: p.steps, extra: extra, force: p.step == p.steps)
        }, onEpoch: { e in
            progress.finish()
            if !quiet {
                var line = String(format: "epoch %3d  loss %.4f  train %.2f%%  lr %.4g  %6.0f img/s  %5.1f s  sizes %@  MACs %.3g (total %.3g)",
                                  e.epoch + 1, e.loss, 100 * e.trainTop1, e.learningRate, e.imagesPerSecond, e.seconds,
                                  e.sizes.map(String.init).joined(separator: ",") as NSString, e.macs, e.cumulativeMacs)
                if let v = e.validationTop1, let s = e.validationSize { line += String(format: "  test@%d %.2f%%", s, 100 * v) }
                if let a = e.alpha { line += "  alpha " + a.map { String(format: "%.3f", $0) }.joined(separator: ",") }
                if let r = e.allreduceSeconds, let n = e.processes { line += String(format: "  %d processes, allreduce %.1f%%", n, 100 * r / max(e.seconds, 1e-9)) }
                if let r = e.remote { line += "  " + Self.describe(r) }
                print(line)
                fflush(nil)  // every output stream: the line shows now, also through a pipe
            }
        }, shouldStop: { interruptRequested })
        if !quiet {
            // Evaluation needs a test cache: the run's own, or one given to eval.
            let evaluate = "pyramid eval \(directory.path)" + (c.testCache == nil ? " --test TEST-CACHE" : "")
            print("done: \(directory.appendingPathComponent(Trainer.checkpointFile).path); evaluate with: \(evaluate)")
        }
    }

    /// "fetched 12.5 MiB (3 shards, 1 retry), waited 0.8 s": a remote cache's transfers.
    static func describe(_ r: RemoteStatistics) -> String {
        var line = "fetched \(formatBytes(r.bytesFetched)) (\(r.shardsFetched) shard\(r.shardsFetched == 1 ? "" : "s")"
        if r.retries > 0 { line += ", \(r.retries) retr\(r.retries == 1 ? "y" : "ies")" }
        return line + String(format: "), waited %.1f s", r.waitSeconds)
    }
}

/// The recipe's defaults, named in `pyramid train --help`.
private let defaults = RunConfiguration.Recipe()
