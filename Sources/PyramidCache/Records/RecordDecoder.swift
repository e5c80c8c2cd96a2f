import CZstd
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
