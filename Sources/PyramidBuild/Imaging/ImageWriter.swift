import CVips
import Foundation
import PyramidCache

/// Writes pixels as PNG with libvips.
public enum ImageWriter {
    /// Writes `width × height × channels` interleaved 8-bit pixels to a PNG file.
    /// - Throws: ``BuildError/output(path:reason:)`` when the file cannot be written.
    public static func writePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String) throws {
        try Vips.start()
        try pixels.withUnsafeBytes { raw in
            var image = try VImage.wrap(raw, width: width, height: height, bands: channels)
            image = try image.apply("vips_copy") {
                pyr_vips_copy_interpretation($0, $1, channels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB)
            }
            try save(image, to: path)
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

    /// Saves `image` as PNG to a temporary file beside `path`, then renames it over `path`: a
    /// failed write (a full disk) leaves no truncated PNG and `path` as it was.
    static func save(_ image: VImage, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        guard pyr_vips_pngsave(image.ptr, tmp) == 0, rename(tmp, path) == 0 else {
            let reason = Vips.takeError()
            unlink(tmp)
            if let full = diskFull(url.deletingLastPathComponent().path, function: "vips_pngsave") { throw full }
            throw BuildError.output(path: path, reason: "cannot write PNG (\(reason))")
        }
    }
}
