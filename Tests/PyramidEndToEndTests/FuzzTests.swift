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
        let original = try Data(contentsOf: URL(fileURLWithPath: "\(pristine)/shard-00000/level-24.mdb"))
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
            try Data(bytes).write(to: URL(fileURLWithPath: "\(cache)/shard-00000/level-24.mdb"))
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

    /// List files with hostile labels (huge, negative, empty, signs, spaces, non-ASCII, control
    /// characters): `pyramid build` ends with 0 (labels taken as class names, a bad line skipped)
    /// or 1 with one line naming the file and line, never a signal.
    @Test func buildNeverDiesOfAListFilesLabels() throws {
        let seed: UInt64 = 20261203
        print("buildNeverDiesOfAListFilesLabels: seed \(seed)")
        var rng = SeededGenerator(seed: seed)
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let pieces = ["99999999999", "-1", "-0", "+3", "", " ", "猫", "ÄÖ", "9223372036854775807", "9223372036854775808",
                      "-9223372036854775808", "1048575", "1048576", "2147483647", "\u{7}", "0x10", "1e3", "٣", "1 2", "#"]
        var outcomes: [Int32: Int] = [:]
        for trial in 0..<16 {
            let labels = (0..<4).map { _ in pieces.randomElement(using: &rng)! }
            let lines = labels.enumerated().map { "\(["cat", "dog"][$0.offset % 2])/\($0.offset).jpg\t\($0.element)" }
            let list = src.path("list-\(trial).txt")
            try lines.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
            let (p, o, e) = try Tool.start(["build", list, "--out", out.path("c-\(trial)"), "--levels", "8", "--quiet"])
            let r = Tool.finish(p, o, e)
            #expect(p.terminationReason == .exit && (r.status == 0 || r.status == 1), "trial \(trial) \(labels): \(r.stderr)")
            if r.status == 1 {
                #expect(r.stderr.hasPrefix("Error: \(list)") && r.stderr.split(separator: "\n").count == 1, "trial \(trial) \(labels): \(r.stderr)")
            }
            outcomes[r.status, default: 0] += 1
        }
        print("buildNeverDiesOfAListFilesLabels: exit statuses \(outcomes)")
        #expect(outcomes[0] != nil && outcomes[1] != nil, "every trial ended the same way: the labels did not vary enough")
    }
}
