#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Writes `data` to `url` so that a reader sees the old content or the new one, never a mix.
///
/// What happens depends on what `url` names:
/// - nothing, or a regular file: the data goes to a temporary file beside it, is flushed to disk
///   (`fsync`), then renamed over it (an existing file keeps its permission bits);
/// - a symbolic link: the link is followed (it stays; the file it points to is replaced);
/// - one of this process's open descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
///   `/proc/self/fd/N`, whatever the descriptor is: a pipe, a terminal, a file opened for append by
///   the shell): the data is written into that open file at its position, never by opening its
///   path again (which would truncate a file the shell opened with `>>`) or renaming over it;
/// - a character or block device, or a FIFO (`/dev/null`, a named pipe): the data is written to it
///   in place, since a rename would replace the device node;
/// - a directory or a socket: nothing is written, and the error names it.
///
/// A failed write removes its temporary file and leaves `url` as it was.
/// - Throws: ``CacheError/diskFull(path:function:freeBytes:)`` when the file system really is full
///   (`ENOSPC`, `EDQUOT`), else ``CacheError/io(path:reason:)`` with what the system said.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try writeOutput(data, to: url.path)
}

/// ``writeAtomically(_:to:)`` for a path a person typed: `-` is standard output.
public func writeOutput(_ data: Data, to path: String) throws {
    let target = try OutputTarget(path)
    switch target.kind {
    case .descriptor(let fd): try writeDescriptor(data, fd: fd, path: path)
    case .stream: try writeInPlace(data, to: target.path)
    case .regular, .absent: try replace(target.path, with: data, mode: target.mode)
    }
}

/// True when `path` names this process's standard output (`-`, `/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1`): a command writing its result there prints its own messages elsewhere.
public func isStandardOutput(_ path: String) -> Bool {
    if case .descriptor(let fd)? = (try? OutputTarget(path))?.kind { return fd == 1 }
    return false
}

/// What an output path names once its symbolic links are followed.
struct OutputTarget {
    enum Kind: Equatable { case absent, regular, stream, descriptor(Int32) }
    var path: String
    var kind: Kind
    /// The permission bits of the regular file being replaced.
    var mode: mode_t?

    init(_ path: String) throws {
        if path == "-" { self.path = path; kind = .descriptor(1); mode = nil; return }
        var current = path
        for _ in 0..<40 {
            // A link to one of our descriptors is "magic": its target may be no path at all
            // (`pipe:[51980]`), or the path of a file the shell opened for append.
            if let fd = Self.descriptor(current) {
                self.path = current; kind = .descriptor(fd); mode = nil
                return
            }
            var info = stat()
            guard lstat(current, &info) == 0 else {
                guard errno == ENOENT else { throw fileError(current, "stat", errno) }
                self.path = current; kind = .absent; mode = nil
                return
            }
            switch info.st_mode & S_IFMT {
            case S_IFLNK:
                current = try Self.linkTarget(current)
            case S_IFREG:
                self.path = current; kind = .regular; mode = info.st_mode & 0o7777
                return
            case S_IFCHR, S_IFBLK, S_IFIFO:
                self.path = current; kind = .stream; mode = nil
                return
            case S_IFDIR:
                throw CacheError.io(path: current, reason: "is a directory; name a file to write")
            default:
                throw CacheError.io(path: current, reason: "is a socket or other special file; name a regular file to write")
            }
        }
        throw CacheError.io(path: path, reason: "too many levels of symbolic links")
    }

    /// The descriptor `path` names when it is `/dev/fd/N`, `/proc/self/fd/N` or `/proc/PID/fd/N` of
    /// this process and N is open; nil otherwise.
    static func descriptor(_ path: String) -> Int32? {
        let prefixes = ["/dev/fd/", "/proc/self/fd/", "/proc/\(getpid())/fd/"]
        guard let prefix = prefixes.first(where: { path.hasPrefix($0) }),
              let fd = Int32(path.dropFirst(prefix.count)), fd >= 0, fcntl(fd, F_GETFD) != -1 else { return nil }
        return fd
    }

    /// The path a symbolic link points to, relative to the link's own directory.
    private static func linkTarget(_ link: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(link, &buffer, buffer.count - 1)
        guard n >= 0 else { throw fileError(link, "readlink", errno) }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix("/") { return target }
        return PathName.directory(link).isEmpty
            ? target : PathName.join(PathName.directory(link), target)
    }
}

/// Writes into a temporary file beside `path`, flushes it, then renames it over `path`.
private func replace(_ path: String, with data: Data, mode: mode_t?) throws {
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o666)
    guard fd >= 0 else { throw fileError(path, "create", errno, needed: data.count) }
    var failure: (function: String, code: Int32)?
    if let mode, fchmod(fd, mode) != 0 { failure = ("chmod", errno) }
    if failure == nil, let code = writeAll(fd, data) { failure = ("write", code) }
    if failure == nil, fsync(fd) != 0 { failure = ("fsync", errno) }
    if close(fd) != 0, failure == nil { failure = ("close", errno) }
    if failure == nil, rename(tmp, path) != 0 { failure = ("rename", errno) }
    if let failure {
        unlink(tmp)
        throw fileError(path, failure.function, failure.code, needed: data.count)
    }
}

/// Writes `data` to a device or FIFO as it is (a FIFO's open waits for a reader).
private func writeInPlace(_ data: Data, to path: String) throws {
    var fd: Int32
    repeat { fd = open(path, O_WRONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
    guard fd >= 0 else { throw fileError(path, "open", errno) }
    defer { close(fd) }
    if let code = writeAll(fd, data) {
        throw CacheError.io(path: path, reason: "write failed: \(String(cString: strerror(code)))")
    }
}

/// Writes `data` into the open descriptor `fd` (named `path` in errors), at its position.
private func writeDescriptor(_ data: Data, fd: Int32, path: String) throws {
    var info = stat()
    if fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR {
        throw CacheError.io(path: path, reason: "is a directory; name a file to write")
    }
    if let code = writeAll(fd, data) {
        throw CacheError.io(path: path, reason: "write failed: \(String(cString: strerror(code)))")
    }
}

/// Writes every byte of `data` to `fd`; the errno of a failed write, or nil.
private func writeAll(_ fd: Int32, _ data: Data) -> Int32? {
    data.withUnsafeBytes { raw -> Int32? in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }
}

/// The error of a file operation on `path` that failed with `code`: a full disk when it is one,
/// else what the system said.
func fileError(_ path: String, _ function: String, _ code: Int32, needed: Int = 0) -> CacheError {
    let directory = PathName.directory(path)
    if let full = diskFull(directory.isEmpty ? "." : directory, function: function, errno: code, needed: needed) { return full }
    return .io(path: path, reason: "cannot \(function): \(String(cString: strerror(code)))")
}

/// ``CacheError/diskFull(path:function:freeBytes:)`` when a call that failed with `errno` did so
/// because the file system holding `path` is full, else nil. That is `ENOSPC` or `EDQUOT`, or an
/// `EIO` (how LMDB reports a short write) on a writable file system with less than `needed` bytes
/// (at least 64 KiB) free. Any other error is not a full disk, whatever the free space.
public func diskFull(_ path: String, function: String, errno code: Int32, needed: Int = 0) -> CacheError? {
    var fs = statvfs()
    let known = statvfs(path, &fs) == 0
    let free = known ? Int(fs.f_bavail) * Int(fs.f_frsize) : 0
    switch code {
    case ENOSPC, EDQUOT:
        return .diskFull(path: path, function: function, freeBytes: free)
    case EIO where known && fs.f_flag & UInt(ST_RDONLY) == 0 && free < max(needed, 64 << 10):
        return .diskFull(path: path, function: function, freeBytes: free)
    default:
        return nil
    }
}
