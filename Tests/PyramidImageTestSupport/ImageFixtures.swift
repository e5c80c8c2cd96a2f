import CVips
import Foundation
import PyramidTestSupport

/// Image files written with libvips (for the build's tests and the tool's); apart from
/// PyramidTestSupport so that the loader's and trainer's tests do not link libvips.
extension Fixtures {
    private static let vipsReady: Bool = pyr_vips_init() == 0

    /// Writes pixels with libvips; the format follows the suffix and bracketed save options
    /// (`x.jpg[interlace]`, `x.png[bitdepth=16]`).
    /// - Parameters:
    ///   - alpha: append an alpha band with this value (0–255).
    ///   - cmyk: convert to CMYK before saving (JPEG).
    ///   - sixteenBit: widen to 16 bits per channel before saving (PNG, TIFF).
    public static func writeImage(_ pixels: [UInt8], width: Int, height: Int, channels: Int, to path: String,
                                  alpha: UInt8? = nil, cmyk: Bool = false, sixteenBit: Bool = false, orientation: Int? = nil) throws {
        precondition(vipsReady)
        try pixels.withUnsafeBytes { raw in
            guard var img = pyr_vips_image_from_u8(raw.baseAddress, raw.count, Int32(width), Int32(height), Int32(channels)) else {
                throw FixtureError.vips("new_from_memory")
            }
            var images = [img]
            defer { for i in images { pyr_vips_unref(i) } }
            func step(_ f: (UnsafeMutablePointer<VipsImage>, UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws {
                var out: UnsafeMutablePointer<VipsImage>?
                guard f(img, &out) == 0, let out else { throw FixtureError.vips(String(cString: vips_error_buffer())) }
                images.append(out); img = out
            }
            try step { pyr_vips_copy_interpretation($0, $1, channels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB) }
            if let alpha { try step { pyr_vips_bandjoin_const1($0, $1, Double(alpha)) } }
            if cmyk { try step { pyr_vips_colourspace($0, $1, VIPS_INTERPRETATION_CMYK) } }
            if sixteenBit {
                try step { pyr_vips_linear1($0, $1, 257, 0) }
                try step { pyr_vips_cast($0, $1, VIPS_FORMAT_USHORT) }
                try step { pyr_vips_copy_interpretation($0, $1, channels == 1 ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_RGB16) }
            }
            if let orientation { vips_image_set_int(img, "orientation", Int32(orientation)) }  // EXIF, for JPEG
            guard pyr_vips_save(img, path) == 0 else { throw FixtureError.vips(String(cString: vips_error_buffer())) }
        }
    }
}
