import CXXHash
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

extension Manifest.FileDigest {
    /// The size and digest of the file at `path`; nil when it cannot be read.
    public init?(ofFile path: String) {
        var info = stat()
        guard stat(path, &info) == 0, let sum = Self.xxh3(ofFile: path) else { return nil }
        self.init(bytes: Int(info.st_size), xxh3: sum)
    }

    /// XXH3-64 (seed 0) of the file at `path`, read in 4 MiB pieces; nil when it cannot be read.
    public static func xxh3(ofFile path: String) -> UInt64? {
        guard let state = XXH3_createState() else { return nil }
        defer { XXH3_freeState(state) }
        XXH3_64bits_reset(state)
        guard forEachPiece(ofFile: path, { XXH3_64bits_update(state, $0, $1); return true }) else { return nil }
        return XXH3_64bits_digest(state)
    }
}

/// Reads the file at `path` in 4 MiB pieces, handing each to `body` (which returns false to stop
/// with a failure). False when the file cannot be opened or read, or `body` failed.
func forEachPiece(ofFile path: String, _ body: (UnsafeRawPointer, Int) -> Bool) -> Bool {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4 << 20, alignment: 64)
    defer { buffer.deallocate() }
    while true {
        let n = read(fd, buffer, 4 << 20)
        if n < 0 { if errno == EINTR { continue }; return false }
        if n == 0 { return true }
        guard body(buffer, n) else { return false }
    }
}
