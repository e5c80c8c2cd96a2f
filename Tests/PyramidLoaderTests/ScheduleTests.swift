import Foundation
import Testing
@testable import PyramidLoader

@Suite struct ScheduleTests {
    // docs/design.md, "TRD": mFLOPs = (1−p)·F(R) + p·F(r), with the paper's numbers.
    @Test(arguments: [
        (4.1, 224, 112, 0.5, 2.56), (4.1, 224, 84, 0.5, 2.34), (4.1, 224, 56, 0.9, 0.64),
        (90.3, 32, 16, 0.3, 69.98), (90.3, 32, 16, 0.5, 56.4),
    ])
    func trdNominalCostMatchesThePaper(flops: Double, full: Int, reduced: Int, p: Double, expected: Double) {
        let trd = TemporalDecrement(full: full, reduced: reduced, participation: p)
        #expect(abs(flops * trd.nominalRelativeCost / expected - 1) < 0.002)
    }

    @Test func trdEpochsFollowTheDrawGuardsAndFinalEpochs() {
        let trd = TemporalDecrement(full: 28, reduced: 14, participation: 0.5, milestones: [10, 20])
        let seed: UInt64 = 7, epochs = 30
        var reduced = 0
        for e in 0..<epochs {
            let drawn = trd.draw(epoch: e, seed: seed) < 0.5
            let guarded = (8...11).contains(e) || (18...21).contains(e)
            let final = e >= 28
            let plan = trd.plan(PlanContext(epoch: e, epochs: epochs, images: 1000, batchSize: 100, seed: seed))
            let expected = drawn && !guarded && !final ? 14 : 28
            #expect(plan.steps.count == 10)
            #expect(plan.steps.allSatisfy { $0.sizes == [expected] && $0.batchSize == 100 }, "epoch \(e)")
            #expect(trd.decision(epoch: e, epochs: epochs, seed: seed) == (!drawn ? .full : guarded ? .guarded : final ? .final : .reduced))
            if expected == 14 { reduced += 1 }
        }
        #expect(trd.realizedFraction(epochs: epochs, seed: seed) == Double(reduced) / Double(epochs))
        // The draw is a pure function of (seed, epoch), not of the guards.
        let plain = TemporalDecrement(full: 28, reduced: 14, participation: 0.5, finalFullEpochs: 0)
        #expect((0..<epochs).allSatisfy { plain.draw(epoch: $0, seed: seed) == trd.draw(epoch: $0, seed: seed) })
    }

    @Test func trdRealizedFractionIsNearP() {
        let trd = TemporalDecrement(full: 28, reduced: 14, participation: 0.3, finalFullEpochs: 0)
        let n = 4000
        let f = trd.realizedFraction(epochs: n, seed: 1)
        let sigma = (0.3 * 0.7 / Double(n)).squareRoot()
        #expect(abs(f - 0.3) < 4 * sigma, "realized \(f)")
    }

    // docs/design.md, "MixSize": CIFAR, N=50,000, B₀=64, sizes 16,24,32,48 @ 0.2,0.3,0.3,0.2.
    @Test func mixSizeCIFARTable() throws {
        let ctx = PlanContext(epoch: 0, images: 50_000, batchSize: 64, seed: 3)
        let baseline = Fixed(size: 32).plan(ctx)
        #expect(baseline.steps.count == 781)
        let bPlus = try #require(try ScheduleParser.parse("mixsize:16,24,32,48@0.2,0.3,0.3,0.2,mode=B+,base=32") as? MixSize)
        #expect([16, 24, 32, 48].map { bPlus.setting(for: $0, baseBatch: 64).batch } == [256, 114, 64, 28])
        let pb = bPlus.plan(ctx)
        #expect(pb.steps.count == 761)
        let work = pb.pixelWork / baseline.pixelWork
        #expect(abs(work - 0.97) < 0.005, "B+ work \(work)")
        let dPlus = try #require(try ScheduleParser.parse("mixsize:16,24,32,48@0.2,0.3,0.3,0.2,mode=D+,base=32") as? MixSize)
        #expect([16, 24, 32, 48].map { dPlus.setting(for: $0, baseBatch: 64) }.map { [$0.batch, $0.duplicates] } == [[64, 4], [64, 2], [64, 1], [28, 1]])
        let pd = dPlus.plan(ctx)
        #expect(pd.steps.count == 981)
        #expect(abs(pd.pixelWork / baseline.pixelWork - 1.29) < 0.01)
        // B+ keeps B·s² about constant.
        for s in [16, 24, 32, 48] {
            let b = bPlus.setting(for: s, baseBatch: 64).batch
            #expect(abs(Double(b * s * s) / Double(64 * 32 * 32) - 1) < 0.03)
        }
    }

    // docs/design.md, "MixSize", ImageNet: 256 per step (64 per device × 4), N = 1,281,167.
    @Test(arguments: [
        ("mixsize:128,160,192,224,256,288,320@0.1333333333,0.1333333333,0.1333333333,0.2,0.1333333333,0.1333333333,0.1333333334,mode=B+", 1.08, 1.08),
        ("mixsize:128,160,192,224,256,288,320@0.1333333333,0.1333333333,0.1333333333,0.2,0.1333333333,0.1333333333,0.1333333334,mode=D+", 1.14, 1.23),
        ("mixsize:256,224,128,96@0.1,0.1,0.6,0.2,mode=B+", 0.46, 0.46),
        ("mixsize:256,224,128,96@0.1,0.1,0.6,0.2,mode=D+", 1.00, 1.00),
    ])
    func mixSizeImageNetTable(spec: String, steps: Double, work: Double) throws {
        let schedule = try ScheduleParser.parse(spec + ",base=224")
        let ctx = PlanContext(epoch: 0, images: 1_281_167, batchSize: 64, worldSize: 4, seed: 1)
        let baseline = Fixed(size: 224).plan(ctx)
        let plan = schedule.plan(ctx)
        let stepRatio = Double(plan.steps.count) / Double(baseline.steps.count)
        let workRatio = plan.pixelWork / baseline.pixelWork
        #expect(abs(stepRatio - steps) < 0.01, "steps \(stepRatio)")
        #expect(abs(workRatio - work) < 0.01, "work \(workRatio)")
    }

    @Test func mixSizePartitionIsDeterministicAndInterleaved() throws {
        let m = try ScheduleParser.parse("mixsize:14,21,28,42@0.2,0.3,0.3,0.2", largestLevel: 28)
        #expect((m as? MixSize)?.baseSize == 28)
        let ctx = PlanContext(epoch: 4, images: 60_000, batchSize: 128, seed: 9)
        let a = m.plan(ctx), b = m.plan(ctx)
        #expect(a == b)
        var other = ctx; other.epoch = 5
        #expect(a.steps.map(\.sizes) != m.plan(other).steps.map(\.sizes))
        // Steps are contiguous in the stream and never overlap: every image at most once.
        var cursor = 0
        for s in a.steps { #expect(s.cursor == cursor); cursor += s.globalImages }
        #expect(a.endCursor <= 60_000)
        // Not sorted by size: the sizes are interleaved.
        #expect(a.steps.map { $0.sizes[0] } != a.steps.map { $0.sizes[0] }.sorted())
    }

    /// Without drop-last (evaluation, drop_last=False) MixSize serves every image exactly once,
    /// on one rank or several, also when a size's batch is larger than its group; with drop-last
    /// the plan says how many it leaves out.
    @Test(arguments: ["mixsize:14,20,28@0.3,0.3,0.4", "mixsize:14,20,28@0.3,0.3,0.4,sampling=iid", "mixsize:14,28@0.01,0.99"])
    func mixSizeWithoutDropLastServesEveryImageOnce(schedule: String) throws {
        let m = try ScheduleParser.parse(schedule, largestLevel: 28)
        for (images, batch, world) in [(2_000, 32, 1), (2_000, 32, 2), (60_000, 128, 3), (37, 64, 2)] {
            let context = PlanContext(epoch: 1, images: images, batchSize: batch, worldSize: world, seed: 4, dropLast: false)
            let plan = m.plan(context)
            #expect(plan.images == images, "\(schedule): \(plan.images) of \(images) (batch \(batch), world \(world))")
            #expect(plan.note == nil)
            // Every stream position exactly once over all ranks.
            var served = [Int](repeating: 0, count: images)
            for step in plan.steps {
                #expect(step.globalImages > 0)
                for r in 0..<world {
                    for p in Sampler.positions(cursor: step.cursor, batchSize: step.batchSize, rank: r, worldSize: world, available: step.globalImages) {
                        served[p] += 1
                    }
                }
            }
            #expect(served.allSatisfy { $0 == 1 }, "\(schedule): \(served.filter { $0 != 1 }.count) positions not served once")
            var training = context; training.dropLast = true
            let dropped = m.plan(training)
            #expect(dropped.images <= images)
            if dropped.images < images { #expect(dropped.note?.hasPrefix("\(images - dropped.images) of \(images) images left out") == true, "\(dropped.note ?? "no note")") }
        }
    }

    /// What callers ask of a schedule is a property of the protocol (no downcasts): a custom
    /// schedule can say it serves every sample at all sizes.
    @Test func whatCallersAskIsAPropertyOfTheProtocol() throws {
        struct EverySize: ResolutionSchedule {
            var sizes: [Int] { [28, 14] }
            var referenceSize: Int { 28 }
            var description: String { "every-size" }
            var parallelSizes: [Int]? { sizes }
            func plan(_ context: PlanContext) -> EpochPlan { EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: sizes), context: context) }
        }
        struct Plain: ResolutionSchedule {
            var sizes: [Int] { [28] }
            var referenceSize: Int { 28 }
            var description: String { "plain" }
            func plan(_ context: PlanContext) -> EpochPlan { EpochPlan(epoch: context.epoch, steps: context.uniformSteps(sizes: sizes), context: context) }
        }
        #expect(EverySize().parallelSizes == [28, 14] && Plain().parallelSizes == nil && !Plain().varyingBatch)
        #expect(try ScheduleParser.parse("parallel:14,28").parallelSizes == [28, 14])
        #expect(try ScheduleParser.parse("mixsize:14,28@0.5,0.5", largestLevel: 28).varyingBatch)
        #expect(try ScheduleParser.parse("fixed:28").parallelSizes == nil)
        let trd = try ScheduleParser.parse("trd:28,14,p=0.5")
        #expect((trd.aligned(withMilestones: [30, 60]) as? TemporalDecrement)?.milestones == [30, 60])
        let given = try ScheduleParser.parse("trd:28,14,p=0.5,milestones=10+20")
        #expect((given.aligned(withMilestones: [30, 60]) as? TemporalDecrement)?.milestones == [10, 20])
        #expect(Plain().aligned(withMilestones: [3]).description == "plain")
    }

    @Test func mixSizeIndependentDrawsFollowTheProbabilities() throws {
        let m = try ScheduleParser.parse("mixsize:14,28@0.5,0.5,sampling=iid,mode=D+,base=28")
        let plan = m.plan(PlanContext(epoch: 0, images: 200_000, batchSize: 10, seed: 2))
        let small = plan.steps.filter { $0.sizes == [14] }.count
        let fraction = Double(small) / Double(plan.steps.count)
        #expect(abs(fraction - 0.5) < 0.02)
        #expect(plan.images <= 200_000 && plan.images > 200_000 - 10)
        #expect(plan.steps.allSatisfy { $0.sizes != [14] || $0.duplicates == 4 })
    }

    // docs/study.md: an RS-Nets step costs Σ_s (s/R)² of a full-size step.
    @Test(arguments: [("parallel:28,24,20,16,12", 2.755), ("parallel:224,192,160,128,96", 2.755), ("parallel:32,28,24,20,16", 2.969)])
    func parallelStepCost(spec: String, cost: Double) throws {
        let p = try ScheduleParser.parse(spec)
        let ctx = PlanContext(epoch: 0, images: 10_000, batchSize: 100)
        let ratio = p.plan(ctx).pixelWork / Fixed(size: p.referenceSize).plan(ctx).pixelWork
        #expect(abs(ratio - cost) < 0.001, "\(ratio)")
    }

    @Test func parallelAndProgressive() throws {
        let p = try ScheduleParser.parse("parallel:12,28,20,16,24")
        #expect(p.sizes == [28, 24, 20, 16, 12])
        #expect(p.plan(PlanContext(epoch: 0, images: 1000, batchSize: 64)).steps.allSatisfy { $0.sizes == [28, 24, 20, 16, 12] })
        let g = try #require(try ScheduleParser.parse("progressive:16,28,start=2,end=8") as? Progressive)
        // FFCV: np.interp, then np.round (half to even) to a multiple: 18→16, 22→24, 26→24.
        #expect((0...10).map { g.size(epoch: $0) } == [16, 16, 16, 16, 20, 24, 24, 24, 28, 28, 28])
    }

    @Test(arguments: [
        ("28", "expected KIND:ARGUMENTS"),
        ("fixed:", "empty item"),
        ("fixed:0", "not a positive size"),
        ("fixed:28,14", "one size"),
        ("trd:28,14", "p= (participation rate) is required"),
        ("trd:14,28,p=0.5", "must be smaller"),
        ("trd:28,14,p=1.5", "in 0...1"),
        ("trd:28,14,p=0.5,milestones=a", "milestones"),
        ("trd:28,14,p=0.5,speed=2", "unknown option speed="),
        ("mixsize:14,28", "sizes@probabilities"),
        ("mixsize:14,28@0.5", "2 sizes but 1 probabilities"),
        ("mixsize:14,28@0.5,0.6", "add up to"),
        ("mixsize:14,28@0.5,0.5,mode=C+", "expected B+ or D+"),
        ("parallel:28,28", "listed twice"),
        ("progressive:16,28,start=3", "end= is required"),
        ("warp:28", "unknown kind"),
    ])
    func malformedSchedulesAreNamed(spec: String, message: String) {
        #expect {
            _ = try ScheduleParser.parse(spec)
        } throws: { error in
            let text = "\(error)"
            return text.contains(message) && text.contains(spec)
        }
    }
}
