import ArgumentParser
import Foundation
import PyramidCache
import PyramidLoader

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a resolution schedule does, epoch by epoch, without reading a pixel.",
        discussion: """
            Per epoch: the size(s), steps, batch per size, images, and compute relative to a fixed \
            run at the schedule's full size with the same base batch (compute = rendered pixels, \
            which a CNN's multiply-adds follow). With a cache, its sample count and levels are used \
            and every size is checked; without one, give --samples.

            Schedules: \(ScheduleParser.syntax)

            Examples:
              pyramid plan fmnist.pyr --schedule trd:28,14,p=0.5 --epochs 10
              pyramid plan --samples 50000 --batch 64 --epochs 1 \\
                  --schedule mixsize:16,24,32,48@0.2,0.3,0.3,0.2,mode=D+,base=32
            """)

    @Argument(help: "A cache: a directory or s3://bucket/prefix (optional with --samples).")
    var cache: String?

    @OptionGroup(title: "Steps")
    var stream: StreamArguments

    @Option(parsing: .unconditional, help: "Epochs to plan.")
    var epochs: Int = 1

    @Option(parsing: .unconditional, help: "Samples per epoch, when no cache is given.")
    var samples: Int?

    @Option(name: .customLong("world-size"), parsing: .unconditional, help: "Ranks sharing each step.")
    var worldSize: Int = 1

    @Option(parsing: .unconditional, help: "Seed of the schedule's draws.")
    var seed: UInt64 = 0

    @Option(name: .customLong("flops"), parsing: .unconditional, help: "Compute of one image at the full size (any unit, e.g. 4.1 for ResNet-50's GFLOPs); prints the run's average per image, the papers' mFLOPs.")
    var flops: Double?

    @Flag(help: "List every step's size(s) too (with --json).")
    var steps = false

    @Flag(help: "Print JSON: schedule, samples, batch, worldSize, seed, baselineStepsPerEpoch, steps, images, relativeCompute, epochs (epoch, steps, images, relativeCompute, relativeSteps, sizes [size, steps, batch, duplicates], parallelSizes, note, stepSizes), and for TRD participation, realizedFraction, nominalRelativeCompute; averageFlopsPerImage with --flops.")
    var json = false

    func validate() throws {
        if cache == nil && samples == nil { throw ValidationError("give a cache or --samples N") }
        if let samples, let why = Bounds.check(samples, atMost: Bounds.samples) { throw ValidationError("--samples: \(why)") }
        if let why = Bounds.check(epochs, atMost: Bounds.epochs) { throw ValidationError("--epochs: \(why)") }
        if let batch = stream.batch, let why = Bounds.check(batch, atMost: Bounds.batchSize) { throw ValidationError("--batch: \(why)") }
        if let why = Bounds.check(worldSize, atMost: Bounds.worldSize) { throw ValidationError("--world-size: \(why)") }
        if let samples {
            let global = stream.batch ?? StreamArguments.defaultBatch
            let steps = samples / global
            if steps > Bounds.stepsPerEpoch {
                throw ValidationError("--samples: \(samples) in steps of \(global) is \(steps) steps per epoch, more than the \(Bounds.stepsPerEpoch) a plan lays out (a larger --batch)")
            }
            if steps * epochs > Bounds.plannedSteps {
                throw ValidationError("--epochs: \(epochs) epochs of \(steps) steps is more than the \(Bounds.plannedSteps) steps a plan lays out")
            }
        }
    }

    /// `--json`'s object (keys as named here; optional ones only when they apply).
    struct Report: Codable {
        struct Size: Codable { var size: Int, steps: Int, batch: Int, duplicates: Int }
        struct Epoch: Codable {
            var epoch: Int, steps: Int, images: Int, relativeCompute: Double, relativeSteps: Double
            /// Steps, batch and duplicates per size, largest first.
            var sizes: [Size]
            var parallelSizes: [Int]?
            var note: String?
            /// With --steps: every step's size(s).
            var stepSizes: [[Int]]?
            /// With a cache: record bytes read, by level, and bytes of the files the epoch opens.
            var bytesRead: Int?
            var bytesPerLevel: [String: Int]?
            var fileBytes: Int?
        }
        var schedule: String, samples: Int, batch: Int, worldSize: Int, seed: UInt64
        var baselineStepsPerEpoch: Int, steps: Int, images: Int, relativeCompute: Double
        var epochs: [Epoch]
        /// TRD only.
        var participation: Double?, realizedFraction: Double?, nominalRelativeCompute: Double?
        /// With --flops.
        var averageFlopsPerImage: Double?
        /// With a cache: record bytes read over the run, and bytes of the files its epochs open.
        var bytesRead: Int?
        var fileBytes: Int?
    }

    @OptionGroup(title: "Remote caches")
    var remote: RemoteArguments

    func run() throws {
        let remoteOptions = try remote.options()
        let manifest = try cache.map { try Manifest.load(location: $0, remote: remoteOptions) }
        let n = samples ?? manifest!.sampleCount
        let schedule = try stream.parsedSchedule(largestLevel: manifest?.levelSizes.max())
        let batch = try stream.batchPerProcess(worldSize)  // per rank: what each step's plan gives every rank
        if let manifest { for s in schedule.sizes { try Loader.checkServable(size: s, manifest: manifest) } }
        let summary = PlanSummary(schedule: schedule, sampleCount: n, epochs: epochs, batchSize: batch, worldSize: worldSize, seed: seed)
        let trd = summary.temporalDecrement
        let io = manifest.map { PlanIO(schedule: schedule, manifest: $0, epochs: epochs, batchSize: batch, worldSize: worldSize, seed: seed) }
        if json {
            let epochReports = summary.epochs.map { e in
                Report.Epoch(epoch: e.epoch, steps: e.steps, images: e.images, relativeCompute: e.relativeCompute, relativeSteps: e.relativeSteps,
                             sizes: e.stepsPerSize.keys.sorted(by: >).map { s in
                                 Report.Size(size: s, steps: e.stepsPerSize[s]!, batch: e.batchPerSize[s]!, duplicates: e.duplicatesPerSize[s]!)
                             },
                             parallelSizes: e.parallelSizes, note: e.note,
                             stepSizes: steps ? schedule.plan(PlanContext(epoch: e.epoch, epochs: epochs, images: n, batchSize: batch,
                                                                          worldSize: worldSize, seed: seed)).steps.map(\.sizes) : nil,
                             bytesRead: io?.epochs[e.epoch].bytes,
                             bytesPerLevel: io.map { Dictionary(uniqueKeysWithValues: $0.epochs[e.epoch].bytesPerLevel.map { (String($0.key), $0.value) }) },
                             fileBytes: io?.epochs[e.epoch].fileBytes)
            }
            return try printJSON(Report(schedule: schedule.description, samples: n, batch: batch, worldSize: worldSize, seed: seed,
                                        baselineStepsPerEpoch: summary.baselineSteps, steps: summary.steps, images: summary.images,
                                        relativeCompute: summary.relativeCompute, epochs: epochReports,
                                        participation: trd?.participation, realizedFraction: trd?.realizedFraction,
                                        nominalRelativeCompute: trd?.nominalRelativeCompute,
                                        averageFlopsPerImage: flops.map { $0 * summary.relativeCompute },
                                        bytesRead: io?.bytes, fileBytes: io?.fileBytes), pretty: true)
        }
        print("schedule  \(schedule)")
        print("data      \(n) samples, base batch \(batch) x \(worldSize) rank\(worldSize == 1 ? "" : "s"), seed \(seed)")
        print("baseline  fixed:\(schedule.referenceSize), \(summary.baselineSteps) steps/epoch")
        print("")
        print("epoch  steps   images  compute" + (io != nil ? "      reads" : "") + "  sizes (steps x batch[xduplicates])")
        for e in summary.epochs {
            let sizes: String
            if let p = e.parallelSizes {
                sizes = "parallel " + p.map(String.init).joined(separator: ",") + " x \(e.batchPerSize[p[0]]!)"
            } else {
                sizes = e.stepsPerSize.keys.sorted(by: >).map { s in
                    let d = e.duplicatesPerSize[s]!
                    return "\(s): \(e.stepsPerSize[s]!)x\(e.batchPerSize[s]!)" + (d > 1 ? "x\(d)" : "")
                }.joined(separator: "  ")
            }
            let reads = io.map { String(format: " %10@", formatBytes($0.epochs[e.epoch].bytes) as NSString) } ?? ""
            print(String(format: "%5d  %5d  %7d  %6.3fx", e.epoch, e.steps, e.images, e.relativeCompute) + reads + "  " + sizes + (e.note.map { "  (\($0))" } ?? ""))
        }
        print("")
        print(String(format: "total     %d steps (%.3fx the baseline's), %d images, compute %.4fx the baseline",
                     summary.steps, Double(summary.steps) / Double(max(1, summary.baselineSteps * epochs)), summary.images, summary.relativeCompute))
        if let io, let manifest {
            var perLevel: [Int: Int] = [:]
            for e in io.epochs { for (l, b) in e.bytesPerLevel { perLevel[l, default: 0] += b } }
            let levels = perLevel.sorted { $0.key > $1.key }.map { "\($0.key): \(formatBytes($0.value))" }.joined(separator: ", ")
            let whole = manifest.levels.reduce(0) { $0 + $1.bytes } * epochs
            print("reads     \(formatBytes(io.bytes)) of records (\(levels)); "
                  + String(format: "%.3fx", Double(io.bytes) / Double(max(whole, 1))) + " of reading every level each epoch")
            print(io.wholeFiles
                  ? "files     version \(manifest.formatVersion) cache: every shard file holds every level, so each epoch's reads and downloads move \(formatBytes(whole / max(epochs, 1))) (pyramid upgrade: a file per level)"
                  : "files     the epochs open \(formatBytes(io.fileBytes)) of level files in all (what a cold remote run fetches, each file once when it fits --cache-limit)")
        }
        if let trd {
            print(String(format: "TRD       p = %.2f nominal, %.2f realized (%d of %d epochs reduced); nominal compute (1-p)+p(r/R)^2 = %.4fx",
                         trd.participation, trd.realizedFraction, trd.reducedEpochs, epochs, trd.nominalRelativeCompute))
        }
        if let m = schedule as? MixSize, let settings = summary.mixSizeSettings {
            print("MixSize   \(m.mode.rawValue), \(m.sampling.rawValue), base \(m.baseSize); "
                  + settings.map { "\($0.size): B=\($0.batch) D=\($0.duplicates)" }.joined(separator: ", "))
        }
        if let flops {
            print(String(format: "compute   %.4g per image at full size -> %.4g on average (mFLOPs)", flops, flops * summary.relativeCompute))
            if let trd { print(String(format: "          paper's nominal mFLOPs: %.4g", flops * trd.nominalRelativeCompute)) }
        }
    }
}
