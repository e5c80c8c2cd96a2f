#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

// The few things the reading side (PyramidCache, PyramidLoader, PyramidC) needs that
// FoundationEssentials does not have: threads, a condition variable, path names and text
// trimming. With them, libPyramidC links FoundationEssentials alone and not all of Foundation
// (whose ICU data is most of its size; the Python package carries the library).

/// A mutex with a condition variable (`pthread_mutex_t` and `pthread_cond_t`), like NSCondition.
///
/// `@unchecked Sendable`: the pthread objects are made for sharing between threads; they live at
/// stable heap addresses for the object's lifetime.
package final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // timed waits immune to clock changes
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a signal (the mutex locked by the caller; released while waiting).
    package func wait() { pthread_cond_wait(cond, mutex) }
    /// Waits for a signal at most `seconds`; returns false when the time ran out.
    @discardableResult
    package func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanoseconds = Int(now.tv_nsec) + Int(max(0, seconds) * 1e9)
        var deadline = timespec(tv_sec: now.tv_sec + nanoseconds / 1_000_000_000, tv_nsec: nanoseconds % 1_000_000_000)
        return pthread_cond_timedwait(cond, mutex, &deadline) == 0
    }
    package func signal() { pthread_cond_signal(cond) }
    package func broadcast() { pthread_cond_broadcast(cond) }
}

/// Runs `body` on a new detached thread, as `Thread { … }.start()` did. `name` says what the
/// thread is for (kept with it for a debugger: `box.name`; glibc's pthread_setname_np is not
/// visible to Swift without _GNU_SOURCE).
package func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void, name: String
        init(_ b: @escaping @Sendable () -> Void, _ n: String) { body = b; name = n }
    }
    let box = Unmanaged.passRetained(Box(body, String(decoding: name.utf8.prefix(15), as: UTF8.self))).toOpaque()
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let rc = pthread_create(&thread, &attributes, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    pthread_attr_destroy(&attributes)
    precondition(rc == 0, "pthread_create failed: \(String(cString: strerror(rc)))")
}

/// Sleeps the calling thread for `seconds`.
package func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// The user's home directory: `$HOME`, else the password database's.
func homeDirectory(_ environment: [String: String]) -> String {
    if let home = environment["HOME"], !home.isEmpty { return home }
    if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
    return "/"
}

/// Path names as strings (NSString's path methods, which FoundationEssentials lacks).
package enum PathName {
    /// `a/b/c` → `a/b`; `c` → ``; `/c` → `/`.
    package static func directory(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        var head = p[..<slash]
        while head.hasSuffix("/") { head = head.dropLast() }  // a//b → a
        return head.isEmpty ? "/" : String(head)
    }

    /// `a/b/c` → `c`.
    package static func last(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return String(p) }
        return p == "/" ? "/" : String(p[p.index(after: slash)...])
    }

    /// `a` + `b` → `a/b` (one slash between them).
    package static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }
}

extension StringProtocol {
    /// Without the leading and trailing characters in `set`.
    package func trimming(_ set: Set<Character>) -> String {
        guard let first = firstIndex(where: { !set.contains($0) }), let last = lastIndex(where: { !set.contains($0) }) else { return "" }
        return String(self[first...last])
    }

    /// Without leading and trailing spaces and tabs.
    package func trimmingBlanks() -> String { trimming([" ", "\t"]) }

    /// Without leading and trailing white space and line breaks.
    package func trimmingWhitespace() -> String { trimming([" ", "\t", "\n", "\r", "\r\n", "\u{0B}", "\u{0C}"]) }
}

/// `value` with `digits` decimals (`String(format: "%.1f")`).
package func formatFixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return String(value) }
    var buffer = [CChar](repeating: 0, count: 64)
    let n = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.\(digits)f", $0) }
    return String(decoding: buffer[..<max(0, min(Int(n), buffer.count - 1))].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Two lowercase hex digits per byte.
package func hexDigits(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    var out = ""
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return out
}
