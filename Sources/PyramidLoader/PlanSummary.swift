import PyramidCache

/// Compute and step accounting of a schedule over a run, without reading a pixel.
///
/// Compute is counted as rendered pixels (`Σ samples × s²` over every step and size), which is
/// what a convolutional network's multiply-adds scale with; it is reported relative to a
/// fixed-size run at the schedule's ``ResolutionSchedule/referenceSize`` with the same base batch
/// (the baseline every paper compares against).
public struct PlanSummary: Sendable {
    /// One epoch's accounting.
    public struct Epoch: Sendable, Codable, Equatable {
        public var epoch: Int
        public var steps: Int
        /// Stream positions served (images, before duplicates), all ranks.
        public var images: Int
        /// Steps per size, largest size first (for ``Parallel`` the key is the largest size).
        public var stepsPerSize: [Int: Int]
        /// Distinct per-rank batch sizes, in size order.
        public var batchPerSize: [Int: Int]
        /// Duplicates per size.
        public var duplicatesPerSize: [Int: Int]
        /// The sizes every step serves (``Parallel``), or nil.
        public var parallelSizes: [Int]?
        /// Compute relative to the fixed-size baseline epoch.
        public var relativeCompute: Double
        /// Steps relative to the baseline epoch.
        public var relativeSteps: Double
        public var note: String?
    }

    /// TRD's draws over the run: nominal and realized participation.
    public struct TemporalDecrementSummary: Codable, Equatable, Sendable {
        /// The nominal participation rate p.
        public var participation: Double
        /// The fraction of the run's epochs actually reduced.
        public var realizedFraction: Double
        /// The epochs reduced.
        public var reducedEpochs: Int
        /// The paper's nominal compute `(1−p) + p(r/R)²`, relative to the full size.
        public var nominalRelativeCompute: Double
    }

    /// MixSize's batch and duplicates at one size.
    public struct MixSizeSetting: Codable, Equatable, Sendable {
        public var size: Int, batch: Int, duplicates: Int
    }

    public var epochs: [Epoch]
    /// Set for a ``TemporalDecrement`` schedule.
    public var temporalDecrement: TemporalDecrementSummary?
    /// Set for a ``MixSize`` schedule: each size's batch and duplicates, in the schedule's order.
    public var mixSizeSettings: [MixSizeSetting]?
    /// Baseline (fixed reference size) steps per epoch.
    public var baselineSteps: Int
    /// Compute of the whole run relative to the baseline run.
    public var relativeCompute: Double { epochs.isEmpty ? 0 : epochs.reduce(0) { $0 + $1.relativeCompute } / Double(epochs.count) }
    /// Steps of the whole run.
    public var steps: Int { epochs.reduce(0) { $0 + $1.steps } }
    /// Images of the whole run.
    public var images: Int { epochs.reduce(0) { $0 + $1.images } }

    /// Accounts `epochs` epochs of `schedule` over `sampleCount` samples.
    public init(schedule: any ResolutionSchedule, sampleCount: Int, epochs: Int, batchSize: Int, worldSize: Int = 1, seed: UInt64 = 0) {
        func context(_ e: Int) -> PlanContext {
            PlanContext(epoch: e, epochs: epochs, images: sampleCount, batchSize: batchSize, worldSize: worldSize, seed: seed)
        }
        let baseline = Fixed(size: schedule.referenceSize).plan(context(0))
        baselineSteps = baseline.steps.count
        let baseWork = max(baseline.pixelWork, 1)
        self.epochs = (0..<epochs).map { e in
            let plan = schedule.plan(context(e))
            var steps: [Int: Int] = [:], batch: [Int: Int] = [:], dup: [Int: Int] = [:]
            var parallel: [Int]?
            for s in plan.steps {
                let key = s.sizes[0]
                steps[key, default: 0] += 1
                batch[key] = s.batchSize
                dup[key] = s.duplicates
                if s.sizes.count > 1 { parallel = s.sizes }
            }
            return Epoch(epoch: e, steps: plan.steps.count, images: plan.images, stepsPerSize: steps, batchPerSize: batch,
                         duplicatesPerSize: dup, parallelSizes: parallel, relativeCompute: plan.pixelWork / baseWork,
                         relativeSteps: Double(plan.steps.count) / Double(max(1, baseline.steps.count)), note: plan.note)
        }
        if let trd = schedule as? TemporalDecrement {
            temporalDecrement = TemporalDecrementSummary(
                participation: trd.participation, realizedFraction: trd.realizedFraction(epochs: epochs, seed: seed),
                reducedEpochs: self.epochs.filter { $0.note == "reduced" }.count, nominalRelativeCompute: trd.nominalRelativeCost)
        }
        if let mix = schedule as? MixSize {
            mixSizeSettings = mix.sizes.map { s in
                let (b, d) = mix.setting(for: s, baseBatch: batchSize)
                return MixSizeSetting(size: s, batch: b, duplicates: d)
            }
        }
    }
}

/// The bytes a schedule reads from a cache, per epoch and level, without reading any: each
/// image served at a size reads one record of the level that size is rendered from (the
/// smallest stored level at least that size), a level's mean record being its bytes over the
/// samples. In a version 3 cache that is what is read from disk (each level a file of its own);
/// a remote run fetches the level files its epoch uses, once each when they fit the local limit.
/// In versions 1 and 2 every level shares each shard's file, so a read or a download moves every
/// level: ``wholeFiles`` is then the cache's size for every epoch.
public struct PlanIO: Sendable, Codable, Equatable {
    public struct Epoch: Sendable, Codable, Equatable {
        public var epoch: Int
        /// Record bytes read, by level size.
        public var bytesPerLevel: [Int: Int]
        public var bytes: Int { bytesPerLevel.values.reduce(0, +) }
        /// Bytes of the files this epoch opens (version 3: the used levels' files; versions 1,
        /// 2: every shard's whole file): what a cold remote epoch fetches.
        public var fileBytes: Int
    }
    public var epochs: [Epoch]
    /// True for a version 1/2 cache: every read moves every level.
    public var wholeFiles: Bool
    public var bytes: Int { epochs.reduce(0) { $0 + $1.bytes } }
    public var fileBytes: Int { epochs.reduce(0) { $0 + $1.fileBytes } }

    /// Accounts `epochs` epochs of `schedule` on the cache described by `manifest`.
    public init(schedule: any ResolutionSchedule, manifest: Manifest, epochs: Int, batchSize: Int, worldSize: Int = 1, seed: UInt64 = 0) {
        let levels = manifest.levelSizes
        let n = max(manifest.sampleCount, 1)
        func source(_ size: Int) -> Int { levels.filter { $0 >= size }.min() ?? levels.max() ?? size }
        let levelBytes = Dictionary(uniqueKeysWithValues: manifest.levels.map { ($0.size, $0.bytes) })
        wholeFiles = !manifest.hasLevelFiles
        let total = manifest.levels.reduce(0) { $0 + $1.bytes }
        self.epochs = (0..<epochs).map { e in
            let plan = schedule.plan(PlanContext(epoch: e, epochs: epochs, images: manifest.sampleCount, batchSize: batchSize,
                                                 worldSize: worldSize, seed: seed))
            var images: [Int: Int] = [:]
            for step in plan.steps {
                for level in Set(step.sizes.map(source)) { images[level, default: 0] += step.globalImages }
            }
            var perLevel: [Int: Int] = [:]
            for (level, count) in images { perLevel[level] = Int((Double(levelBytes[level] ?? 0) * Double(count) / Double(n)).rounded()) }
            let files = manifest.hasLevelFiles ? images.keys.reduce(0) { $0 + (levelBytes[$1] ?? 0) } : total
            return Epoch(epoch: e, bytesPerLevel: perLevel, fileBytes: files)
        }
    }
}
