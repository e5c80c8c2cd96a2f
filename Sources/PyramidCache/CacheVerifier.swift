#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Reads every record of every level and checks it: zstd checksum, header against the manifest,
/// keys contiguous and counts as promised.
public struct CacheVerifier {
    /// One record that failed, or (index −1) a shard that could not be read at all.
    public struct Problem: Codable, Equatable, Sendable, CustomStringConvertible {
        public var shard: Int
        /// The sample index, or −1 for a problem of the whole shard.
        public var index: Int
        /// Level size, or 0 for the labels database.
        public var level: Int
        public var reason: String
        public init(shard: Int, index: Int, level: Int, reason: String) {
            self.shard = shard; self.index = index; self.level = level; self.reason = reason
        }
        public var description: String {
            index < 0 ? "shard \(shard): \(reason)" : "shard \(shard) index \(index) level \(level): \(reason)"
        }
    }

    /// The outcome of ``verify(progress:)``.
    public struct Report: Codable, Sendable {
        public var recordsChecked: Int
        public var problems: [Problem]
        public init(recordsChecked: Int, problems: [Problem]) { self.recordsChecked = recordsChecked; self.problems = problems }
        public var ok: Bool { problems.isEmpty }
    }

    public let reader: CacheReader
    public init(reader: CacheReader) { self.reader = reader }

    /// Total records a full verification reads (levels × samples, plus labels).
    public var totalRecords: Int { reader.manifest.sampleCount * (reader.manifest.heldLevels.count + 1) }

    /// Verifies the whole cache (every shard the reader opened).
    /// - Parameter progress: called now and then with the number of records checked so far.
    public func verify(progress: (Int) -> Void = { _ in }) throws -> Report {
        var problems: [Problem] = []
        var checked = 0
        for number in reader.manifest.shards.indices {
            let before = checked
            checked += try verify(shard: number, progress: { progress(before + $0) }, problem: { problems.append($0) })
        }
        return Report(recordsChecked: checked, problems: problems)
    }

    /// Verifies one shard: every record of every level, then every label, handing each problem to
    /// `problem` as soon as it is found (so a caller that streams them keeps what was found even if
    /// the process dies on a damaged page further on).
    /// - Returns: the records checked.
    public func verify(shard number: Int, progress: (Int) -> Void = { _ in }, problem report: (Problem) -> Void) throws -> Int {
        let manifest = reader.manifest
        let session = reader.makeSession()
        var checked = 0
        var buffer = [UInt8]()
        let shard = manifest.shards[number]
        let range = shard.firstIndex..<(shard.firstIndex + shard.count)
        for level in manifest.levels where manifest.heldLevels.contains(level.size) {  // a publication of some levels: those
            var expected = range.lowerBound
            // A damaged pack's records (from its first index to the next pack) are reported once, not as missing.
            var damagedFrom: Int?
            let decoder = session.recordDecoder(level: level.size)
            try session.forEachRecord(shard: number, level: level.size, damagedPack: { first, reason in
                report(Problem(shard: number, index: first, level: level.size, reason: "\(reason); its records up to the next pack were not checked"))
                damagedFrom = first
            }) { index, bytes in
                defer { checked += 1; if checked % 4096 == 0 { progress(checked) } }
                while expected < index && expected < range.upperBound {
                    if damagedFrom == nil || expected < damagedFrom! {
                        report(Problem(shard: number, index: expected, level: level.size, reason: "missing"))
                    }
                    expected += 1
                }
                damagedFrom = nil
                expected = index + 1
                guard range.contains(index) else {
                    report(Problem(shard: number, index: index, level: level.size, reason: "index outside the shard's range \(range)"))
                    return
                }
                guard case .success(let header) = RecordDecoder.header(of: bytes) else {
                    report(Problem(shard: number, index: index, level: level.size, reason: "unreadable header"))
                    return
                }
                if buffer.count < header.pixelCount { buffer = [UInt8](repeating: 0, count: header.pixelCount) }
                let result = buffer.withUnsafeMutableBytes { decoder.decode(bytes, into: $0) }
                switch result {
                case .failure(let fault):
                    report(Problem(shard: number, index: index, level: level.size, reason: fault.reason))
                case .success(let h):
                    if let reason = Self.shapeProblem(h, level: level, manifest: manifest) {
                        report(Problem(shard: number, index: index, level: level.size, reason: reason))
                    }
                }
            }
            while expected < range.upperBound {
                if damagedFrom == nil || expected < damagedFrom! {
                    report(Problem(shard: number, index: expected, level: level.size, reason: "missing"))
                }
                expected += 1
            }
        }
        for index in range {
            do {
                let label = try session.label(of: index)
                if label < 0 || label >= manifest.classes.count {
                    report(Problem(shard: number, index: index, level: 0, reason: "label \(label) outside 0..<\(manifest.classes.count)"))
                }
            } catch let error as CacheError {
                report(Problem(shard: number, index: index, level: 0, reason: "\(error)"))
            }
            checked += 1
        }
        progress(checked)
        return checked
    }

    /// Why a decoded header does not fit the manifest, or nil.
    static func shapeProblem(_ h: RecordHeader, level: Manifest.Level, manifest: Manifest) -> String? {
        if h.channels != manifest.channels { return "\(h.channels) channels, manifest says \(manifest.channels)" }
        let short = min(h.width, h.height)
        if short != level.storedShortSide { return "short side \(short), manifest says \(level.storedShortSide)" }
        if manifest.shape.square && h.width != h.height { return "\(h.width)x\(h.height) is not square" }
        return nil
    }
}
