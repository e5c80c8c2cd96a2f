#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A cache in object storage: `s3://bucket/prefix`. The cache's files are objects under the
/// prefix with the names they have in a local cache directory (`manifest.json`,
/// `shard-00000/data.mdb`, …).
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// The key prefix, without leading or trailing `/` (empty: the bucket's top).
    public var prefix: String

    /// True when `string` names a remote cache (starts with `s3://`).
    public static func isRemote(_ string: String) -> Bool { string.hasPrefix("s3://") }

    /// Parses `s3://bucket[/prefix]`.
    /// - Throws: ``RemoteError/invalidLocation(_:reason:)``.
    public init(_ string: String) throws {
        guard Self.isRemote(string) else { throw RemoteError.invalidLocation(string, reason: "it does not start with s3://") }
        let rest = string.dropFirst("s3://".count)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        bucket = String(parts[0])
        // S3 bucket rules: 3 to 63 lowercase letters, digits, dots and hyphens.
        guard (3...63).contains(bucket.count),
              bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }) else {
            throw RemoteError.invalidLocation(string, reason: "\"\(bucket)\" is not a bucket name (3 to 63 lowercase letters, digits, dots or hyphens)")
        }
        prefix = parts.count > 1 ? String(parts[1]).trimming(["/"]) : ""
        if prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            throw RemoteError.invalidLocation(string, reason: "the prefix may not contain . or .. segments")
        }
    }

    public init(bucket: String, prefix: String) { self.bucket = bucket; self.prefix = prefix }

    /// The key of the cache file `name` (a path relative to the cache's top).
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    /// `s3://bucket/key` of the cache file `name`, as messages print it.
    public func object(_ name: String) -> String { "s3://\(bucket)/\(key(name))" }

    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }

    /// `bucket-prefix` as one directory name (other characters as `_`, at most 80): how local
    /// directories for this location (fetched caches, build staging) start.
    public var directoryName: String {
        String((bucket + (prefix.isEmpty ? "" : "-" + prefix))
            .map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(80))
    }
}
