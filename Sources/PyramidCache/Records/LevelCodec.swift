#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
