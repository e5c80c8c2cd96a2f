import Foundation
import PyramidCache

/// A training run's complete state in one file, written atomically (temporary file, then rename):
/// a JSON header (epoch, step counts, gradient-smoothing state, loader position, metrics) followed
/// by the parameters, the BatchNorm state and the momentum buffer as little-endian Float32.
public struct Checkpoint {
    /// The checkpoint layout this trainer writes and the newest it reads.
    public static let currentFormatVersion = 1

    public struct Header: Codable, Equatable, Sendable {
        public var formatVersion = Checkpoint.currentFormatVersion
        /// Epochs completed.
        public var epochsDone: Int
        /// Optimizer steps taken.
        public var steps: Int
        /// The loader position to continue from: (epoch, stream cursor).
        public var nextEpoch: Int
        public var nextCursor: Int
        public var gradientSmoothing: GradientSmoothing?
        public var parameterCount: Int
        public var stateCount: Int
        /// Cumulative training multiply-adds (forward, per image, summed over samples).
        public var trainingMacs: Double
        public var wallSeconds: Double
        /// The best validation top-1 so far and its epoch, if there is a validation set.
        public var bestTop1: Double?
        public var bestEpoch: Int?
        /// The sums of the epoch in progress when training was interrupted mid-epoch, so that the
        /// resumed epoch's log line covers the whole epoch (nil in checkpoints written between epochs,
        /// and in those of older versions: their resumed line is then marked partial).
        public var epochProgress: EpochProgress?
    }

    /// The running sums of an epoch's log line.
    public struct EpochProgress: Codable, Equatable, Sendable {
        public var lossSum: Double, steps: Int, hits: Int, seen: Int, macs: Double, seconds: Double
        /// Sizes trained so far in the epoch.
        public var sizes: [Int]
    }

    public var header: Header
    public var parameters: [Float]
    public var state: [Float]
    public var velocity: [Float]

    /// Writes the checkpoint atomically.
    public func write(to url: URL) throws {
        var data = Data()
        let json = try JSONEncoder().encode(header)
        var length = UInt64(json.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(json)
        for block in [parameters, state, velocity] { block.withUnsafeBytes { data.append(contentsOf: $0) } }
        do { try writeAtomically(data, to: url) } catch { throw TrainError.checkpoint(path: url.path, reason: "cannot write: \(error)") }
    }

    /// Reads a checkpoint, checking its format version and sizes.
    /// - Throws: ``TrainError/checkpoint(path:reason:)`` for a missing, truncated or inconsistent file,
    ///   ``TrainError/unsupportedVersion(path:found:supported:)`` for a newer format.
    public static func read(from url: URL) throws -> Checkpoint {
        guard let data = try? Data(contentsOf: url) else { throw TrainError.checkpoint(path: url.path, reason: "cannot read the checkpoint") }
        guard data.count >= 8 else { throw TrainError.checkpoint(path: url.path, reason: "truncated") }
        let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        guard data.count >= 8 + length, let header = try? JSONDecoder().decode(Header.self, from: data.subdata(in: 8..<(8 + length))) else {
            throw TrainError.checkpoint(path: url.path, reason: "unreadable header")
        }
        guard header.formatVersion <= currentFormatVersion else {
            throw TrainError.unsupportedVersion(path: url.path, found: header.formatVersion, supported: currentFormatVersion)
        }
        let floats = (data.count - 8 - length) / 4
        guard floats == 2 * header.parameterCount + header.stateCount, (data.count - 8 - length) % 4 == 0 else {
            throw TrainError.checkpoint(path: url.path, reason: "holds \(floats) values, the header promises \(2 * header.parameterCount + header.stateCount)")
        }
        let all: [Float] = data.subdata(in: (8 + length)..<data.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let p = header.parameterCount, s = header.stateCount
        return Checkpoint(header: header, parameters: Array(all[0..<p]), state: Array(all[p..<(p + s)]), velocity: Array(all[(p + s)...]))
    }

    /// Copies the parameters and BatchNorm state into `store`.
    /// - Parameters:
    ///   - store: the model's parameter store.
    ///   - url: the checkpoint's file, named in the error.
    /// - Throws: ``TrainError/checkpoint(path:reason:)`` when the checkpoint does not fit the store.
    public func load(into store: ParameterStore, from url: URL) throws {
        guard parameters.count == store.count, state.count == store.stateCount else {
            throw TrainError.checkpoint(path: url.path, reason: "does not fit the model (\(parameters.count) parameters, the model has \(store.count))")
        }
        parameters.withUnsafeBufferPointer { store.values.update(from: $0.baseAddress!, count: $0.count) }
        state.withUnsafeBufferPointer { store.state.update(from: $0.baseAddress!, count: $0.count) }
    }
}
