#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Consecutive records of a version 3 level file stored together in one LMDB value (a pack).
///
/// Why: LMDB stores a value larger than about half a page on pages of its own ("overflow pages"),
/// rounded up to whole 4 KiB pages. A 96 px JPEG record of ~2.5–6 KiB then takes two pages, and
/// a 96 px level file was 1.59x its records' bytes (docs/performance.md, "Bytes per run"): every
/// reader and every download paid the rounding. A pack of records summing to at least
/// ``targetBytes`` wastes less than one page per pack (about 1%; records larger than the target
/// get a pack each, as they had a value each). The size of a pack costs a reader nothing: a
/// record is read through the memory map, so only the pages it lies on are touched.
///
/// Layout of a pack (key: the 8-byte big-endian index of its first record):
///
///     u32 LE  n            records in the pack
///     u32 LE  ends[n]      end of record j in the data below (record j = data[ends[j-1] ..< ends[j]], ends[-1] = 0)
///     data                 the records, each exactly as in version 2 (header, payload, XXH3-64)
///
/// The level file's `meta` database keeps the pack table under ``metaKey``: u64 LE record count,
/// then the u64 LE first index of every pack in key order, so a reader finds a record's pack by
/// a binary search and one `mdb_get`. A level file without the table holds one record per key
/// (the first version 3 builds, and a level file while its shard is being built).
public enum LevelPack {
    /// The data bytes at which a pack is closed (the last record may take it past).
    public static let targetBytes = 256 << 10
    /// The `meta` key of a packed level file's pack table.
    public static let metaKey = "packs"

    /// Encodes one pack of `records`.
    static func encode(_ records: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + 4 * records.count + records.reduce(0) { $0 + $1.count })
        appendLE(&out, UInt32(records.count))
        var end = 0
        for r in records { end += r.count; appendLE(&out, UInt32(end)) }
        for r in records { out += r }
        return out
    }

    /// Record `j` of `pack`, or why it cannot be read (a damaged pack: bounds checked, never trusted).
    static func record(_ j: Int, in pack: UnsafeRawBufferPointer) -> Result<UnsafeRawBufferPointer, PackFault> {
        guard pack.count >= 4 else { return .failure(PackFault("pack of \(pack.count) bytes")) }
        let n = Int(pack.loadUnaligned(as: UInt32.self).littleEndian)
        let header = 4 + 4 * n
        guard n > 0, header <= pack.count else { return .failure(PackFault("pack says \(n) records in \(pack.count) bytes")) }
        guard j >= 0, j < n else { return .failure(PackFault("record \(j) of a pack of \(n)")) }
        func end(_ k: Int) -> Int { Int(pack.loadUnaligned(fromByteOffset: 4 + 4 * k, as: UInt32.self).littleEndian) }
        let total = end(n - 1)
        guard header + total == pack.count else { return .failure(PackFault("pack's records end at \(header + total) of \(pack.count) bytes")) }
        let lower = j == 0 ? 0 : end(j - 1), upper = end(j)
        guard lower <= upper, upper <= total else { return .failure(PackFault("record \(j) at \(lower)..<\(upper) of \(total) bytes")) }
        return .success(UnsafeRawBufferPointer(rebasing: pack[(header + lower)..<(header + upper)]))
    }

    /// The number of records a pack says it holds (0 when it is too short to say).
    static func count(of pack: UnsafeRawBufferPointer) -> Int {
        pack.count >= 4 ? Int(pack.loadUnaligned(as: UInt32.self).littleEndian) : 0
    }

    /// Why a pack could not be read.
    struct PackFault: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private static func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    /// Where a packed level file's records are: its record count and each pack's first index.
    struct Table: Equatable {
        /// Records in the file.
        let count: Int
        /// The first index of each pack, ascending.
        let starts: [Int]

        init(count: Int, starts: [Int]) {
            self.count = count
            self.starts = starts
        }

        /// Decodes the `meta` entry; nil when it is damaged (not a whole number of u64s, or
        /// indices not ascending).
        init?(bytes: UnsafeRawBufferPointer) {
            guard bytes.count >= 8, bytes.count % 8 == 0 else { return nil }
            let values = (0..<(bytes.count / 8)).map { Int(truncatingIfNeeded: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            count = values[0]
            starts = Array(values.dropFirst())
            guard count >= 0, zip(starts, starts.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
        }

        var encoded: [UInt8] {
            var out: [UInt8] = []
            appendLE(&out, UInt64(count))
            for s in starts { appendLE(&out, UInt64(s)) }
            return out
        }

        /// The pack holding `index` (its first index) and the record's place in it; nil before the first pack.
        func locate(_ index: Int) -> (start: Int, offset: Int)? {
            // The last start ≤ index.
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid] <= index { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { return nil }
            return (starts[lo - 1], index - starts[lo - 1])
        }
    }
}
