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
        let part = DownloadPart(destination: destination)
        // A wrong digest or size seen once may be the wire's; the same one twice from the same
        // ETag is the stored object's.
        var mismatch: (etag: String, what: String)?
        func suspect(_ what: String, _ reason: String) throws -> Attempt<UInt64> {
            let seen = (etag: part.etag ?? "", what: what)
            part.restart()
            if let earlier = mismatch, earlier == seen { throw RemoteError.damaged(object: object, reason: reason + " twice over") }
            mismatch = seen
            return .retry(reason + " (damaged in transit?); fetching again")
        }

        let digest: UInt64 = try withRetries(object: object) { left in
            var have = part.size
            // A part is resumed only against the ETag it was read from.
            if have > expected.size || (have > 0 && part.etag == nil) { part.restart(); have = 0 }
            if have < expected.size || expected.size == 0 {
                let (outcome, transfer) = try fetch(location, name, into: part, from: have, expected: expected.size, timeout: left, progress: progress)
                let progressed = transfer.written > (transfer.wholeAgain ? 0 : have)
                switch outcome {
                case .transport(let code, let message, let status, let responseHeaders):
                    // Keep the ETag of a body that broke off, so the next attempt resumes it.
                    if let got = responseHeaders["etag"], !got.isEmpty, (200..<300).contains(status) || part.etag != nil {
                        try part.adopt(got, object: object)
                    }
                    if transfer.overflow {
                        part.restart()
                        throw RemoteError.changed(object: object, reason: "it is larger than the \(expected.size) bytes the manifest gives it")
                    }
                    return .retry(try classify(code: code, message: message, object: object) + " after \(transfer.written) of \(expected.size) bytes",
                                  progressed: progressed)
                case .response(let status, let responseHeaders, let body):
                    if status == 416 { part.restart(); return .retry("HTTP 416: the partial download did not fit the object; starting over") }
                    guard (200..<300).contains(status) else { return .retry(try classify(status: status, body: body, object: object)) }
                    if let got = responseHeaders["etag"], !got.isEmpty { try part.adopt(got, object: object) }
                    if let total = responseHeaders["content-range"]?.split(separator: "/").last.flatMap({ Int($0) }) ?? (status == 200 ? responseHeaders["content-length"].flatMap(Int.init) : nil),
                       total != expected.size {
                        return try suspect("size \(total)", "it is \(total) bytes, the manifest says \(expected.size)")
                    }
                    if transfer.written < expected.size {
                        return .retry("the body ended after \(transfer.written) of \(expected.size) bytes", progressed: progressed)
                    }
                }
            }
            // Complete: check what arrived.
            guard let sum = Manifest.FileDigest.xxh3(ofFile: part.path) else { throw RemoteError.local(path: part.path, reason: "cannot read the downloaded part") }
            if let want = expected.digest, sum != want {
                return try suspect("digest \(sum)", "its XXH3-64 is \(RecordChecksum.hex(sum)), the manifest says \(RecordChecksum.hex(want))")
            }
            return .done(sum)
        }
        try commit(part: part.path, to: destination.path)
        part.finish()
        counters.withLock { $0.objectsFetched += 1 }
        return digest
    }

    /// What one GET of a download did to its part.
    final class Transfer {
        /// The part's size now.
        var written: Int
        /// A write to the part failed with this errno.
        var writeError: Int32 = 0
        /// The body went past the expected size (the object is larger than the manifest says).
        var overflow = false
        /// The server ignored the range and sent the whole object: the part was emptied first.
        var wholeAgain = false
        /// The ETag could not be recorded beside the part.
        var etagError: (any Error)?
        init(written: Int) { self.written = written }
    }

    /// One GET of `name` appended to `part` from byte `have` (a range request against the part's
    /// ETag when resuming). Throws what went wrong locally (a write, the ETag file) and
    /// ``RemoteError/changed(object:reason:)`` when the object's ETag is no longer the part's;
    /// the HTTP outcome is for the caller to judge.
    private func fetch(_ location: S3Location, _ name: String, into part: DownloadPart, from have: Int, expected size: Int,
                       timeout: Double, progress: @escaping (Int) -> Void) throws -> (HTTPOutcome, Transfer) {
        let object = location.object(name)
        let fd = open(part.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RemoteError.local(path: part.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let transfer = Transfer(written: have)
        var headers: [String] = []
        if have > 0, let etag = part.etag { headers = ["Range: bytes=\(have)-", "If-Match: \(etag)"] }
        var request = HTTPRequest(method: "GET", url: url(location, name), headers: headers, sink: { chunk in
            if transfer.written + chunk.count > size { transfer.overflow = true; return false }
            var off = 0
            while off < chunk.count {
                let n = write(fd, chunk.baseAddress! + off, chunk.count - off)
                if n < 0 { if errno == EINTR { continue }; transfer.writeError = errno; return false }
                off += n
            }
            transfer.written += chunk.count
            progress(chunk.count)
            return true
        })
        let resuming = have > 0
        request.onResponse = { status, responseHeaders in
            // The ETag goes beside the part before its first byte: a process killed mid-download
            // leaves a part that the next one can resume safely.
            if let got = responseHeaders["etag"], !got.isEmpty, (200..<300).contains(status) {
                do { try part.adopt(got, object: object) } catch { transfer.etagError = error }
            }
            // A server that ignores the range sends the whole object: take it from its first
            // byte instead of appending it to the part (a part is never mapped).
            if status == 200 && resuming {
                if ftruncate(fd, 0) != 0 { transfer.writeError = errno }
                transfer.written = 0; transfer.wholeAgain = true
            }
        }
        let outcome = handles.perform(request, configuration: configuration, policy: policy, timeout: timeout)
        counters.withLock { $0.bytesFetched += transfer.written - (transfer.wholeAgain ? 0 : have) }
        if transfer.writeError != 0 {
            throw RemoteError.local(path: part.path, reason: "write failed: \(String(cString: strerror(transfer.writeError)))")
        }
        if let error = transfer.etagError { throw error }
        return (outcome, transfer)
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

/// A download's part file and the ETag of the object it holds bytes of, kept beside it
/// (`.part.etag`), so that a later attempt — or another process — resumes it only against the
/// same object.
final class DownloadPart {
    let path: String
    private let etagPath: String
    /// The ETag the part's bytes come from; nil: none recorded (the part is then not resumed).
    private(set) var etag: String?

    init(destination: URL) {
        path = destination.path + ".part"
        etagPath = destination.path + ".part.etag"
        etag = (try? String(contentsOfFile: etagPath, encoding: .utf8)).flatMap { $0.isEmpty ? nil : $0 }
        if etag == nil { unlink(path) }  // a part without its ETag cannot be resumed safely
    }

    /// Bytes in the part.
    var size: Int { fileSize(path) ?? 0 }

    /// Makes `tag` the part's ETag (written beside it atomically) when it has none.
    /// - Throws: ``RemoteError/changed(object:reason:)`` when the part has another ETag (the object
    ///   was replaced; the part is discarded), ``RemoteError/local(path:reason:)`` when it cannot be written.
    func adopt(_ tag: String, object: String) throws {
        if let known = etag {
            guard known == tag else {
                restart()
                throw RemoteError.changed(object: object, reason: "ETag \(known) became \(tag)")
            }
            return
        }
        do { try writeAtomically(Data(tag.utf8), to: URL(fileURLWithPath: etagPath)) } catch {
            throw RemoteError.local(path: etagPath, reason: "cannot record the download's ETag: \(error)")
        }
        etag = tag
    }

    /// Discards the part and its ETag: the next attempt starts from the first byte.
    func restart() { unlink(path); unlink(etagPath); etag = nil }

    /// The download is complete (the part renamed): its ETag file goes too.
    func finish() { unlink(etagPath) }
}
