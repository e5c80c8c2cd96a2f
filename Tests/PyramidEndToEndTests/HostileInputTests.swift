import Foundation
import PyramidCache
import PyramidTrain
import PyramidTestSupport
import Synchronization
import Testing

/// What a hostile (or careless) user can hand the released tool: output paths that are devices,
/// FIFOs, links or directories; damaged checkpoints; labels that do not fit; manifests that point
/// outside the cache; negative numbers. Each case runs the real binary.
@Suite struct HostileInputTests {
    /// A 200-sample IDX cache at 16 px.
    static func smallCache(_ out: TempDirectory) throws -> String {
        let src = TempDirectory()
        try makeLargeIDX(src, count: 200)
        let cache = out.path("cache")
        let b = try Tool.run(["build", src.url.path, "--out", cache, "--levels", "16,8", "--quiet"])
        #expect(b.status == 0, "\(b.stderr)")
        return cache
    }

    static func fileType(_ path: String) -> mode_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47]

    // MARK: 1. A write never replaces what is not a regular file.

    @Test func exportToADeviceWritesIntoItAndNeverReplacesIt() throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let null = try Tool.run(["export", cache, "--grid", "4", "-o", "/dev/null"])
        #expect(null.status == 0, "\(null.stderr)")
        #expect(Self.fileType("/dev/null") == S_IFCHR, "/dev/null is no longer a device")
        let full = try Tool.run(["export", cache, "--grid", "4", "-o", "/dev/full"])
        #expect(full.status == 1 && full.stderr.contains("/dev/full") && full.stderr.contains("No space left on device"), "\(full.stderr)")
        #expect(!full.stdout.contains("wrote"), "\(full.stdout)")
        #expect(Self.fileType("/dev/full") == S_IFCHR, "/dev/full is no longer a device")
    }

    @Test func exportToAFIFOWritesThePNGIntoIt() throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let fifo = out.path("pipe")
        #expect(mkfifo(fifo, 0o600) == 0)
        // The reader: what comes out of the FIFO, collected on another thread.
        let received = Mutex<Data?>(nil)
        let reader = Thread {
            let data = FileHandle(forReadingAtPath: fifo)?.readDataToEndOfFile()
            received.withLock { $0 = data }
        }
        reader.start()
        let r = try Tool.run(["export", cache, "--grid", "4", "-o", fifo])
        #expect(r.status == 0, "\(r.stderr)")
        var got: Data?
        for _ in 0..<100 where got == nil {
            got = received.withLock { $0 }
            if got == nil { usleep(20_000) }
        }
        #expect(got.map { Array($0.prefix(4)) } == Self.pngSignature, "the FIFO's reader got no PNG")
        #expect(Self.fileType(fifo) == S_IFIFO, "the FIFO was replaced")
    }

    @Test func exportFollowsASymbolicLinkAndRefusesADirectory() throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let link = out.path("sheet.png")
        #expect(symlink("target/real.png", link) == 0)
        try FileManager.default.createDirectory(atPath: out.path("target"), withIntermediateDirectories: false)
        let r = try Tool.run(["export", cache, "--grid", "4", "-o", link])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.fileType(link) == S_IFLNK, "the link was replaced")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out.path("target/real.png"))).prefix(4)) == Self.pngSignature)

        let d = try Tool.run(["export", cache, "--grid", "4", "-o", out.path("target")])
        #expect(d.status == 1 && d.stderr == "Error: \(out.path("target")): is a directory; name a file to write\n", "\(d.stderr)")
        #expect(Self.fileType(out.path("target")) == S_IFDIR)
    }

    // MARK: 2. Checkpoints carry a checksum.

    @Test(arguments: [5_000, 50_000])
    func aFlippedByteInACheckpointIsNamedNotTrainedOn(offset: Int) throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let run = out.path("run")
        let t = try Tool.run(["train", cache, "--out", run, "--model", "resnet8", "--epochs", "1", "--batch", "50", "--test", cache, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let file = "\(run)/checkpoint.bin"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        try #require(bytes.count > offset)
        bytes[offset] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        for args in [["eval", run, "--sizes", "16"], ["train", "--resume", run, "--quiet"]] {
            let r = try Tool.run(args)
            #expect(r.status == 1, "\(args[0]): \(r.stdout) \(r.stderr)")
            #expect(r.stderr.contains("\(file): checksum mismatch") && r.stderr.contains("start the run again"), "\(args[0]): \(r.stderr)")
            #expect(!r.stdout.contains("top-1"), "\(args[0]) printed accuracies from a damaged checkpoint")
        }
    }

    /// A checkpoint written before checkpoints carried a checksum (version 1: no trailing XXH3) is still read.
    @Test func aVersion1CheckpointIsStillRead() throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let run = out.path("run")
        #expect(try Tool.run(["train", cache, "--out", run, "--model", "resnet8", "--epochs", "1", "--batch", "50", "--test", cache, "--quiet"]).status == 0)
        let url = URL(fileURLWithPath: "\(run)/checkpoint.bin")
        let current = try Checkpoint.read(from: url)
        // Version 1's layout: length, JSON header (formatVersion 1), values; nothing after them.
        var header = current.header
        header.formatVersion = 1
        let json = try JSONEncoder().encode(header)
        var v1 = Data()
        var length = UInt64(json.count).littleEndian
        v1.append(Data(bytes: &length, count: 8))
        v1.append(json)
        for block in [current.parameters, current.state, current.velocity] { block.withUnsafeBytes { v1.append(contentsOf: $0) } }
        try v1.write(to: url)
        let old = try Checkpoint.read(from: url)
        #expect(old.parameters == current.parameters && old.state == current.state && old.velocity == current.velocity)
        let e = try Tool.run(["eval", run, "--sizes", "16"])
        #expect(e.status == 0 && e.stdout.contains("16"), "\(e.stderr)")
        // A version 1 file has no checksum, but its sizes are still checked.
        try v1.prefix(v1.count - 4).write(to: url)
        let cut = try Tool.run(["eval", run, "--sizes", "16"])
        #expect(cut.status == 1 && cut.stderr.contains("holds") && cut.stderr.contains("bytes of values"), "\(cut.stderr)")
    }

    // MARK: 3. Labels that do not fit are one-line errors.

    @Test(arguments: ["99999999999", "-1", "2147483648", "\(1 << 20)", "-99999999999999999999999"])
    func aListLabelOutOfRangeNamesTheLine(label: String) throws {
        let src = TempDirectory(), out = TempDirectory()
        try makeTinyFolder(src)
        let list = src.path("list.txt")
        try "# images\ncat/0.jpg\t0\ndog/1.jpg\t\(label)\n".write(toFile: list, atomically: true, encoding: .utf8)
        let r = try Tool.run(["build", list, "--out", out.path("cache"), "--levels", "16", "--quiet"])
        #expect(r.status == 1, "\(label): \(r.stderr)")
        #expect(r.stderr == "Error: \(list):3: label \(label) is out of range (integer labels are 0 to \((1 << 20) - 1))\n", "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path("cache/manifest.json")))
    }

    // MARK: 4. A manifest cannot send readers outside the cache.

    @Test(arguments: ["../outside", "/tmp", "shard-00001", "shard-0", ""])
    func aShardNameOtherThanTheWritersIsAnInvalidManifest(name: String) throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        try FileManager.default.copyItem(atPath: "\(cache)/shard-00000", toPath: out.path("outside"))
        let url = URL(fileURLWithPath: "\(cache)/manifest.json")
        var manifest = try Manifest.load(from: URL(fileURLWithPath: cache))
        manifest.shards[0].name = name
        let encoder = JSONEncoder()
        try encoder.encode(manifest).write(to: url)
        for command in ["inspect", "verify"] {
            let r = try Tool.run([command, cache])
            #expect(r.status == 1, "\(command) \(name): \(r.stdout)")
            #expect(r.stderr == "Error: \(url.path): invalid manifest: shard 0 is named \(String(reflecting: name)), expected shard-00000\n", "\(r.stderr)")
        }
    }

    // MARK: 5. "The disk is full" only when it is.

    @Test func aFailedWriteSaysWhatTheSystemSaid() throws {
        let out = TempDirectory()
        let cache = try Self.smallCache(out)
        let r = try Tool.run(["export", cache, "--grid", "4", "-o", "/proc/nope.png"])
        #expect(r.status == 1, "\(r.stdout)")
        #expect(!r.stderr.contains("disk is full"), "\(r.stderr)")
        #expect(r.stderr.hasPrefix("Error: /proc/nope.png: cannot create: "), "\(r.stderr)")
        let missing = try Tool.run(["export", cache, "--grid", "4", "-o", out.path("no/such/dir/x.png")])
        #expect(missing.status == 1 && missing.stderr.contains("No such file or directory") && !missing.stderr.contains("disk is full"), "\(missing.stderr)")
    }

    // MARK: 6. Negative numbers are values.

    /// Every numeric option of every command (found by asking the tool: it refuses `abc` for them)
    /// takes `-3` as its value, to be refused by range or used, never "Missing value".
    @Test func everyNumericOptionTakesANegativeValue() throws {
        let dump = try Tool.run(["--experimental-dump-help"])
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var options: [(command: [String], name: String)] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["kind"] as? String == "option" {
                let names = (argument["names"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "long" }
                if let name = names.first?["name"] as? String { options.append((path, name)) }
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                walk(sub, path + [sub["commandName"] as? String ?? "?"])
            }
        }
        walk(try #require(root["command"] as? [String: Any]), [])
        var numeric = 0
        for (command, name) in options {
            let probe = try Tool.run(command + ["--\(name)", "abc"])
            // An enum option lists its values ("Please provide one of"); a number does not.
            guard probe.stderr.contains("The value 'abc' is invalid for '--\(name)"), !probe.stderr.contains("Please provide one of") else { continue }
            numeric += 1
            let r = try Tool.run(command + ["--\(name)", "-3"])
            #expect(!r.stderr.contains("Missing value for '--\(name)"), "\(command.joined(separator: " ")) --\(name) -3: \(r.stderr)")
        }
        #expect(numeric >= 40, "only \(numeric) numeric options found: the probe no longer tells them apart")
        let lr = try Tool.run(["train", "/nonexistent", "--out", "/tmp/pyramid-neg", "--lr", "-1"])
        #expect(lr.status == 64 && lr.stderr.hasPrefix("Error: --lr: must be a positive finite number, not -1.0"), "\(lr.stderr)")
    }
}
