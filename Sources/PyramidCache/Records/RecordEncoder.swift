import CZstd
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
