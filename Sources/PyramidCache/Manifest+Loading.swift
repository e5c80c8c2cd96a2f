#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Reading a manifest: the version first, then the whole, then its consistency.
extension Manifest {
    fileprivate struct VersionProbe: Decodable { var formatVersion: Int }

    /// Reads `manifest.json` from a cache directory, checking the version before anything else.
    /// - Throws: ``CacheError/missingManifest(path:)``, ``CacheError/unsupportedVersion(path:found:supported:)``,
    ///   ``CacheError/invalidManifest(path:reason:)``.
    public static func load(from directory: URL) throws -> Manifest {
        let url = directory.appendingPathComponent(fileName)
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT where FileManager.default.fileExists(atPath: directory.path): throw CacheError.missingManifest(path: directory.path)
            case ENOENT: throw CacheError.io(path: directory.path, reason: "no such cache directory")
            case ENOTDIR: throw CacheError.io(path: directory.path, reason: "is a file, not a cache directory")
            default: throw CacheError.io(path: url.path, reason: "cannot open: \(String(cString: strerror(code)))")  // EMFILE, EACCES…
            }
        }
        defer { close(fd) }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw CacheError.io(path: url.path, reason: "cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data.append(contentsOf: chunk[..<n])
        }
        return try decode(data, path: url.path)
    }

    /// Decodes and validates manifest JSON read from `path` (a file or an object's name).
    public static func decode(_ data: Data, path: String) throws -> Manifest {
        let decoder = JSONDecoder()
        let probe: VersionProbe
        do { probe = try decoder.decode(VersionProbe.self, from: data) } catch {
            guard (try? decoder.decode(AnyJSONObject.self, from: data)) != nil else {
                throw CacheError.invalidManifest(path: path, reason: "it is not a JSON object (damaged or truncated)")
            }
            throw CacheError.invalidManifest(path: path, reason: "no formatVersion, or one that is not an integer")
        }
        guard readableFormatVersions.contains(probe.formatVersion) else {
            throw CacheError.unsupportedVersion(path: path, found: probe.formatVersion, supported: currentFormatVersion)
        }
        let manifest: Manifest
        do { manifest = try decoder.decode(Manifest.self, from: data) } catch {
            throw CacheError.invalidManifest(path: path, reason: "\(error)")
        }
        try manifest.validate(path: path)
        return manifest
    }
}

/// Decodes from any JSON object (and from nothing else): tells a manifest without a version
/// from one that is not JSON.
private struct AnyJSONObject: Decodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    init(from decoder: any Decoder) throws { _ = try decoder.container(keyedBy: Key.self) }
}
