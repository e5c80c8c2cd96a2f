#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// An exclusive advisory lock (`flock`) on a directory that one process writes: a cache being
/// built, a run being trained. The lock file `.pyramid.lock` holds the holder's PID; the lock
/// goes away with the process, however it ends, so a killed writer never leaves a stale lock.
public final class DirectoryLock {
    /// The lock file's name inside the locked directory.
    public static let fileName = ".pyramid.lock"

    private let descriptor: Int32
    /// The lock file.
    public let path: String

    /// Takes the lock on `directory` (which must exist), without waiting.
    /// - Throws: ``CacheError/locked(path:holder:)`` when another process holds it,
    ///   ``CacheError/io(path:reason:)`` when the lock file cannot be created.
    public init(directory: URL) throws {
        path = directory.appendingPathComponent(Self.fileName).path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CacheError.io(path: path, reason: "cannot create the lock file: \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int32($0.trimmingWhitespace()) }
            close(descriptor)
            throw CacheError.locked(path: directory.path, holder: holder)
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
