import Foundation
import PyramidCache
import PyramidImageTestSupport
import PyramidTestSupport
import Testing

/// A small tmpfs that can be grown: a full disk made on demand (needs root, as CI and the
/// developers' machines run; skipped where mounting is not allowed).
final class SmallDisk {
    let path: String
    init?(kilobytes: Int) {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("pyramid-full-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard Self.mount(["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", path]) else { return nil }
    }
    func grow(kilobytes: Int) -> Bool { Self.mount(["-o", "remount,size=\(kilobytes)k", path]) }
    deinit {
        _ = Self.run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }
    static func mount(_ args: [String]) -> Bool { run("/bin/mount", args) }
    static func run(_ tool: String, _ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
    static let available: Bool = SmallDisk(kilobytes: 64) != nil
    /// Files left behind by failed atomic writes.
    func leftovers() -> [String] {
        (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).filter { $0.contains(".tmp") }
    }
}

@Suite(.enabled(if: SmallDisk.available, "mounting a tmpfs needs root")) struct FullDiskTests {
    @Test func aBuildOnAFullDiskSaysSoAndResumesOnceThereIsRoom() throws {
        let src = TempDirectory()
        try makeLargeIDX(src, count: 3000)
        let disk = try #require(SmallDisk(kilobytes: 512))
        let cache = "\(disk.path)/cache"
        let args = ["build", src.url.path, "--out", cache, "--levels", "28,14", "--quiet"]
        let r = try Tool.run(args)
        #expect(r.status == 1 && r.stderr.contains("the disk is full"), "\(r.stderr)")
        #expect(!r.stderr.contains("Input/output error"), "\(r.stderr)")
        #expect(disk.leftovers().isEmpty, "\(disk.leftovers())")
        #expect(disk.grow(kilobytes: 64 << 10))
        let resumed = try Tool.run(args + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Tool.run(["verify", cache, "--quiet"]).status == 0)
    }

    @Test func aRunWhoseFirstCheckpointDidNotFitResumes() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 200)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16", "--quiet"]).status == 0)
        let disk = try #require(SmallDisk(kilobytes: 256))
        let run = "\(disk.path)/run"
        let t = try Tool.run(["train", cache, "--out", run, "--model", "resnet8", "--epochs", "1", "--batch", "20", "--quiet"])
        #expect(t.status == 1 && t.stderr.contains("the disk is full"), "\(t.stderr)")
        #expect(disk.leftovers().isEmpty, "\(disk.leftovers())")
        #expect(disk.grow(kilobytes: 16 << 10))
        let resumed = try Tool.run(["train", "--resume", run, "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let log = try String(contentsOfFile: "\(run)/log.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 1)
    }

    @Test func anExportOnAFullDiskLeavesNoTruncatedPNG() throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeLargeIDX(src, count: 400)
        let cache = out.path("cache")
        #expect(try Tool.run(["build", src.url.path, "--out", cache, "--levels", "28,24,20,16", "--quiet"]).status == 0)
        let disk = try #require(SmallDisk(kilobytes: 16))
        let png = "\(disk.path)/sheet.png"
        let e = try Tool.run(["export", cache, "--grid", "400", "-o", png])
        #expect(e.status == 1 && e.stderr.contains("the disk is full"), "\(e.stderr)")
        #expect(!FileManager.default.fileExists(atPath: png))
        #expect(disk.leftovers().isEmpty, "\(disk.leftovers())")
    }
}
