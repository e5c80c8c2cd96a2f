import CCurl
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The MD5 of an object's body, as S3 uses it: sent as `Content-MD5` with an upload (S3 and
/// SeaweedFS refuse a body that does not match with `BadDigest`), and compared with the `ETag`
/// of an object uploaded in one `PUT` (its MD5 in hex) to tell that a stored object holds
/// exactly the local bytes.
struct ContentMD5: Equatable {
    var bytes: [UInt8]

    /// The MD5 of the file at `path`, read in 4 MiB pieces; nil when it cannot be read.
    init?(ofFile path: String) {
        guard let digest = Self.digest({ context in forEachPiece(ofFile: path) { pyramid_md5_update(context, $0, $1) == 1 } }) else { return nil }
        bytes = digest
    }

    /// The MD5 of `data`; nil only if OpenSSL fails.
    init?(bytes data: [UInt8]) {
        guard let digest = Self.digest({ context in data.withUnsafeBytes { pyramid_md5_update(context, $0.baseAddress, $0.count) == 1 } }) else { return nil }
        bytes = digest
    }

    /// The MD5 of what `feed` passes to the context it is given (false: a failure).
    /// nil also when OpenSSL's libcrypto cannot be loaded (``RemoteLibraries``).
    private static func digest(_ feed: (UnsafeMutableRawPointer) -> Bool) -> [UInt8]? {
        guard RemoteLibraries.failure == nil, let context = pyramid_md5_begin() else { return nil }
        guard feed(context) else { pyramid_md5_free(context); return nil }
        var digest = [UInt8](repeating: 0, count: 16)
        guard pyramid_md5_finish(context, &digest) == 1 else { return nil }
        return digest
    }

    /// The `Content-MD5` header value: base64.
    var base64: String { Data(bytes).base64EncodedString() }

    /// Lowercase hex, as in an ETag.
    var hex: String { hexDigits(bytes) }

    /// True when `etag` (quoted or not) is this MD5: the object was stored from exactly these
    /// bytes in one `PUT`. A multipart or server-encrypted object's ETag is not an MD5 and never
    /// matches, so such an object is sent again rather than trusted.
    func matches(etag: String) -> Bool {
        etag.trimming(["\""]).lowercased() == hex
    }
}
