#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// What went wrong with a remote cache. Every case names the object (`s3://bucket/key`) and says
/// what the server or the network said, in one line.
public enum RemoteError: Error, Equatable, CustomStringConvertible {
    /// A location that is not `s3://bucket[/prefix]`.
    case invalidLocation(String, reason: String)
    /// No credentials in the environment or the AWS files (requests are never sent unsigned).
    case missingCredentials(reason: String)
    /// The server refused the request for good (403, 404, 400, clock skew…): its code and message.
    case refused(object: String, status: Int, code: String, message: String)
    /// Retries and the overall deadline ran out; the last failure.
    case gaveUp(object: String, attempts: Int, seconds: Double, lastFailure: String)
    /// The object changed on the server while it was being read (ETag or digest), so what was read
    /// would be a mix of two versions.
    case changed(object: String, reason: String)
    /// A downloaded object does not match the size or digest the manifest gives it, and reading it
    /// again gives the same bytes: the remote copy is damaged.
    case damaged(object: String, reason: String)
    /// The endpoint cannot be reached (host unknown, connection refused): the transport's message.
    case unreachable(endpoint: String, reason: String)
    /// A local file of the cache directory could not be written or read.
    case local(path: String, reason: String)
    /// The cache directory's limit is smaller than what the run needs at once.
    case cacheLimitTooSmall(limit: Int, minimum: Int, reason: String)
    /// The remote cache lacks what remote reading needs (shard sizes and digests, labels).
    case notPublished(location: String, reason: String)
    /// libcurl or libcrypto is not installed (both are loaded when a remote cache is first used).
    case missingLibrary(reason: String)

    public var description: String {
        switch self {
        case .invalidLocation(let s, let reason): return "\(s): not a remote cache location: \(reason)"
        case .missingCredentials(let reason): return "no S3 credentials: \(reason)"
        case .refused(let object, let status, let code, let message):
            return "\(object): the server refused the request (HTTP \(status)\(code.isEmpty ? "" : " \(code)")): \(message)"
        case .gaveUp(let object, let attempts, let seconds, let last):
            return "\(object): gave up after \(attempts) attempt\(attempts == 1 ? "" : "s") in \(formatFixed(seconds, 1)) s; last failure: \(last)"
        case .changed(let object, let reason): return "\(object): the object changed on the server while it was read (\(reason)); publish the cache again or point at the new one"
        case .damaged(let object, let reason): return "\(object): the remote copy is damaged (\(reason)); push the cache again"
        case .unreachable(let endpoint, let reason): return "\(endpoint): cannot reach the S3 endpoint: \(reason)"
        case .local(let path, let reason): return "\(path): \(reason)"
        case .missingLibrary(let reason): return reason
        case .cacheLimitTooSmall(let limit, let minimum, let reason):
            return "the cache limit \(formatBytes(limit)) is too small: this run needs at least \(formatBytes(minimum)) (\(minimum) bytes) in the cache directory at once (\(reason))"
        case .notPublished(let location, let reason): return "\(location): \(reason)"
        }
    }
}

/// `1234567` → `1.2 MiB`.
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : formatFixed(v, 1) + " " + units[u]
}
