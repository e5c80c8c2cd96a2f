import Foundation
import PyramidLoader
import PyramidTestSupport
import Testing
@testable import PyramidTrain

/// run.json and checkpoints are read version first; a newer version is refused naming the file and both versions.
@Suite struct SavedStateTests {
    func configuration() -> RunConfiguration {
        RunConfiguration(cache: "/data/cache", model: .init(architecture: "resnet8", inputChannels: 1, classes: 3),
                         schedule: "parallel:16,12", epochs: 2, batch: 8, learningRate: .init(kind: .cosine, base: 0.1),
                         distillation: .vanilla, corruptRecords: .substitute, sharedBatchNorm: true)
    }

    @Test func runConfigurationRoundTripsWithItsVersion() throws {
        let dir = TempDirectory()
        let c = configuration()
        try c.save(in: dir.url)
        let text = try String(contentsOf: dir.url.appendingPathComponent(Trainer.configurationFile), encoding: .utf8)
        #expect(text.contains("\"formatVersion\" : \(RunConfiguration.currentFormatVersion)"))
        #expect(try RunConfiguration.load(from: dir.url) == c)
    }

    /// A run.json of version 1 (no formatVersion; the corrupt-record policy and shared BatchNorm
    /// absent when they had their defaults) reads with those defaults.
    @Test func aVersionOneRunConfigurationStillReads() throws {
        let dir = TempDirectory()
        let encoder = JSONEncoder()
        var object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(configuration())) as? [String: Any])
        for key in ["formatVersion", "corruptRecords", "sharedBatchNorm"] { object[key] = nil }
        try JSONSerialization.data(withJSONObject: object).write(to: dir.url.appendingPathComponent(Trainer.configurationFile))
        let c = try RunConfiguration.load(from: dir.url)
        #expect(c.formatVersion == 1 && c.corruptRecords == .fail && !c.sharedBatchNorm && c.distillation == .vanilla)
    }

    @Test func aNewerRunConfigurationIsRefused() throws {
        let dir = TempDirectory()
        var c = configuration()
        c.formatVersion = RunConfiguration.currentFormatVersion + 1
        try c.save(in: dir.url)
        let path = dir.url.appendingPathComponent(Trainer.configurationFile).path
        #expect(throws: TrainError.unsupportedVersion(path: path, found: c.formatVersion, supported: RunConfiguration.currentFormatVersion)) {
            try RunConfiguration.load(from: dir.url)
        }
        #expect(throws: TrainError.noRun(directory: "/nonexistent/run")) { try RunConfiguration.load(from: URL(fileURLWithPath: "/nonexistent/run")) }
    }

    @Test func aNewerCheckpointIsRefusedAndAMisfitNamed() throws {
        let dir = TempDirectory()
        let url = dir.url.appendingPathComponent(Trainer.checkpointFile)
        var header = Checkpoint.Header(epochsDone: 1, steps: 3, nextEpoch: 1, nextCursor: 0, parameterCount: 2, stateCount: 1,
                                       trainingMacs: 0, wallSeconds: 0)
        try Checkpoint(header: header, parameters: [1, 2], state: [3], velocity: [4, 5]).write(to: url)
        let read = try Checkpoint.read(from: url)
        #expect(read.parameters == [1, 2] && read.state == [3] && read.velocity == [4, 5])
        let store = ParameterStore()
        #expect(throws: TrainError.self) { try read.load(into: store, from: url) }

        header.formatVersion = Checkpoint.currentFormatVersion + 1
        try Checkpoint(header: header, parameters: [1, 2], state: [3], velocity: [4, 5]).write(to: url)
        #expect(throws: TrainError.unsupportedVersion(path: url.path, found: header.formatVersion, supported: Checkpoint.currentFormatVersion)) {
            try Checkpoint.read(from: url)
        }
    }
}
