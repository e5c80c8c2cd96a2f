#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Resumable, checked downloads to a file.
extension S3Client {
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
    func commit(part: String, to path: String) throws {
        let fd = open(part, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RemoteError.local(path: part, reason: String(cString: strerror(errno))) }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { throw RemoteError.local(path: part, reason: "fsync failed: \(String(cString: strerror(errno)))") }
        guard rename(part, path) == 0 else { throw RemoteError.local(path: path, reason: "rename failed: \(String(cString: strerror(errno)))") }
        let dir = open(PathName.directory(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}
