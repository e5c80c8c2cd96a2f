import Foundation
import PyramidCache
import PyramidImageTestSupport
import PyramidTestSupport
import Testing

/// Random damage to a real cache's files: `pyramid verify` (the real binary, in a child process of
/// the test) ends with exit status 0 or 1, never by a signal, whatever bytes are flipped or cut.
@Suite struct FuzzTests {
    @Test func verifyNeverDiesOfADamagedShard() throws {
        let seed: UInt64 = 20261130
        print("verifyNeverDiesOfADamagedShard: seed \(seed)")
        var rng = SeededGenerator(seed: seed)
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let pristine = out.path("pristine")
        #expect(try Tool.run(["build", src.url.path, "--out", pristine, "--levels", "32,24,16", "--quiet"]).status == 0)
        let original = try Data(contentsOf: URL(fileURLWithPath: "\(pristine)/shard-00000/data.mdb"))
        var outcomes: [Int32: Int] = [:]
        for trial in 0..<24 {
            let cache = out.path("trial-\(trial)")
            try? FileManager.default.removeItem(atPath: cache)
            try FileManager.default.copyItem(atPath: pristine, toPath: cache)
            var bytes = [UInt8](original)
            let what: String
            if trial % 4 == 3 {
                let keep = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.removeSubrange(keep...)
                what = "cut to \(keep) bytes"
            } else {
                // A few flips anywhere: page headers, branch pages, free space and records alike.
                let flips = (0..<Int.random(in: 1...8, using: &rng)).map { _ in Int.random(in: 0..<bytes.count, using: &rng) }
                for i in flips { bytes[i] ^= UInt8.random(in: 1...255, using: &rng) }
                what = "bytes \(flips) flipped"
            }
            try Data(bytes).write(to: URL(fileURLWithPath: "\(cache)/shard-00000/data.mdb"))
            let (p, o, e) = try Tool.start(["verify", cache, "--quiet"])
            let r = Tool.finish(p, o, e)
            #expect(p.terminationReason == .exit && (r.status == 0 || r.status == 1),
                    "trial \(trial) (\(what)): \(p.terminationReason == .exit ? "exit" : "signal") \(r.status) \(r.stderr)")
            outcomes[r.status, default: 0] += 1
            try? FileManager.default.removeItem(atPath: cache)
        }
        print("verifyNeverDiesOfADamagedShard: exit statuses \(outcomes)")
        #expect((outcomes[1] ?? 0) > 0, "no trial was detected as damaged: the damage did not reach the data")
    }
}
