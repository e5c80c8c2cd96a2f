#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

import Synchronization

/// What `HEAD` says about an object.
public struct ObjectInfo: Sendable, Equatable {
    public var size: Int
    public var etag: String
    /// User metadata (`x-amz-meta-NAME`), by NAME.
    public var metadata: [String: String]
}

/// A small S3 client over libcurl: `HEAD`, `GET` (whole, or a resumable download to a file),
/// `PUT` from a file or from memory. Every request is signed (SigV4); every transfer follows a
/// ``TransferPolicy``. Thread-safe.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    public let policy: TransferPolicy
    let handles = CurlHandles()
    let counters = Mutex(TransferStatistics())

    /// - Throws: ``RemoteError/missingLibrary(reason:)`` when libcurl or libcrypto cannot be loaded.
    public init(configuration: S3Configuration, policy: TransferPolicy = .fromEnvironment()) throws {
        try RemoteLibraries.require()
        self.configuration = configuration; self.policy = policy
    }

    /// Counters of every transfer so far.
    public var statistics: TransferStatistics { counters.withLock { $0 } }

    // MARK: Retries

    /// What one attempt came to.
    enum Attempt<T> {
        case done(T)
        /// A passing failure: try again after a backoff. `progressed`: the attempt moved bytes
        /// that the next one keeps (a resumed download), so it does not count against
        /// ``TransferPolicy/maximumAttempts`` and the backoff starts over.
        case retry(String, progressed: Bool = false)
    }

    /// Runs `attempt` until it is done, throws, or the deadline or the policy's attempts without
    /// progress run out. `attempt` receives the seconds left before the deadline.
    func withRetries<T>(object: String, _ attempt: (Double) throws -> Attempt<T>) throws -> T {
        let start = Date()
        var failures = 0, attempts = 0
        var connectionRefusals = 0
        while true {
            let left = policy.deadline - Date().timeIntervalSince(start)
            switch try attempt(max(0.001, left)) {
            case .done(let value):
                return value
            case .retry(let why, let progressed):
                attempts += 1
                failures = progressed ? 1 : failures + 1
                if why.hasPrefix(Self.refusedPrefix) { connectionRefusals += 1 }
                let wait = policy.delay(after: failures, random: Double.random(in: 0...1))
                let elapsed = Date().timeIntervalSince(start)
                // A refused connection four times over is a wrong endpoint or a server that is down.
                if connectionRefusals >= 4 {
                    throw RemoteError.unreachable(endpoint: configuration.displayEndpoint, reason: String(why.dropFirst(Self.refusedPrefix.count)))
                }
                if failures >= policy.maximumAttempts || elapsed + wait >= policy.deadline {
                    throw RemoteError.gaveUp(object: object, attempts: attempts, seconds: elapsed, lastFailure: why)
                }
                counters.withLock { $0.retries += 1 }
                sleepSeconds(wait)
            }
        }
    }

    private static let refusedPrefix = "connection refused: "

    /// Sorts a transport failure: passing (retry) or not (throws).
    func classify(code: Int, message: String, object: String) throws -> String {
        switch code {
        case 1, 3, 6:  // unsupported protocol, malformed URL, unknown host
            throw RemoteError.unreachable(endpoint: configuration.displayEndpoint, reason: message)
        case 7:
            return Self.refusedPrefix + message
        case 35, 51, 53, 54, 58, 59, 60, 77, 80, 83, 90, 91:  // TLS setup and certificate failures
            throw RemoteError.unreachable(endpoint: configuration.displayEndpoint, reason: message)
        case 28:
            return "timed out or stalled (\(message))"
        default:
            return message
        }
    }

    /// Sorts an HTTP status that is not a success: passing (retry) or not (throws).
    func classify(status: Int, body: [UInt8], object: String) throws -> String {
        let (code, message) = HTTPOutcome.s3Error(body)
        let text = "HTTP \(status)\(code.isEmpty ? "" : " \(code)")\(message.isEmpty ? "" : ": \(message)")"
        switch status {
        case 408, 429, 500...599:
            return text
        case 400 where code == "BadDigest" || code == "XAmzContentSHA256Mismatch":
            // The body arrived damaged and the server refused it: send it again.
            return text + " (the body was damaged on the way; sending it again)"
        case 412:
            throw RemoteError.changed(object: object, reason: "its ETag no longer matches (HTTP 412)")
        default:
            let fallback = status == 404 ? "no such object or bucket" : status == 403 ? "access denied (check the keys, the region and the clock)" : "request refused"
            throw RemoteError.refused(object: object, status: status, code: code, message: message.isEmpty ? fallback : message)
        }
    }

    func url(_ location: S3Location, _ name: String) -> String { configuration.url(bucket: location.bucket, key: location.key(name)) }

    // MARK: Operations

    /// `HEAD` of `name`; nil when it does not exist (404).
    public func head(_ location: S3Location, _ name: String) throws -> ObjectInfo? {
        let object = location.object(name)
        return try withRetries(object: object) { left in
            switch handles.perform(HTTPRequest(method: "HEAD", url: url(location, name)), configuration: configuration, policy: policy, timeout: left) {
            case .transport(let code, let message, _, _):
                return .retry(try classify(code: code, message: message, object: object))
            case .response(let status, let headers, let body):
                if status == 404 && (headers["x-amz-error-code"] ?? "NoSuchKey") == "NoSuchKey" { return .done(nil) }
                guard (200..<300).contains(status) else { return .retry(try classify(status: status, body: body, object: object)) }
                var metadata: [String: String] = [:]
                for (k, v) in headers where k.hasPrefix("x-amz-meta-") { metadata[String(k.dropFirst("x-amz-meta-".count))] = v }
                return .done(ObjectInfo(size: Int(headers["content-length"] ?? "") ?? -1, etag: headers["etag"] ?? "", metadata: metadata))
            }
        }
    }

    /// The whole object `name`, in memory (for small objects: the manifest, the labels).
    public func data(_ location: S3Location, _ name: String) throws -> [UInt8] {
        try object(location, name).bytes
    }

    /// The whole object `name`, in memory, and its ETag.
    /// - Parameters:
    ///   - ifMatch: an ETag the object must still have (`If-Match`); another is
    ///     ``RemoteError/changed(object:reason:)``.
    ///   - check: a test of the bytes that arrived: nil when they are sound, else why not. A failed
    ///     check is fetched again; the same failure twice from the same ETag is
    ///     ``RemoteError/damaged(object:reason:)``.
    public func object(_ location: S3Location, _ name: String, ifMatch: String? = nil,
                       check: ([UInt8]) -> String? = { _ in nil }) throws -> (bytes: [UInt8], etag: String) {
        let object = location.object(name)
        var mismatch: (etag: String, reason: String)?
        return try withRetries(object: object) { left in
            var bytes: [UInt8] = []
            let headers = ifMatch.map { ["If-Match: \($0)"] } ?? []
            let request = HTTPRequest(method: "GET", url: url(location, name), headers: headers, sink: { bytes.append(contentsOf: $0); return true })
            switch handles.perform(request, configuration: configuration, policy: policy, timeout: left) {
            case .transport(let code, let message, _, _):
                return .retry(try classify(code: code, message: message, object: object))
            case .response(let status, let headers, let body):
                guard (200..<300).contains(status) else { return .retry(try classify(status: status, body: body, object: object)) }
                if let length = headers["content-length"].flatMap(Int.init), length != bytes.count {
                    return .retry("the body ended after \(bytes.count) of \(length) bytes")
                }
                counters.withLock { $0.bytesFetched += bytes.count; $0.objectsFetched += 1 }
                let etag = headers["etag"] ?? ""
                if let ifMatch, !etag.isEmpty, etag != ifMatch {
                    throw RemoteError.changed(object: object, reason: "ETag \(ifMatch) became \(etag)")
                }
                if let reason = check(bytes) {
                    let seen = (etag: etag, reason: reason)
                    if let earlier = mismatch, earlier == seen { throw RemoteError.damaged(object: object, reason: reason + ", twice over") }
                    mismatch = seen
                    return .retry(reason + " (damaged in transit?); fetching again")
                }
                return .done((bytes, etag))
            }
        }
    }

    /// Uploads the file at `path` as `name`, with user metadata. The body carries its MD5
    /// (`Content-MD5`), so the server stores it only if every byte arrived as sent; a body refused
    /// as damaged (`BadDigest`) is sent again.
    public func put(_ location: S3Location, _ name: String, file path: String, metadata: [String: String] = [:]) throws {
        guard let size = fileSize(path), let md5 = ContentMD5(ofFile: path) else {
            throw RemoteError.local(path: path, reason: "cannot read the file to upload")
        }
        try send(location, name, upload: (path, size), md5: md5, metadata: metadata)
    }

    /// True when `name` exists and holds exactly the bytes of the file at `path`: the ETag the
    /// server computed is the file's MD5. Metadata the client set proves nothing about content, so
    /// it is not consulted; an object whose ETag is not an MD5 (multipart, server-side KMS) is
    /// reported as not matching.
    public func holds(_ location: S3Location, _ name: String, file path: String) throws -> Bool {
        guard let info = try head(location, name), let size = fileSize(path), info.size == size else { return false }
        guard let md5 = ContentMD5(ofFile: path) else { throw RemoteError.local(path: path, reason: "cannot read the file") }
        return md5.matches(etag: info.etag)
    }

    /// ``holds(_:_:file:)`` for bytes in memory.
    public func holds(_ location: S3Location, _ name: String, bytes: [UInt8]) throws -> Bool {
        guard let info = try head(location, name), info.size == bytes.count, let md5 = ContentMD5(bytes: bytes) else { return false }
        return md5.matches(etag: info.etag)
    }

    /// Uploads `bytes` as `name`.
    public func put(_ location: S3Location, _ name: String, bytes: [UInt8], metadata: [String: String] = [:]) throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("pyramid-upload-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        guard FileManager.default.createFile(atPath: temp.path, contents: Data(bytes)) else {
            throw RemoteError.local(path: temp.path, reason: "cannot write a temporary file")
        }
        defer { try? FileManager.default.removeItem(at: temp) }
        guard let md5 = ContentMD5(bytes: bytes) else { throw RemoteError.local(path: temp.path, reason: "cannot compute the MD5") }
        try send(location, name, upload: (temp.path, bytes.count), md5: md5, metadata: metadata)
    }

    private func send(_ location: S3Location, _ name: String, upload: (path: String, size: Int), md5: ContentMD5, metadata: [String: String]) throws {
        let object = location.object(name)
        let headers = ["Content-MD5: \(md5.base64)"] + metadata.sorted { $0.key < $1.key }.map { "x-amz-meta-\($0.key): \($0.value)" }
        try withRetries(object: object) { (left: Double) -> Attempt<Void> in
            let request = HTTPRequest(method: "PUT", url: url(location, name), headers: headers, upload: upload)
            switch handles.perform(request, configuration: configuration, policy: policy, timeout: left) {
            case .transport(let code, let message, _, _):
                return .retry(try classify(code: code, message: message, object: object))
            case .response(let status, _, let body):
                guard (200..<300).contains(status) else { return .retry(try classify(status: status, body: body, object: object)) }
                counters.withLock { $0.bytesSent += upload.size }
                return .done(())
            }
        }
    }

    /// Creates `bucket` (for tests and first pushes); an existing bucket owned by you is fine.
    public func createBucket(_ bucket: String) throws {
        let object = "s3://\(bucket)"
        try withRetries(object: object) { (left: Double) -> Attempt<Void> in
            let request = HTTPRequest(method: "PUT", url: configuration.url(bucket: bucket, key: ""))
            switch handles.perform(request, configuration: configuration, policy: policy, timeout: left) {
            case .transport(let code, let message, _, _):
                return .retry(try classify(code: code, message: message, object: object))
            case .response(let status, _, let body):
                if (200..<300).contains(status) || HTTPOutcome.s3Error(body).code == "BucketAlreadyOwnedByYou" { return .done(()) }
                return .retry(try classify(status: status, body: body, object: object))
            }
        }
    }
}

/// The size of the file at `path`, or nil when there is none.
func fileSize(_ path: String) -> Int? {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : nil
}
