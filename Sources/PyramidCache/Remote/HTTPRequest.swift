import CCurl
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Synchronization

/// One HTTP exchange through libcurl, signed with AWS SigV4 by libcurl itself
/// (`CURLOPT_AWS_SIGV4`). The payload is declared `UNSIGNED-PAYLOAD`; TLS protects it in transit
/// and the manifest's digests check what arrived.
struct HTTPRequest {
    var method: String
    var url: String
    var headers: [String] = []
    /// A file to send as the body (PUT), and its size.
    var upload: (path: String, size: Int)?
    /// Receives the body of a 2xx response; returning false aborts the transfer.
    var sink: ((UnsafeRawBufferPointer) -> Bool)?
    /// Called with the status and headers of a 2xx response before its first body bytes.
    var onResponse: ((Int, [String: String]) -> Void)?
}

/// What came back, or why nothing usable did.
enum HTTPOutcome {
    /// A response (any status): its headers (names lowercased) and, unless it was 2xx with a sink,
    /// its body (at most 64 KiB kept).
    case response(status: Int, headers: [String: String], body: [UInt8])
    /// The transfer failed: libcurl's code and message, and the status and headers of the
    /// response if one had begun.
    case transport(code: Int, message: String, status: Int = 0, headers: [String: String] = [:])
}

/// Collects one exchange's status, headers and error body; the curl callbacks reach it through
/// their context pointer.
private final class Exchange {
    var headers: [String: String] = [:]
    var status = 0
    var body: [UInt8] = []
    var sink: ((UnsafeRawBufferPointer) -> Bool)?
    var onResponse: ((Int, [String: String]) -> Void)?
    var sinkAborted = false

    func header(_ line: UnsafeRawBufferPointer) {
        guard let text = String(bytes: line, encoding: .utf8)?.trimmingWhitespace(), !text.isEmpty else { return }
        if text.hasPrefix("HTTP/") {
            // A new response (after a 100 Continue or a redirect): forget the last one's headers.
            headers = [:]
            let parts = text.split(separator: " ")
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        headers[text[..<colon].lowercased()] = text[text.index(after: colon)...].trimmingBlanks()
    }

    func data(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if (200..<300).contains(status), let sink {
            if let onResponse { self.onResponse = nil; onResponse(status, headers) }
            if sink(bytes) { return true }
            sinkAborted = true
            return false
        }
        if body.count < 65_536 { body.append(contentsOf: bytes.prefix(65_536 - body.count)) }
        return true
    }
}

private let headerCallback: pyramid_curl_data_callback = { data, size, count, context in
    guard let data, let context else { return 0 }
    Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue().header(UnsafeRawBufferPointer(start: data, count: size * count))
    return size * count
}

private let dataCallback: pyramid_curl_data_callback = { data, size, count, context in
    guard let data, let context else { return 0 }
    let ok = Unmanaged<Exchange>.fromOpaque(context).takeUnretainedValue().data(UnsafeRawBufferPointer(start: data, count: size * count))
    return ok ? size * count : 0
}

/// libcurl easy handles kept for reuse (their connections stay open between requests).
/// `@unchecked Sendable`: the handles are only touched by the thread that took one from the pool.
final class CurlHandles: @unchecked Sendable {
    /// `@unchecked Sendable`: a handle is used by one thread at a time (taken from the pool, put back).
    private struct Handle: @unchecked Sendable { let raw: UnsafeMutableRawPointer }
    private let pool = Mutex<[Handle]>([])
    private static let initialized: Bool = {
        guard RemoteLibraries.failure == nil else { return false }
        _ = pyramid_openssl_no_atexit()
        return pyramid_curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    }()

    deinit { pool.withLock { for h in $0 { pyramid_curl_easy_cleanup(h.raw) } } }

    /// Runs `request`, signing it with `configuration`'s keys.
    func perform(_ request: HTTPRequest, configuration c: S3Configuration, policy: TransferPolicy, timeout: Double) -> HTTPOutcome {
        guard Self.initialized, let handle = pool.withLock({ $0.popLast()?.raw }) ?? pyramid_curl_easy_init() else {
            return .transport(code: -1, message: RemoteLibraries.failure ?? "libcurl could not be initialized")
        }
        defer { pyramid_curl_easy_reset(handle); let kept = Handle(raw: handle); pool.withLock { $0.append(kept) } }
        let exchange = Exchange()
        exchange.sink = request.sink
        exchange.onResponse = request.onResponse
        let context = Unmanaged.passUnretained(exchange).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        defer { pyramid_curl_slist_free_all(list) }
        var headers = request.headers + ["x-amz-content-sha256: UNSIGNED-PAYLOAD"]
        if let token = c.sessionToken { headers.append("x-amz-security-token: \(token)") }
        for h in headers { list = pyramid_curl_slist_append(list, h) }
        var file: UnsafeMutablePointer<FILE>?
        defer { if let file { fclose(file) } }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            _ = pyramid_curl_setopt_string(handle, CURLOPT_URL, request.url)
            // (Every header given is signed, so none that libcurl would drop, such as an empty `Expect:`.)
            switch request.method {
            case "GET": break
            case "HEAD": _ = pyramid_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
            case "PUT" where request.upload != nil: break
            default: _ = pyramid_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
            }
            _ = pyramid_curl_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(c.region):s3")
            _ = pyramid_curl_setopt_string(handle, CURLOPT_USERNAME, c.accessKey)
            _ = pyramid_curl_setopt_string(handle, CURLOPT_PASSWORD, c.secretKey)
            _ = pyramid_curl_setopt_list(handle, CURLOPT_HTTPHEADER, list)
            _ = pyramid_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback)
            _ = pyramid_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
            _ = pyramid_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, dataCallback)
            _ = pyramid_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
            _ = pyramid_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress)
            _ = pyramid_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            _ = pyramid_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT, policy.connectSeconds)
            _ = pyramid_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, policy.minimumSpeed)
            _ = pyramid_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, policy.stallSeconds)
            _ = pyramid_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000)))
            _ = pyramid_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
            if let bundle = c.caBundle {
                var info = stat()
                let directory = stat(bundle, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
                _ = pyramid_curl_setopt_string(handle, directory ? CURLOPT_CAPATH : CURLOPT_CAINFO, bundle)
            }
            if let upload = request.upload {
                file = fopen(upload.path, "rb")
                guard let file else { return CURLE_READ_ERROR }
                _ = pyramid_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
                _ = pyramid_curl_setopt_pointer(handle, CURLOPT_READDATA, UnsafeMutableRawPointer(file))
                _ = pyramid_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(upload.size))
            }
            return pyramid_curl_easy_perform(handle)
        }
        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && exchange.sinkAborted) {
            var status = 0
            _ = pyramid_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            if code == CURLE_WRITE_ERROR {
                return .transport(code: Int(code.rawValue), message: "the download was stopped by its receiver", status: exchange.status, headers: exchange.headers)
            }
            return .response(status: status == 0 ? exchange.status : status, headers: exchange.headers, body: exchange.body)
        }
        let detail = String(decoding: errorBuffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let message = detail.isEmpty ? String(cString: pyramid_curl_easy_strerror(code)) : detail
        return .transport(code: Int(code.rawValue), message: message, status: exchange.status, headers: exchange.headers)
    }
}

extension HTTPOutcome {
    /// The S3 error code and message of an error response's XML body.
    static func s3Error(_ body: [UInt8]) -> (code: String, message: String) {
        let text = String(decoding: body, as: UTF8.self)
        func element(_ name: String) -> String {
            guard let open = text.firstRange(of: "<\(name)>"), let close = text[open.upperBound...].firstRange(of: "</\(name)>") else { return "" }
            return String(text[open.upperBound..<close.lowerBound])
        }
        return (element("Code"), element("Message"))
    }
}

/// libcurl and OpenSSL's libcrypto, loaded when a remote cache is first used (dlopen, in CCurl):
/// reading local caches needs neither installed, and s3:// uses the system's own.
enum RemoteLibraries {
    /// nil when both loaded; else what is missing and the package that provides it.
    static let failure: String? = {
        var message = [CChar](repeating: 0, count: 512)
        guard pyramid_remote_load(&message, message.count) != 0 else { return nil }
        return String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// - Throws: ``RemoteError/missingLibrary(reason:)`` when libcurl or libcrypto cannot be loaded.
    static func require() throws {
        if let failure { throw RemoteError.missingLibrary(reason: failure) }
    }
}
