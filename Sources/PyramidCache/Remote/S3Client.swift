import Foundation

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
    private let handles = CurlHandles()
    private let counters = Mutex(TransferStatistics())

    public init(configuration: S3Configuration, policy: TransferPolicy = .fromEnvironment()) {
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
                Thread.sleep(forTimeInterval: wait)
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

    // MARK: Resumable download

    /// What a download is checked against.
    public struct Expected: Sendable {
        public var size: Int
        /// XXH3-64 of the whole object; nil: not checked (``download(_:_:to:expected:)`` returns it).
        public var digest: UInt64?
        public init(size: Int, digest: UInt64?) { self.size = size; self.digest = digest }
    }

    /// Downloads `name` to `destination`, robustly.
    ///
    /// The bytes go to `destination.part` (its ETag beside it in `.part.etag`); a broken transfer
    /// resumes from the part's end with a range request carrying `If-Match: ETag`, also across
    /// processes (a process killed mid-download leaves a part the next one continues). When the
    /// body is complete its size and XXH3-64 digest are checked; a mismatch is fetched again from
    /// scratch (a byte damaged in transit), and the same wrong digest twice from the same ETag is
    /// ``RemoteError/damaged(object:reason:)`` (the stored object itself). Then `fsync`, rename, `fsync` of the directory.
    /// - Returns: the digest of what was stored.
    /// - Throws: ``RemoteError``; ``RemoteError/changed(object:reason:)`` when the ETag changes.
    @discardableResult
    public func download(_ location: S3Location, _ name: String, to destination: URL, expected: Expected,
                         progress: @escaping (Int) -> Void = { _ in }) throws -> UInt64 {
        let object = location.object(name)
        let part = destination.path + ".part", etagPath = destination.path + ".part.etag"
        var etag = (try? String(contentsOfFile: etagPath, encoding: .utf8)).flatMap { $0.isEmpty ? nil : $0 }
        if etag == nil { unlink(part) }  // a part without its ETag cannot be resumed safely
        // A wrong digest or size seen once may be the wire's; the same one twice from the same
        // ETag is the stored object's.
        var mismatch: (etag: String, what: String)?
        func restart() { unlink(part); unlink(etagPath); etag = nil }
        func suspect(_ what: String, _ reason: String) throws -> Attempt<UInt64> {
            let seen = (etag: etag ?? "", what: what)
            restart()
            if let earlier = mismatch, earlier == seen { throw RemoteError.damaged(object: object, reason: reason + " twice over") }
            mismatch = seen
            return .retry(reason + " (damaged in transit?); fetching again")
        }

        let digest: UInt64 = try withRetries(object: object) { left in
            var have = fileSize(part) ?? 0
            // A part is resumed only against the ETag it was read from.
            if have > expected.size || (have > 0 && etag == nil) { restart(); have = 0 }
            if have < expected.size || expected.size == 0 {
                let fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw RemoteError.local(path: part, reason: String(cString: strerror(errno))) }
                defer { close(fd) }
                var headers: [String] = []
                if have > 0, let etag { headers = ["Range: bytes=\(have)-", "If-Match: \(etag)"] }
                var written = have, writeError: Int32 = 0, overflow = false, wholeAgain = false
                var request = HTTPRequest(method: "GET", url: url(location, name), headers: headers, sink: { chunk in
                    if written + chunk.count > expected.size { overflow = true; return false }
                    var off = 0
                    while off < chunk.count {
                        let n = write(fd, chunk.baseAddress! + off, chunk.count - off)
                        if n < 0 { if errno == EINTR { continue }; writeError = errno; return false }
                        off += n
                    }
                    written += chunk.count
                    progress(chunk.count)
                    return true
                })
                // The ETag goes beside the part before its first byte: a process killed mid-download
                // leaves a part that the next one can resume safely.
                let knownEtag = etag, resuming = have > 0
                request.onResponse = { status, responseHeaders in
                    if knownEtag == nil, let got = responseHeaders["etag"], !got.isEmpty {
                        try? Data(got.utf8).write(to: URL(fileURLWithPath: etagPath))
                    }
                    // A server that ignores the range sends the whole object: take it from its
                    // first byte instead of appending it to the part (a part is never mapped).
                    if status == 200 && resuming {
                        if ftruncate(fd, 0) != 0 { writeError = errno }
                        written = 0; wholeAgain = true
                    }
                }
                let outcome = handles.perform(request, configuration: configuration, policy: policy, timeout: left)
                counters.withLock { $0.bytesFetched += written - (wholeAgain ? 0 : have) }
                if writeError != 0 {
                    throw RemoteError.local(path: part, reason: "write failed: \(String(cString: strerror(writeError)))")
                }
                switch outcome {
                case .transport(let code, let message, let status, let responseHeaders):
                    // Keep the ETag of a body that broke off, so the next attempt resumes it.
                    if etag == nil, (200..<300).contains(status), let got = responseHeaders["etag"], !got.isEmpty {
                        etag = got
                        try? Data(got.utf8).write(to: URL(fileURLWithPath: etagPath))
                    } else if let known = etag, let got = responseHeaders["etag"], !got.isEmpty, got != known {
                        restart()
                        throw RemoteError.changed(object: object, reason: "ETag \(known) became \(got)")
                    }
                    if overflow {
                        restart()
                        throw RemoteError.changed(object: object, reason: "it is larger than the \(expected.size) bytes the manifest gives it")
                    }
                    return .retry(try classify(code: code, message: message, object: object) + " after \(written) of \(expected.size) bytes",
                                  progressed: written > (wholeAgain ? 0 : have))
                case .response(let status, let responseHeaders, let body):
                    if status == 416 { restart(); return .retry("HTTP 416: the partial download did not fit the object; starting over") }
                    guard (200..<300).contains(status) else { return .retry(try classify(status: status, body: body, object: object)) }
                    let got = responseHeaders["etag"] ?? ""
                    if let known = etag, !got.isEmpty, got != known {
                        restart()
                        throw RemoteError.changed(object: object, reason: "ETag \(known) became \(got)")
                    }
                    if etag == nil, !got.isEmpty {
                        etag = got
                        try? Data(got.utf8).write(to: URL(fileURLWithPath: etagPath))
                    }
                    if let total = responseHeaders["content-range"]?.split(separator: "/").last.flatMap({ Int($0) }) ?? (status == 200 ? responseHeaders["content-length"].flatMap(Int.init) : nil),
                       total != expected.size {
                        return try suspect("size \(total)", "it is \(total) bytes, the manifest says \(expected.size)")
                    }
                    if written < expected.size {
                        return .retry("the body ended after \(written) of \(expected.size) bytes", progressed: written > (wholeAgain ? 0 : have))
                    }
                }
            }
            // Complete: check what arrived.
            guard let sum = Manifest.FileDigest.xxh3(ofFile: part) else { throw RemoteError.local(path: part, reason: "cannot read the downloaded part") }
            if let want = expected.digest, sum != want {
                return try suspect("digest \(sum)", "its XXH3-64 is \(RecordChecksum.hex(sum)), the manifest says \(RecordChecksum.hex(want))")
            }
            return .done(sum)
        }
        try commit(part: part, to: destination.path)
        unlink(etagPath)
        counters.withLock { $0.objectsFetched += 1 }
        return digest
    }

    /// `fsync` of the part, rename over `path`, `fsync` of the directory.
    private func commit(part: String, to path: String) throws {
        let fd = open(part, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RemoteError.local(path: part, reason: String(cString: strerror(errno))) }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { throw RemoteError.local(path: part, reason: "fsync failed: \(String(cString: strerror(errno)))") }
        guard rename(part, path) == 0 else { throw RemoteError.local(path: path, reason: "rename failed: \(String(cString: strerror(errno)))") }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}

/// The size of the file at `path`, or nil when there is none.
func fileSize(_ path: String) -> Int? {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : nil
}
