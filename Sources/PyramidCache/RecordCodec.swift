import CZstd
import Foundation

/// How the records of one level are stored: losslessly with zstd, or as JPEG at a quality.
///
/// Written as `zstd`, `jpeg` (quality ``LevelCodec/defaultJPEGQuality``) or `jpeg:Q` (Q in 1…100).
public enum LevelCodec: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Lossless: the pixels (optionally sub-filtered) in one zstd frame.
    case zstd
    /// Lossy: a baseline JPEG at `quality` (4:2:0 chroma for colour), decoded with libjpeg-turbo.
    case jpeg(quality: Int)

    /// The quality `jpeg` without a number means.
    public static let defaultJPEGQuality = 90

    /// Parses `zstd`, `jpeg` or `jpeg:Q`; nil for anything else (or Q outside 1…100).
    public init?(_ text: String) {
        if text == "zstd" { self = .zstd; return }
        if text == "jpeg" { self = .jpeg(quality: LevelCodec.defaultJPEGQuality); return }
        guard text.hasPrefix("jpeg:"), let q = Int(text.dropFirst(5)), (1...100).contains(q) else { return nil }
        self = .jpeg(quality: q)
    }

    public var description: String {
        switch self {
        case .zstd: return "zstd"
        case .jpeg(let q): return "jpeg:\(q)"
        }
    }

    /// Whether decoding gives back exactly the pixels that were encoded.
    public var isLossless: Bool { self == .zstd }
}

/// The 8-byte header in front of every record's payload.
///
/// Layout (little-endian): `version u8, codec u8, filter u8, channels u8, width u16, height u16`.
/// Version 1 records are the header and one zstd frame with its content checksum. Version 2 records
/// are the header, the payload (a zstd frame, or a JPEG stream) and the XXH3-64 of both
/// (``RecordChecksum``), so a flipped byte anywhere, header included, is caught.
public struct RecordHeader: Equatable, Sendable {
    /// Size of the header in bytes.
    public static let size = 8
    /// The longest side a record holds (the header stores each side in 16 bits).
    public static let maxSide = Int(UInt16.max)
    /// The record layout version this module writes (it reads 1 and 2).
    public static let currentVersion: UInt8 = 2

    /// How the payload is encoded.
    public enum Codec: UInt8, Sendable {
        /// One zstd frame.
        case zstd = 1
        /// One zstd frame compressed with the level's dictionary.
        case zstdDictionary = 2
        /// A JPEG stream (version 2 only).
        case jpeg = 3
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

    public init(version: UInt8 = RecordHeader.currentVersion, codec: Codec, filter: Filter, channels: Int, width: Int, height: Int) {
        self.version = version
        self.codec = codec; self.filter = filter
        self.channels = channels; self.width = width; self.height = height
    }

    /// Pixel bytes of the decoded record (`width × height × channels`).
    public var pixelCount: Int { width * height * channels }

    /// Parses a header; returns a reason string when the bytes are not a valid header.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        guard bytes.count >= size else { return .failure(.init("record of \(bytes.count) bytes is shorter than its header")) }
        let version = bytes[0]
        guard version == 1 || version == 2 else { return .failure(.init("unknown record version \(bytes[0])")) }
        guard let codec = Codec(rawValue: bytes[1]), version == 2 || codec != .jpeg else { return .failure(.init("unknown codec \(bytes[1])")) }
        guard let filter = Filter(rawValue: bytes[2]) else { return .failure(.init("unknown filter \(bytes[2])")) }
        let channels = Int(bytes[3])
        let width = Int(bytes[4]) | Int(bytes[5]) << 8
        let height = Int(bytes[6]) | Int(bytes[7]) << 8
        guard channels == 1 || channels == 3, width > 0, height > 0 else {
            return .failure(.init("bad shape \(width)x\(height)x\(channels)"))
        }
        return .success(RecordHeader(version: version, codec: codec, filter: filter, channels: channels, width: width, height: height))
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

/// Encodes pixels into records. One per thread: it owns a zstd or TurboJPEG context.
public final class RecordEncoder {
    private let codec: LevelCodec
    private let cctx: OpaquePointer?
    private let jpeg: JPEGCodec?
    private let filter: RecordHeader.Filter
    private let dictionary: RecordDictionary?
    private let version: UInt8
    private var scratch = [UInt8]()

    /// - Parameters:
    ///   - codec: zstd (lossless) or JPEG at a quality; JPEG needs record version 2.
    ///   - compressionLevel: zstd level (1–19; negative levels are faster).
    ///   - filter: the pre-compression filter of zstd records (JPEG records are never filtered).
    ///   - dictionary: the level's zstd dictionary, if any.
    ///   - recordVersion: 2 (header, payload, XXH3-64) or 1 (header and a checksummed zstd frame),
    ///     for writing caches that older readers read.
    public init(codec: LevelCodec = .zstd, compressionLevel: Int = 1, filter: RecordHeader.Filter = .none,
                dictionary: RecordDictionary? = nil, recordVersion: UInt8 = RecordHeader.currentVersion) {
        precondition(recordVersion == 1 || recordVersion == 2, "record version \(recordVersion) is not written")
        precondition(recordVersion == 2 || codec == .zstd, "JPEG records need record version 2")
        self.codec = codec
        self.version = recordVersion
        if codec == .zstd {
            let c = ZSTD_createCCtx()
            ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, Int32(compressionLevel))
            // Version 2 records carry their own checksum over header and payload.
            ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, recordVersion == 1 ? 1 : 0)
            ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1)
            if let dictionary { ZSTD_CCtx_refCDict(c, dictionary.cdict) }
            cctx = c; jpeg = nil
            self.filter = filter
            self.dictionary = dictionary
        } else {
            cctx = nil; jpeg = JPEGCodec(compressing: true)
            self.filter = .none
            self.dictionary = nil
        }
    }

    deinit { if let cctx { ZSTD_freeCCtx(cctx) } }

    /// Encodes `width × height × channels` interleaved 8-bit pixels as one record.
    /// The output depends only on the pixels and the encoder's settings.
    /// - Throws: ``CacheError/unencodable(reason:)`` for a shape a record cannot hold (sides above
    ///   ``RecordHeader/maxSide``, channels other than 1 or 3, a buffer of another size).
    public func encode(pixels: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int) throws -> [UInt8] {
        guard (1...RecordHeader.maxSide).contains(width), (1...RecordHeader.maxSide).contains(height), channels == 1 || channels == 3,
              pixels.count == width * height * channels else {
            throw CacheError.unencodable(reason: "\(width)x\(height)x\(channels) pixels in \(pixels.count) bytes (a record holds 1 or 3 channels and at most \(RecordHeader.maxSide) px a side)")
        }
        var out = [UInt8]()
        switch codec {
        case .zstd:
            let header = RecordHeader(version: version, codec: dictionary == nil ? .zstd : .zstdDictionary, filter: filter,
                                      channels: channels, width: width, height: height)
            try compress(pixels, header: header, into: &out)
        case .jpeg(let quality):
            let header = RecordHeader(version: version, codec: .jpeg, filter: .none, channels: channels, width: width, height: height)
            out.reserveCapacity(RecordHeader.size + pixels.count / 4)
            header.write(to: &out)
            try jpeg!.encode(pixels: pixels, width: width, height: height, channels: channels, quality: quality, to: &out)
        }
        if version == 2 { RecordChecksum.append(to: &out) }
        return out
    }

    private func compress(_ pixels: UnsafeRawBufferPointer, header: RecordHeader, into out: inout [UInt8]) throws {
        if filter == .sub {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: pixels)
            scratch.withUnsafeMutableBytes { RecordFilter.applySub($0, width: header.width, height: header.height, channels: header.channels) }
        }
        let bound = ZSTD_compressBound(pixels.count)
        out.reserveCapacity(RecordHeader.size + bound + RecordChecksum.size)
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
    }
}

/// Decodes records. One per thread: it owns a zstd or TurboJPEG decompression context.
///
/// A version 2 record's XXH3-64 covers header and payload and is checked first. A version 1
/// record's zstd checksum covers the pixels, not the 8-byte header, so every header field is also
/// checked against what the cache promises: the version exactly, the codec against the level's
/// codec and dictionary, the filter against the manifest's, and width × height × channels against the
/// payload's own size (zstd's content size, the JPEG's dimensions). A flipped byte anywhere in a
/// record is therefore reported, never decoded into other pixels.
public final class RecordDecoder {
    private let dctx: OpaquePointer?
    private let jpeg: JPEGCodec?
    private let codec: LevelCodec
    private let dictionary: RecordDictionary?
    private let filter: RecordHeader.Filter
    private let version: UInt8

    /// - Parameters:
    ///   - codec: the level's codec (from the manifest); a record claiming another is corrupt.
    ///   - dictionary: the level's dictionary; records of a level with a dictionary must use it.
    ///   - filter: the filter the cache's manifest names; a record claiming another is corrupt.
    ///   - recordVersion: the version every record of the cache has (its manifest's format version).
    public init(codec: LevelCodec = .zstd, dictionary: RecordDictionary?, filter: RecordHeader.Filter,
                recordVersion: UInt8 = RecordHeader.currentVersion) {
        self.codec = codec
        if codec == .zstd { dctx = ZSTD_createDCtx(); jpeg = nil } else { dctx = nil; jpeg = JPEGCodec(compressing: false) }
        self.dictionary = dictionary
        self.filter = filter
        self.version = recordVersion
    }

    deinit { if let dctx { ZSTD_freeDCtx(dctx) } }

    /// Reads only the header of a record (no checksum is checked).
    public static func header(of record: UnsafeRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        RecordHeader.parse(record)
    }

    /// Checks the record's checksum (version 2), decodes its payload straight into `destination`
    /// and undoes the filter in place. For zstd, the frame must hold exactly
    /// `width × height × channels` bytes; for JPEG, the stream must be `width × height` with the
    /// header's channels and decode without a warning.
    /// - Returns: the header, or the reason the record is corrupt.
    public func decode(_ record: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Result<RecordHeader, RecordFault> {
        var body = record
        if version == 2 {
            switch RecordChecksum.strip(record) {
            case .success(let b): body = b
            case .failure(let f): return .failure(f)
            }
        }
        let header: RecordHeader
        switch RecordHeader.parse(body) {
        case .success(let h): header = h
        case .failure(let f): return .failure(f)
        }
        guard header.version == version else {
            return .failure(.init("record version \(header.version) in a cache of version \(version) records"))
        }
        let count = header.pixelCount
        guard destination.count >= count else {
            return .failure(.init("destination of \(destination.count) bytes is smaller than the record's \(count)"))
        }
        let payload = UnsafeRawBufferPointer(rebasing: body[RecordHeader.size...])
        let fault: RecordFault?
        switch codec {
        case .zstd: fault = decodeZstd(payload, header: header, into: destination)
        case .jpeg:
            guard header.codec == .jpeg else { return .failure(.init("header names codec \(header.codec), the level stores JPEG")) }
            guard header.filter == .none else { return .failure(.init("header names filter \(header.filter.name) on a JPEG record")) }
            fault = jpeg!.decode(payload, width: header.width, height: header.height, channels: header.channels, into: destination)
                .map { RecordFault($0) }
        }
        if let fault { return .failure(fault) }
        return .success(header)
    }

    private func decodeZstd(_ frame: UnsafeRawBufferPointer, header: RecordHeader, into destination: UnsafeMutableRawBufferPointer) -> RecordFault? {
        guard header.codec != .jpeg else { return .init("header names JPEG, the level stores zstd") }
        guard header.filter == filter else {
            return .init("header names filter \(header.filter.name), the cache uses \(filter.name)")
        }
        guard (header.codec == .zstdDictionary) == (dictionary != nil) else {
            return .init(dictionary == nil ? "header names a dictionary the level does not have" : "header names no dictionary but the level has one")
        }
        let count = header.pixelCount
        let contentSize = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard contentSize == UInt64(count) else {
            return .init("frame holds \(contentSize >= UInt64(Int64.max) ? "an unknown number of" : String(contentSize)) bytes, header promises \(count)")
        }
        let n: Int
        if let dictionary {
            n = ZSTD_decompress_usingDDict(dctx, destination.baseAddress, count, frame.baseAddress, frame.count, dictionary.ddict)
        } else {
            n = ZSTD_decompressDCtx(dctx, destination.baseAddress, count, frame.baseAddress, frame.count)
        }
        if ZSTD_isError(n) != 0 { return .init("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        guard n == count else { return .init("decoded \(n) bytes, header promises \(count)") }
        if header.filter == .sub {
            RecordFilter.undoSub(UnsafeMutableRawBufferPointer(rebasing: destination[0..<count]),
                                 width: header.width, height: header.height, channels: header.channels)
        }
        return nil
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
