import CVips
import Foundation
import PyramidCache

/// Writes pixels as PNG with libvips.
public enum ImageWriter {
    /// Writes `width × height × channels` interleaved 8-bit pixels to a PNG file.
    /// - Throws: ``BuildError/output(path:reason:)`` when the file cannot be written.
    public static func writePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        try writeOutput(Data(pngData(pixels, width: width, height: height, channels: channels, path: path)), to: path)
    }

    /// `width × height × channels` interleaved 8-bit pixels encoded as PNG, in memory (`path` names
    /// the destination in errors).
    public static func pngData(_ pixels: [UInt8], width: Int, height: Int, channels: Int, path: String) throws -> [UInt8] {
        try Vips.start()
        return try pixels.withUnsafeBytes { raw in
            var image = try VImage.wrap(raw, width: width, height: height, bands: channels)
            image = try image.apply("vips_copy") {
                pyr_vips_copy_interpretation($0, $1, channels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB)
            }
            return try encode(image, path: path)
        }
    }
}

extension ImageWriter {
    /// Renders an SVG document (a chart) to a PNG file with libvips' SVG loader.
    /// - Throws: ``BuildError/output(path:reason:)``.
    public static func writePNG(svg: String, to path: String) throws {
        try Vips.start()
        var bytes = Array(svg.utf8)
        var out: UnsafeMutablePointer<VipsImage>?
        let rc = bytes.withUnsafeMutableBytes { pyr_vips_svgload_buffer($0.baseAddress, $0.count, &out) }
        guard rc == 0, let image = out else { throw BuildError.output(path: path, reason: "cannot render the SVG (\(Vips.takeError()))") }
        defer { g_object_unref(image) }
        try save(VImage(retaining: image), to: path)
    }

    /// Encodes `image` as PNG, then writes it with ``writeAtomically(_:to:)``: a failed write (a full
    /// disk) leaves no truncated PNG and `path` as it was; a device or FIFO is written in place.
    static func save(_ image: VImage, to path: String) throws {
        try writeOutput(Data(try encode(image, path: path)), to: path)
    }

    /// `image` as PNG bytes.
    static func encode(_ image: VImage, path: String) throws -> [UInt8] {
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        guard pyr_vips_pngsave_buffer(image.ptr, &buffer, &length) == 0, let buffer else {
            throw BuildError.output(path: path, reason: "cannot encode PNG (\(Vips.takeError()))")
        }
        defer { pyr_g_free(buffer) }
        return Array(UnsafeRawBufferPointer(start: buffer, count: length))
    }
}
