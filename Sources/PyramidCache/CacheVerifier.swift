import Foundation

/// Reads every record of every level and checks it: zstd checksum, header against the manifest,
/// keys contiguous and counts as promised.
public struct CacheVerifier {
    /// One record that failed.
    public struct Problem: Codable, Equatable, Sendable, CustomStringConvertible {
        public var shard: Int
        public var index: Int
        /// Level size, or 0 for the labels database.
        public var level: Int
        public var reason: String
        public var description: String { "shard \(shard) index \(index) level \(level): \(reason)" }
    }

    /// The outcome of ``verify(progress:)``.
    public struct Report: Codable, Sendable {
        public var recordsChecked: Int
        public var problems: [Problem]
        public var ok: Bool { problems.isEmpty }
    }

    public let reader: CacheReader
    public init(reader: CacheReader) { self.reader = reader }

    /// Total records a full verification reads (levels × samples, plus labels).
    public var totalRecords: Int { reader.manifest.sampleCount * (reader.manifest.levels.count + 1) }

    /// Verifies the whole cache.
    /// - Parameter progress: called now and then with the number of records checked so far.
    public func verify(progress: (Int) -> Void = { _ in }) throws -> Report {
        let manifest = reader.manifest
        let session = reader.makeSession()
        var problems: [Problem] = []
        var checked = 0
        var buffer = [UInt8]()
        for (number, shard) in manifest.shards.enumerated() {
            let range = shard.firstIndex..<(shard.firstIndex + shard.count)
            for level in manifest.levels {
                var expected = range.lowerBound
                let decoder = session.recordDecoder(level: level.size)
                try session.forEachRecord(shard: number, level: level.size) { index, bytes in
                    defer { checked += 1; if checked % 4096 == 0 { progress(checked) } }
                    while expected < index && expected < range.upperBound {
                        problems.append(Problem(shard: number, index: expected, level: level.size, reason: "missing"))
                        expected += 1
                    }
                    expected = index + 1
                    guard range.contains(index) else {
                        problems.append(Problem(shard: number, index: index, level: level.size, reason: "index outside the shard's range \(range)"))
                        return
                    }
                    guard case .success(let header) = RecordDecoder.header(of: bytes) else {
                        problems.append(Problem(shard: number, index: index, level: level.size, reason: "unreadable header"))
                        return
                    }
                    if buffer.count < header.pixelCount { buffer = [UInt8](repeating: 0, count: header.pixelCount) }
                    let result = buffer.withUnsafeMutableBytes { decoder.decode(bytes, into: $0) }
                    switch result {
                    case .failure(let fault):
                        problems.append(Problem(shard: number, index: index, level: level.size, reason: fault.reason))
                    case .success(let h):
                        if let reason = Self.shapeProblem(h, level: level, manifest: manifest) {
                            problems.append(Problem(shard: number, index: index, level: level.size, reason: reason))
                        }
                    }
                }
                while expected < range.upperBound {
                    problems.append(Problem(shard: number, index: expected, level: level.size, reason: "missing"))
                    expected += 1
                }
            }
            var expected = range.lowerBound
            for index in range {
                do {
                    let label = try session.label(of: index)
                    if label < 0 || label >= manifest.classes.count {
                        problems.append(Problem(shard: number, index: index, level: 0, reason: "label \(label) outside 0..<\(manifest.classes.count)"))
                    }
                } catch let error as CacheError {
                    problems.append(Problem(shard: number, index: index, level: 0, reason: "\(error)"))
                }
                expected += 1
                checked += 1
            }
            progress(checked)
        }
        return Report(recordsChecked: checked, problems: problems)
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
