import Foundation
import PyramidCache
import PyramidTestSupport
import PyramidTrain
import Testing

/// The trainer's kernels exist once per instruction set (`InstructionSet`); a run must not depend
/// on which of them the CPU picks.
@Suite struct InstructionSetEndToEndTests {
    /// `pyramid train` under `PYRAMID_KERNELS=baseline`, `avx2` and `avx512` (those this CPU has):
    /// the same checkpoint bit for bit and the same log. ResNet-8 on 16 and 12 px with two
    /// threads goes through every kernel: Winograd at 16x16, 12x12 and 8x8, "same" im2col at 6x6
    /// and below, strided im2col, BatchNorm with and without its ReLU, residual sums, and the
    /// evaluation's BatchNorm.
    @Test func trainingGivesTheSameBitsOnEveryInstructionSet() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 400)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,12", "--quiet"])
        try #require(b.status == 0, "\(b.stderr)")
        let recipe = ["--model", "resnet8", "--schedule", "trd:16,12,p=0.5", "--epochs", "2", "--batch", "40", "--seed", "5",
                      "--threads", "2", "--quiet"]
        let versions = InstructionSet.supported
        for isa in versions {
            var env = ProcessInfo.processInfo.environment
            env["PYRAMID_KERNELS"] = isa.rawValue
            let r = try runTool(["train", cache, "--out", out.path(isa.rawValue)] + recipe, environment: env).output
            #expect(r.status == 0, "\(isa): \(r.stderr)")
            #expect(!r.stderr.contains("PYRAMID_KERNELS"), "\(isa): \(r.stderr)")
        }
        let first = try Checkpoint.read(from: URL(fileURLWithPath: out.path("\(versions[0].rawValue)/checkpoint.bin")))
        for isa in versions.dropFirst() {
            let c = try Checkpoint.read(from: URL(fileURLWithPath: out.path("\(isa.rawValue)/checkpoint.bin")))
            #expect(c.parameters == first.parameters && c.state == first.state && c.velocity == first.velocity, "\(isa) against \(versions[0])")
            #expect(try RemoteCacheTests.logWithoutClocks(out.path(isa.rawValue)) == RemoteCacheTests.logWithoutClocks(out.path(versions[0].rawValue)))
        }
        // A version the CPU lacks, or a misspelt one, is named on standard error and the best one runs.
        var env = ProcessInfo.processInfo.environment
        env["PYRAMID_KERNELS"] = "avx9"
        let r = try runTool(["bench", "train", "--model", "resnet8", "--sizes", "8", "--batch", "4", "--steps", "1"], environment: env).output
        #expect(r.status == 0 && r.stderr.contains("PYRAMID_KERNELS=avx9 is not one of baseline, avx2, avx512; using \(versions.last!.rawValue)"),
                "\(r.stderr)")
        #expect(r.stdout.contains("kernels: \(versions.last!.rawValue)"), "\(r.stdout)")
    }
}
