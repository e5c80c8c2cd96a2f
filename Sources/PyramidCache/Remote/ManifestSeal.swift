#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The seal of a published manifest: its XXH3-64 inside it, so that a reader can tell that the
/// manifest it fetched is byte for byte the one ``Publisher`` sent.
///
/// A sealed manifest is the plain one with a first key inserted: `{"manifestXXH3":"HEX",` and then
/// the plain manifest after its opening `{`. The digest is over the plain bytes, so checking needs
/// no JSON: cut the key out, hash what is left. Readers that do not know the key ignore it.
public enum ManifestSeal {
    static let prefix = Array(#"{"manifestXXH3":""#.utf8)
    /// Bytes before the digest: a change there makes the manifest look unsealed.
    public static var prefixLength: Int { prefix.count }

    /// `json` (an encoded manifest: an object, starting with `{`) sealed.
    public static func seal(_ json: [UInt8]) -> [UInt8] {
        precondition(json.first == UInt8(ascii: "{"), "a manifest is a JSON object")
        let sum = json.withUnsafeBytes { RecordChecksum.xxh3($0) }
        return prefix + Array(RecordChecksum.hex(sum).utf8) + Array(#"","#.utf8) + json.dropFirst()
    }

    /// What checking `bytes` found.
    public enum Check: Equatable {
        /// Sealed, and the digest matches.
        case sound
        /// Sealed, and the digest does not match: damaged.
        case damaged(String)
        /// No seal (published by an earlier `pyramid push`).
        case unsealed
    }

    /// Checks the seal of `bytes`.
    public static func check(_ bytes: [UInt8]) -> Check {
        guard bytes.starts(with: prefix) else { return .unsealed }
        let hexStart = prefix.count, hexEnd = hexStart + 16
        let tail = Array(#"","#.utf8)
        guard bytes.count > hexEnd + tail.count, Array(bytes[hexEnd..<(hexEnd + tail.count)]) == tail,
              let want = UInt64(String(decoding: bytes[hexStart..<hexEnd], as: UTF8.self), radix: 16) else {
            return .damaged("its seal (manifestXXH3) is malformed")
        }
        let plain = [UInt8(ascii: "{")] + bytes[(hexEnd + tail.count)...]
        let sum = plain.withUnsafeBytes { RecordChecksum.xxh3($0) }
        return sum == want ? .sound : .damaged("its XXH3-64 is \(RecordChecksum.hex(sum)), its seal says \(RecordChecksum.hex(want))")
    }
}
