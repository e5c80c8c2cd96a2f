import CVips
import Foundation

/// Decodes one image file to its largest stored level with libvips.
///
/// Steps: check the file can be opened and is not empty; read the header only and refuse images
/// over `maxPixels` (a decompression bomb is refused before any pixel is decoded); then
/// `vips_thumbnail` with shrink-on-load (centre crop, or exact size for `full`), conversion to sRGB
/// or grey, alpha flattened onto white, 8 bits per channel.
struct ImageFile {
    /// Decoded pixels of the largest level.
    struct Decoded {
        var pixels: [UInt8]
        var width: Int
        var height: Int
    }

    let storedSide: Int
    let crop: BuildOptions.Crop
    let channels: Int
    let maxPixels: Int

    /// Returns the decoded image or the reason the file is skipped.
    func decode(_ path: String) -> Result<Decoded, SkipReason> {
        let fd = open(path, O_RDONLY)
        if fd < 0 { return .failure(.init("cannot open: \(String(cString: strerror(errno)))")) }
        var st = stat()
        let statOK = fstat(fd, &st) == 0
        close(fd)
        if statOK && (st.st_mode & S_IFMT) == S_IFDIR { return .failure(.init("is a folder")) }
        if statOK && st.st_size == 0 { return .failure(.init("empty file (0 bytes)")) }

        guard let headerPtr = pyr_vips_open_header(path) else {
            return .failure(.init("not an image libvips can read (\(Vips.takeError()))"))
        }
        let header = VImage(headerPtr)
        var (w, h) = (header.width, header.height)
        if w * h > maxPixels {
            return .failure(.init("header claims \(w)x\(h) = \(w * h) pixels, more than --max-pixels \(maxPixels); refused before decoding"))
        }
        if let o = header.int("orientation"), (5...8).contains(o) { swap(&w, &h) } // thumbnail turns it upright
        let (tw, th) = crop == .center ? (storedSide, storedSide) : fullSize(width: w, height: h, short: storedSide)
        do {
            var image: VImage
            var out: UnsafeMutablePointer<VipsImage>?
            guard pyr_vips_thumbnail(path, &out, Int32(tw), Int32(th), crop == .center ? 1 : 0) == 0, let out else {
                return .failure(.init("cannot decode (\(Vips.takeError()))"))
            }
            image = VImage(out)
            image = try image.apply("vips_colourspace") { pyr_vips_colourspace($0, $1, channels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB) }
            if image.hasAlpha { image = try image.apply("vips_flatten") { pyr_vips_flatten_white($0, $1) } }
            image = try image.apply("vips_cast") { pyr_vips_cast_uchar($0, $1) }
            if image.bands > channels { image = try image.apply("vips_extract_band") { pyr_vips_extract_band($0, $1, 0, Int32(channels)) } }
            guard image.bands == channels else { return .failure(.init("has \(image.bands) bands after conversion, expected \(channels)")) }
            let pixels = try image.pixels()
            guard image.width == tw, image.height == th, pixels.count == tw * th * channels else {
                return .failure(.init("decoded to \(image.width)x\(image.height), expected \(tw)x\(th)"))
            }
            return .success(Decoded(pixels: pixels, width: tw, height: th))
        } catch let failure as VipsFailure {
            return .failure(.init("cannot decode (\(failure.message))"))
        } catch {
            return .failure(.init("cannot decode (\(error))"))
        }
    }
}

/// Size with short side `short` and the aspect ratio of `width × height`.
func fullSize(width: Int, height: Int, short: Int) -> (Int, Int) {
    if width <= height {
        return (short, max(1, Int((Double(height) * Double(short) / Double(width)).rounded())))
    }
    return (max(1, Int((Double(width) * Double(short) / Double(height)).rounded())), short)
}

/// Why an item was skipped.
struct SkipReason: Error {
    var text: String
    init(_ text: String) { self.text = text }
}
