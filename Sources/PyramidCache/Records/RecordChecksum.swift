import CXXHash
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The checksum of version 2 records: XXH3-64 (seed 0) of everything before it, stored little-endian
/// in the record's last 8 bytes.
public enum RecordChecksum {
    /// Bytes the checksum adds to a record.
    public static let size = 8

    /// XXH3-64 of `bytes` with seed 0.
    public static func xxh3(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    /// Appends the checksum of `record` (header and payload) to it.
    static func append(to record: inout [UInt8]) {
        let sum = record.withUnsafeBytes { xxh3($0) }
        withUnsafeBytes(of: sum.littleEndian) { record.append(contentsOf: $0) }
    }

    /// Checks the trailing checksum; returns the record without it, or why it does not match.
    static func strip(_ record: UnsafeRawBufferPointer) -> Result<UnsafeRawBufferPointer, RecordFault> {
        guard record.count >= RecordHeader.size + size else {
            return .failure(.init("record of \(record.count) bytes is shorter than its header and checksum"))
        }
        let body = UnsafeRawBufferPointer(rebasing: record[0..<(record.count - size)])
        let stored = UInt64(littleEndian: record.loadUnaligned(fromByteOffset: body.count, as: UInt64.self))
        let computed = xxh3(body)
        guard stored == computed else {
            return .failure(.init("checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))"))
        }
        return .success(body)
    }

    /// `v` as 16 hexadecimal digits, as checksums and digests are printed.
    public static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
