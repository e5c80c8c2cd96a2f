import CZlib
import Foundation
@_exported import PyramidLoader

/// A temporary directory removed when released.
public final class TempDirectory {
    public let url: URL
    public init(_ name: String = "pyramid-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// The tests' seeded generator: the loader's own ``SplitMix64``, announcing its seed (and the test
/// that made it) on standard output so that a failing case can be replayed.
public struct SeededGenerator: RandomNumberGenerator {
    private var base: SplitMix64
    public init(seed: UInt64, _ test: String = #function) {
        print("\(test): seed \(seed)")
        base = SplitMix64(seed: seed)
    }
    public mutating func next() -> UInt64 { base.next() }
}

/// A fixture could not be written (the library call and its message).
public enum FixtureError: Error { case vips(String) }

/// Synthetic images and dataset files for tests, made by code.
public enum Fixtures {
    /// A smooth pattern with structure (gradients plus a disc), so resizing and cropping are visible.
    public static func pattern(width: Int, height: Int, channels: Int, seed: Int = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * channels)
        let cx = Double(width) * (0.3 + 0.4 * Double(seed % 5) / 5), cy = Double(height) * 0.5
        let r = Double(min(width, height)) * 0.3
        for y in 0..<height {
            for x in 0..<width {
                let inside = (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy) < r * r
                for c in 0..<channels {
                    let g = Double(x * (c + 1) + y * (3 - c) + seed * 17) / Double(width + height) * 255
                    let v = inside ? 255 - Int(g) % 256 : Int(g) % 256
                    out[(y * width + x) * channels + c] = UInt8(clamping: v)
                }
            }
        }
        return out
    }

    /// A solid colour.
    public static func solid(width: Int, height: Int, color: [UInt8]) -> [UInt8] {
        Array((0..<(width * height)).lazy.flatMap { _ in color })
    }

    /// A PNG whose header claims `width × height` pixels but which holds almost no data:
    /// a decompression bomb as far as a header check is concerned.
    public static func writePNGBomb(to path: String, width: UInt32, height: UInt32) throws {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            var body = Array(type.utf8) + data
            let crc = body.withUnsafeMutableBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
            body = bigEndian32(data.count) + body + bigEndian32(Int(crc))
            return body
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", bigEndian32(Int(width)) + bigEndian32(Int(height)) + [8, 2, 0, 0, 0])
        png += chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
        png += chunk("IEND", [])
        try Data(png).write(to: URL(fileURLWithPath: path))
    }

    /// Writes an IDX image file and its label file (`<prefix>-images-idx3-ubyte[.gz]`, `<prefix>-labels-idx1-ubyte[.gz]`).
    public static func writeIDX(directory: String, prefix: String, images: [[UInt8]], rows: Int, cols: Int, labels: [UInt8], gzip: Bool) throws {
        let imageBytes = bigEndian32(0x0803) + bigEndian32(images.count) + bigEndian32(rows) + bigEndian32(cols) + images.flatMap { $0 }
        let labelBytes = bigEndian32(0x0801) + bigEndian32(labels.count) + labels
        let suffix = gzip ? ".gz" : ""
        try write(imageBytes, to: "\(directory)/\(prefix)-images-idx3-ubyte\(suffix)", gzip: gzip)
        try write(labelBytes, to: "\(directory)/\(prefix)-labels-idx1-ubyte\(suffix)", gzip: gzip)
    }

    /// Writes an IDX source of `count` images into `directory` (`train-…`, labels `i mod 10`):
    /// smooth patterns (`noisy: false`), or patterns with pseudo-random noise that compress like
    /// real photos of clothes (`noisy: true`, large enough that a debug build takes seconds).
    public static func writeIDXSource(directory: String, count: Int, side: Int = 28, noisy: Bool = false, gzip: Bool = true) throws {
        var state: UInt64 = 7
        let images: [[UInt8]] = (0..<count).map { i in
            guard noisy else { return pattern(width: side, height: side, channels: 1, seed: i) }
            return (0..<(side * side)).map { j in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: (j % side) * 4 + i % 50 + Int(state >> 61))
            }
        }
        try writeIDX(directory: directory, prefix: "train", images: images, rows: side, cols: side,
                     labels: (0..<count).map { UInt8($0 % 10) }, gzip: gzip)
    }

    /// Writes CIFAR records: `labelBytes` label bytes then planar R, G, B of 32×32, from interleaved images.
    public static func writeCIFAR(path: String, images: [[UInt8]], labels: [[UInt8]]) throws {
        var out: [UInt8] = []
        for (image, label) in zip(images, labels) {
            out += label
            for c in 0..<3 { for i in 0..<1024 { out.append(image[i * 3 + c]) } }
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    static func write(_ bytes: [UInt8], to path: String, gzip: Bool) throws {
        if !gzip { try Data(bytes).write(to: URL(fileURLWithPath: path)); return }
        guard let gz = gzopen(path, "wb") else { throw FixtureError.vips("gzopen \(path)") }
        var b = bytes
        _ = b.withUnsafeMutableBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
    }
}

/// The low 32 bits of `value`, big-endian (IDX headers, PNG chunk lengths and CRCs).
func bigEndian32(_ value: Int) -> [UInt8] {
    [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}
