import Testing
@testable import PyramidLoader

@Suite struct SamplerTests {
    @Test func orderIsAPermutationAndAPureFunctionOfSeedAndEpoch() {
        let s = Sampler(sampleCount: 1000, seed: 42)
        let a = s.order(epoch: 3)
        #expect(Set(a).count == 1000 && a.min() == 0 && a.max() == 999)
        #expect(a == Sampler(sampleCount: 1000, seed: 42).order(epoch: 3))
        #expect(a != s.order(epoch: 4))
        #expect(a != Sampler(sampleCount: 1000, seed: 43).order(epoch: 3))
        #expect(Sampler(sampleCount: 10, seed: 1, shuffle: false).order(epoch: 5) == (0..<10).map(Int32.init))
    }

    @Test(arguments: [1, 2, 3, 4])
    func ranksAreDisjointEqualAndCovering(worldSize: Int) {
        // Training: full steps only.
        let batch = 7, n = 200
        let steps = n / (batch * worldSize)
        var seen: [Int] = []
        for k in 0..<steps {
            var shares: [Int] = []
            for r in 0..<worldSize {
                let p = Sampler.positions(cursor: k * batch * worldSize, batchSize: batch, rank: r, worldSize: worldSize, available: batch * worldSize)
                #expect(p.count == batch)
                shares.append(p.count)
                seen += Array(p)
            }
        }
        #expect(seen == Array(0..<(steps * batch * worldSize)))
        // Evaluation: the partial last step is split, sizes differing by at most one.
        let available = n - steps * batch * worldSize
        if available > 0 {
            let parts = (0..<worldSize).map { Sampler.positions(cursor: n - available, batchSize: batch, rank: $0, worldSize: worldSize, available: available) }
            #expect(parts.flatMap { Array($0) } == Array((n - available)..<n))
            let counts = parts.map(\.count)
            #expect(counts.max()! - counts.min()! <= 1)
        }
    }

    @Test func boundedIntegersAreUniform() {
        var rng = SplitMix64(seed: 5)
        var hist = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { hist[rng.nextInt(below: 6)] += 1 }
        #expect(hist.allSatisfy { abs($0 - 10_000) < 400 }, "\(hist)")
    }
}
