import CZstd
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A zstd dictionary prepared for both directions. Thread-safe (zstd's digested dictionaries are read-only).
///
/// `@unchecked Sendable`: it holds two opaque zstd pointers that are never written after `init`.
public final class RecordDictionary: @unchecked Sendable {
    let cdict: OpaquePointer
    let ddict: OpaquePointer
    /// The raw dictionary bytes, as stored in the manifest.
    public let bytes: [UInt8]

    /// - Parameters:
    ///   - bytes: a dictionary made by ``RecordDictionary/train(samples:capacity:)``.
    ///   - compressionLevel: the level the compressing side will use.
    public init(bytes: [UInt8], compressionLevel: Int32) throws {
        self.bytes = bytes
        guard let c = bytes.withUnsafeBytes({ ZSTD_createCDict($0.baseAddress, $0.count, compressionLevel) }),
              let d = bytes.withUnsafeBytes({ ZSTD_createDDict($0.baseAddress, $0.count) })
        else { throw CacheError.zstd(function: "ZSTD_createCDict", message: "invalid dictionary") }
        cdict = c; ddict = d
    }

    deinit { ZSTD_freeCDict(cdict); ZSTD_freeDDict(ddict) }

    /// Trains a dictionary from sample records (raw or filtered pixels), deterministically.
    /// - Returns: `nil` when zstd finds too little to learn from (too few or too uniform samples).
    public static func train(samples: [[UInt8]], capacity: Int = 16 * 1024) -> [UInt8]? {
        var flat = [UInt8](); var sizes = [Int]()
        for s in samples where !s.isEmpty { flat.append(contentsOf: s); sizes.append(s.count) }
        guard sizes.count >= 8 else { return nil }
        var dict = [UInt8](repeating: 0, count: capacity)
        let n = dict.withUnsafeMutableBytes { d in
            flat.withUnsafeBytes { f in
                ZDICT_trainFromBuffer(d.baseAddress, d.count, f.baseAddress, sizes, UInt32(sizes.count))
            }
        }
        if ZDICT_isError(n) != 0 { return nil }
        return Array(dict[0..<n])
    }
}
