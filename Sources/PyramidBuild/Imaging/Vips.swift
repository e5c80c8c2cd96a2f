import CVips
import Foundation
import Synchronization

/// libvips set-up and a small owning wrapper around `VipsImage`.
enum Vips {
    private static let started: Bool = {
        // libvips' warnings (a damaged JPEG can print nine) go to the file being decoded, not the terminal.
        pyr_vips_capture_warnings { _, _, message, _ in
            guard let message else { return }
            Vips.recordWarning(String(cString: message))
        }
        return pyr_vips_init() == 0
    }()

    /// Warnings libvips gave on each thread since that thread last took them.
    private static let warnings = Mutex<[UInt: [String]]>([:])

    static func recordWarning(_ text: String) {
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        warnings.withLock { $0[UInt(bitPattern: Int(pthread_self())), default: []].append(line) }
    }

    /// Takes the warnings libvips gave on the calling thread (the work runs on the thread that asks for pixels).
    static func takeWarnings() -> [String] {
        warnings.withLock { $0.removeValue(forKey: UInt(bitPattern: Int(pthread_self()))) ?? [] }
    }

    /// Starts libvips once per process (single-threaded per call, no operation cache).
    static func start() throws {
        guard started else { throw BuildError.vips(function: "vips_init", message: takeError()) }
    }

    /// Guards every read of libvips' error buffer, which is one per process: a reader never empties
    /// it while another thread is diagnosing a failure. Recursive (so not a `Mutex`): a diagnosis's
    /// body reads the buffer too.
    private static let errorLock = NSRecursiveLock()

    /// Runs `body` again with the error buffer emptied first and no other thread reading it, so the
    /// message it takes is the one its own failure left (a failure first seen while other workers
    /// were decoding may have been taken together with, or instead of, theirs).
    static func diagnose<T>(_ body: () -> T) -> T {
        errorLock.lock(); defer { errorLock.unlock() }
        pyr_vips_error_clear()
        return body()
    }

    /// Takes and clears libvips' error buffer.
    static func takeError() -> String {
        errorLock.lock(); defer { errorLock.unlock() }
        guard let p = pyr_vips_error_take() else { return "unknown libvips error" }
        defer { pyr_g_free(p) }
        let text = String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
        // One line is enough for a report; libvips often repeats the cause on several lines.
        return text.split(separator: "\n").first.map(String.init) ?? "unknown libvips error"
    }

    /// Frees libvips' per-thread state; call when a worker thread ends.
    static func threadShutdown() { pyr_vips_thread_shutdown() }
}

/// An owned `VipsImage` reference, released on deinit.
final class VImage {
    let ptr: UnsafeMutablePointer<VipsImage>

    init(_ ptr: UnsafeMutablePointer<VipsImage>) { self.ptr = ptr }
    /// Wraps an image someone else owns, taking a reference of its own.
    convenience init(retaining ptr: UnsafeMutablePointer<VipsImage>) {
        g_object_ref(ptr)
        self.init(ptr)
    }
    deinit { pyr_vips_unref(ptr) }

    var width: Int { Int(pyr_vips_width(ptr)) }
    var height: Int { Int(pyr_vips_height(ptr)) }
    var bands: Int { Int(pyr_vips_bands(ptr)) }
    var hasAlpha: Bool { pyr_vips_hasalpha(ptr) != 0 }

    /// Runs one libvips operation producing a new image; the error names the operation.
    func apply(_ name: String, _ op: (UnsafeMutablePointer<VipsImage>, UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws -> VImage {
        var out: UnsafeMutablePointer<VipsImage>?
        guard op(ptr, &out) == 0, let out else { throw VipsFailure(function: name, message: Vips.takeError()) }
        return VImage(out)
    }

    /// An integer header field (e.g. `orientation`), or nil when absent. An absent field leaves
    /// libvips' error buffer alone (asking `vips_image_get_int` for it would add a message that a
    /// later failure would then report as its reason).
    func int(_ field: String) -> Int? {
        guard pyr_vips_has_field(ptr, field) != 0 else { return nil }
        var v: Int32 = 0
        return vips_image_get_int(ptr, field, &v) == 0 ? Int(v) : nil
    }

    /// Computes the image in the calling thread and returns its pixels (interleaved; 8-bit for uchar
    /// images). A region over the whole image is prepared directly, so libvips starts no threadpool:
    /// with one pipeline per image that hand-off between threads cost more than the pixels.
    /// - Parameter strip: rows computed per request. A decoding pipeline wants small strips from
    ///   the top (its sequential loader and line caches expect them); a pipeline over an image in
    ///   memory is cheapest in one request, since each strip would recompute the rows its resampling
    ///   kernel shares with the next.
    func pixels(strip: Int? = nil, columns: Range<Int>? = nil) throws -> [UInt8] {
        let columns = columns ?? 0..<width
        let size = columns.count * height * bands
        var out = [UInt8](unsafeUninitializedCapacity: size) { _, n in n = size }
        let rc = out.withUnsafeMutableBytes {
            pyr_vips_fetch_columns(ptr, $0.baseAddress, $0.count, Int32(strip ?? height), Int32(columns.lowerBound), Int32(columns.count))
        }
        guard rc == 0 else { throw VipsFailure(function: "vips_region_prepare", message: Vips.takeError()) }
        return out
    }

    /// Wraps 8-bit interleaved pixels. The buffer must stay alive (and unmoved) while the image is used.
    static func wrap(_ buffer: UnsafeRawBufferPointer, width: Int, height: Int, bands: Int) throws -> VImage {
        guard let p = pyr_vips_image_from_u8(buffer.baseAddress, buffer.count, Int32(width), Int32(height), Int32(bands)) else {
            throw VipsFailure(function: "vips_image_new_from_memory", message: Vips.takeError())
        }
        return VImage(p)
    }
}

/// A libvips call that failed.
struct VipsFailure: Error, CustomStringConvertible {
    var function: String
    var message: String
    var description: String { "\(function): \(message)" }
}
