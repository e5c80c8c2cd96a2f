import Foundation
import PyramidCache

/// A training run's complete state in one file, written atomically (temporary file, then rename):
/// a JSON header (epoch, step counts, gradient-smoothing state, loader position, metrics) followed
/// by the parameters, the BatchNorm state and the momentum buffer as little-endian Float32, and
/// an XXH3-64 of all of it, checked on every read.
public struct Checkpoint {
    /// The checkpoint layout this trainer writes and the newest it reads. Version 2 ends with the
    /// XXH3-64 of the whole file before it; version 1 (read still) has no checksum.
    public static let currentFormatVersion = 2

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
        /// The run this checkpoint belongs to (``RunConfiguration/runID``): a checkpoint copied in
        /// from another run is refused on resume. Nil in checkpoints of older versions.
        public var runID: String? = nil
    }

    /// The running sums of an epoch's log line.
    public struct EpochProgress: Codable, Equatable, Sendable {
        /// Sum of the steps' losses.
        public var lossSum: Double
        /// Steps taken.
        public var steps: Int
        /// Training top-1 hits.
        public var hits: Int
        /// Samples trained on.
        public var seen: Int
        /// Training multiply-adds.
        public var macs: Double
        /// Wall seconds, earlier interrupted parts included.
        public var seconds: Double
        /// Sizes trained so far in the epoch, largest first.
        public var sizes: [Int]

        /// Adds one step.
        mutating func add(loss: Float, hits: Int, images: Int, macs: Double, sizes: [Int]) {
            lossSum += Double(loss)
            steps += 1
            self.hits += hits
            seen += images
            self.macs += macs
            self.sizes = Set(self.sizes + sizes).sorted(by: >)
        }
    }

    public var header: Header
    public var parameters: [Float]
    public var state: [Float]
    public var velocity: [Float]

    /// Writes the checkpoint atomically: the header's length (8 bytes), the header (JSON), the
    /// values, then (format version 2 on, the default) the XXH3-64 of everything before it (8 bytes,
    /// little-endian).
    public func write(to url: URL) throws {
        var data = Data()
        let json = try JSONEncoder().encode(header)
        var length = UInt64(json.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(json)
        for block in [parameters, state, velocity] { block.withUnsafeBytes { data.append(contentsOf: $0) } }
        if header.formatVersion >= 2 {
            var sum = data.withUnsafeBytes { RecordChecksum.xxh3($0) }.littleEndian
            data.append(Data(bytes: &sum, count: 8))
        }
        do { try writeAtomically(data, to: url) } catch { throw TrainError.checkpoint(path: url.path, reason: "cannot write: \(error)") }
    }

    /// What to do about a damaged checkpoint, said after the damage.
    static let damagedAdvice = "the file is damaged; restore it from a copy, evaluate checkpoint-best.bin instead if the run kept one, or start the run again in a new directory"

    /// Reads a checkpoint, checking its format version, its checksum (version 2 on) and its sizes.
    /// Version 1 files (written before checkpoints carried a checksum) are read with the size checks only.
    /// - Throws: ``TrainError/checkpoint(path:reason:)`` for a missing, truncated, damaged or
    ///   inconsistent file, ``TrainError/unsupportedVersion(path:found:supported:)`` for a newer format.
    public static func read(from url: URL) throws -> Checkpoint {
        guard let data = try? Data(contentsOf: url) else { throw TrainError.checkpoint(path: url.path, reason: "cannot read the checkpoint") }
        let bytes = [UInt8](data)
        func damaged(_ what: String) -> TrainError { .checkpoint(path: url.path, reason: "\(what): \(damagedAdvice)") }
        guard bytes.count >= 8 else { throw damaged("truncated (\(bytes.count) bytes)") }
        let length = readLittleEndian(bytes, at: 0)
        guard length <= UInt64(bytes.count - 8) else { throw damaged("its header length (\(length) bytes) runs past the end of the file") }
        let headerEnd = 8 + Int(length)
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[8..<headerEnd])) else {
            throw damaged("unreadable header")
        }
        guard header.formatVersion <= currentFormatVersion else {
            throw TrainError.unsupportedVersion(path: url.path, found: header.formatVersion, supported: currentFormatVersion)
        }
        var valuesEnd = bytes.count
        if header.formatVersion >= 2 {
            guard bytes.count >= headerEnd + 8 else { throw damaged("truncated (no checksum)") }
            valuesEnd -= 8
            let stored = readLittleEndian(bytes, at: valuesEnd)
            let computed = bytes.withUnsafeBytes { RecordChecksum.xxh3(UnsafeRawBufferPointer(rebasing: $0[0..<valuesEnd])) }
            guard stored == computed else { throw damaged("checksum mismatch (header and values hash to \(RecordChecksum.hex(computed)), the file says \(RecordChecksum.hex(stored)))") }
        }
        let p = header.parameterCount, s = header.stateCount, valueBytes = valuesEnd - headerEnd
        guard p >= 0, s >= 0, p <= valueBytes / 8, s <= valueBytes / 4, valueBytes == 4 * (2 * p + s) else {
            throw damaged("holds \(valueBytes) bytes of values; the header promises \(p) parameters, \(p) momentum values and \(s) BatchNorm values")
        }
        let all: [Float] = bytes[headerEnd..<valuesEnd].withUnsafeBytes { raw in
            (0..<(valueBytes / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        return Checkpoint(header: header, parameters: Array(all[0..<p]), state: Array(all[p..<(p + s)]), velocity: Array(all[(p + s)...]))
    }

    private static func readLittleEndian(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
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
