#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
