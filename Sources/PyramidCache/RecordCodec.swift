import CZstd
import Foundation

/// The 8-byte header in front of every record's zstd frame.
///
/// Layout (little-endian): `version u8, codec u8, filter u8, channels u8, width u16, height u16`.
public struct RecordHeader: Equatable, Sendable {
    /// Size of the header in bytes.
    public static let size = 8
    /// The record layout version this module writes.
    public static let currentVersion: UInt8 = 1

    /// How the payload is compressed.
    public enum Codec: UInt8, Sendable {
        /// One zstd frame, content checksum on.
        case zstd = 1
        /// One zstd frame compressed with the level's dictionary, content checksum on.
        case zstdDictionary = 2
    }

    /// The transform applied to the pixels before compression.
    public enum Filter: UInt8, Sendable {
        case none = 0
        /// PNG's "sub": each byte minus the same channel of the pixel to its left, mod 256.
        case sub = 1

        /// Parses `none` or `sub`.
        public init?(name: String) {
            switch name { case "none": self = .none; case "sub": self = .sub; default: return nil }
        }
        public var name: String { self == .none ? "none" : "sub" }
    }

    public var version: UInt8
    public var codec: Codec
    public var filter: Filter
    public var channels: Int
    public var width: Int
    public var height: Int

    public init(codec: Codec, filter: Filter, channels: Int, width: Int, height: Int) {
        self.version = RecordHeader.currentVersion
        self.codec = codec; self.filter = filter
        self.channels = channels; self.width = width; self.height = height
    }

    /// Pixel bytes of the decoded record (`width × height × channels`).
    public var pixelCount: Int { width * height * channels }

    /// Parses a header; returns a reason string when the bytes are not a valid header.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        guard bytes.count >= size else { return .failure(.init("record of \(bytes.count) bytes is shorter than its header")) }
        guard bytes[0] == currentVersion else { return .failure(.init("unknown record version \(bytes[0])")) }
        guard let codec = Codec(rawValue: bytes[1]) else { return .failure(.init("unknown codec \(bytes[1])")) }
        guard let filter = Filter(rawValue: bytes[2]) else { return .failure(.init("unknown filter \(bytes[2])")) }
        let channels = Int(bytes[3])
        let width = Int(bytes[4]) | Int(bytes[5]) << 8
        let height = Int(bytes[6]) | Int(bytes[7]) << 8
        guard channels == 1 || channels == 3, width > 0, height > 0 else {
            return .failure(.init("bad shape \(width)x\(height)x\(channels)"))
        }
        return .success(RecordHeader(codec: codec, filter: filter, channels: channels, width: width, height: height))
    }

    func write(to out: inout [UInt8]) {
        out.append(contentsOf: [version, codec.rawValue, filter.rawValue, UInt8(channels),
                                UInt8(width & 0xFF), UInt8(width >> 8), UInt8(height & 0xFF), UInt8(height >> 8)])
    }
}

/// Why a record could not be decoded; wrapped into ``CacheError/corruptRecord(shard:index:level:reason:)`` by readers.
public struct RecordFault: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A zstd dictionary prepared for both directions. Thread-safe (zstd's digested dictionaries are read-only).
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

/// Encodes pixels into records. One per thread: it owns a zstd compression context.
public final class RecordEncoder {
    private let cctx: OpaquePointer
    private let filter: RecordHeader.Filter
    private let dictionary: RecordDictionary?
    private var scratch = [UInt8]()

    /// - Parameters:
    ///   - compressionLevel: zstd level (1–19; negative levels are faster).
    ///   - filter: the pre-compression filter.
    ///   - dictionary: the level's dictionary, if any.
    public init(compressionLevel: Int, filter: RecordHeader.Filter, dictionary: RecordDictionary?) {
        cctx = ZSTD_createCCtx()
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(compressionLevel))
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        self.filter = filter
        self.dictionary = dictionary
        if let dictionary { ZSTD_CCtx_refCDict(cctx, dictionary.cdict) }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// Encodes `width × height × channels` interleaved 8-bit pixels as one record.
    /// The output depends only on the pixels and the encoder's settings.
    public func encode(pixels: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int) throws -> [UInt8] {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match the shape")
        let header = RecordHeader(codec: dictionary == nil ? .zstd : .zstdDictionary, filter: filter,
                                  channels: channels, width: width, height: height)
        if filter == .sub {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: pixels)
            scratch.withUnsafeMutableBytes { RecordFilter.applySub($0, width: width, height: height, channels: channels) }
        }
        let bound = ZSTD_compressBound(pixels.count)
        var out = [UInt8](); out.reserveCapacity(RecordHeader.size + bound)
        header.write(to: &out)
        out.append(contentsOf: repeatElement(0, count: bound))
        let n = out.withUnsafeMutableBytes { dst -> Int in
            let target = dst.baseAddress! + RecordHeader.size
            if filter == .sub {
                return scratch.withUnsafeBytes { ZSTD_compress2(cctx, target, bound, $0.baseAddress, $0.count) }
            }
            return ZSTD_compress2(cctx, target, bound, pixels.baseAddress, pixels.count)
        }
        if ZSTD_isError(n) != 0 {
            throw CacheError.zstd(function: "ZSTD_compress2", message: String(cString: ZSTD_getErrorName(n)))
        }
        out.removeLast(bound - n)
        return out
    }
}

/// Decodes records. One per thread: it owns a zstd decompression context.
///
/// The zstd checksum covers the pixels, not the 8-byte header, so every header field is checked
/// against what the cache promises: the version exactly, the codec against whether the level has a
/// dictionary, the filter against the manifest's, and width × height × channels against the
/// frame's content size. A flipped byte anywhere in a record is therefore reported, never decoded
/// into other pixels.
public final class RecordDecoder {
    private let dctx: OpaquePointer
    private let dictionary: RecordDictionary?
    private let filter: RecordHeader.Filter

    /// - Parameters:
    ///   - dictionary: the level's dictionary; records of a level with a dictionary must use it.
    ///   - filter: the filter the cache's manifest names; a record claiming another is corrupt.
    public init(dictionary: RecordDictionary?, filter: RecordHeader.Filter) {
        dctx = ZSTD_createDCtx()
        self.dictionary = dictionary
        self.filter = filter
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Reads only the header of a record.
    public static func header(of record: UnsafeRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        RecordHeader.parse(record)
    }

    /// Decompresses a record straight into `destination`, verifying the zstd content checksum and
    /// that the frame holds exactly `width × height × channels` bytes, then undoes the filter in place.
    /// - Returns: the header, or the reason the record is corrupt.
    public func decode(_ record: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        let header: RecordHeader
        switch RecordHeader.parse(record) {
        case .success(let h): header = h
        case .failure(let f): return .failure(f)
        }
        guard header.filter == filter else {
            return .failure(.init("header names filter \(header.filter.name), the cache uses \(filter.name)"))
        }
        guard (header.codec == .zstdDictionary) == (dictionary != nil) else {
            return .failure(.init(dictionary == nil ? "header names a dictionary the level does not have" : "header names no dictionary but the level has one"))
        }
        let count = header.pixelCount
        guard destination.count >= count else {
            return .failure(.init("destination of \(destination.count) bytes is smaller than the record's \(count)"))
        }
        let frame = UnsafeRawBufferPointer(rebasing: record[RecordHeader.size...])
        let contentSize = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard contentSize == UInt64(count) else {
            return .failure(.init("frame holds \(contentSize >= UInt64(Int64.max) ? "an unknown number of" : String(contentSize)) bytes, header promises \(count)"))
        }
        let n: Int
        switch header.codec {
        case .zstd:
            n = ZSTD_decompressDCtx(dctx, destination.baseAddress, count, frame.baseAddress, frame.count)
        case .zstdDictionary:
            n = ZSTD_decompress_usingDDict(dctx, destination.baseAddress, count, frame.baseAddress, frame.count, dictionary!.ddict)
        }
        if ZSTD_isError(n) != 0 {
            return .failure(.init("zstd: \(String(cString: ZSTD_getErrorName(n)))"))
        }
        guard n == count else { return .failure(.init("decoded \(n) bytes, header promises \(count)")) }
        if header.filter == .sub {
            RecordFilter.undoSub(UnsafeMutableRawBufferPointer(rebasing: destination[0..<count]),
                                 width: header.width, height: header.height, channels: header.channels)
        }
        return .success(header)
    }
}

/// The PNG-style "sub" filter over interleaved 8-bit rows.
public enum RecordFilter {
    /// In place: every byte minus the same channel one pixel to the left (rows are independent).
    public static func applySub(_ p: UnsafeMutableRawBufferPointer, width: Int, height: Int, channels: Int) {
        let row = width * channels
        let b = p.bindMemory(to: UInt8.self).baseAddress!
        for y in 0..<height {
            let r = b + y * row
            var i = row - 1
            while i >= channels { r[i] = r[i] &- r[i - channels]; i -= 1 }
        }
    }

    /// In place: the inverse of ``applySub(_:width:height:channels:)``.
    public static func undoSub(_ p: UnsafeMutableRawBufferPointer, width: Int, height: Int, channels: Int) {
        let row = width * channels
        let b = p.bindMemory(to: UInt8.self).baseAddress!
        for y in 0..<height {
            let r = b + y * row
            var i = channels
            while i < row { r[i] = r[i] &+ r[i - channels]; i += 1 }
        }
    }
}
