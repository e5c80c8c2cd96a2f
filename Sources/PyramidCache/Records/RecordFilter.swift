#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
