import CVips
import Foundation
import PyramidCache

/// Decodes one image file to its largest stored level with libvips.
///
/// Steps: read the file (it must open and not be empty); parse the header only and refuse images
/// over `maxPixels` (a decompression bomb is refused before any pixel is decoded); decode with
/// `fail_on=error` (JPEG shrink-on-load when the image is 4x the target or more); turned upright;
/// converted to 8-bit sRGB or grey with alpha flattened onto white; resized with libvips' linear
/// kernel to short side = the stored size; for `center` only the centre columns are computed and
/// the centred square is cut out of the rows.
struct ImageFile {
    /// Decoded pixels of the largest level.
    struct Decoded {
        var pixels: [UInt8]
        var width: Int
        var height: Int
        /// What libvips warned about while decoding it (a damaged but decodable file).
        var warnings: [String] = []
    }

    let storedSide: Int
    let crop: BuildOptions.Crop
    let channels: Int
    let maxPixels: Int

    /// Returns the decoded image or the reason the file is skipped.
    func decode(_ path: String) -> Result<Decoded, SkipReason> {
        // Read the file once; libvips then works from memory (no second open, no file-loader sniffing).
        let bytes: [UInt8]
        switch readFile(path) {
        case .success(let b): bytes = b
        case .failure(let reason): return .failure(reason)
        }
        _ = Vips.takeWarnings()
        var result = bytes.withUnsafeBytes { buffer in decode(buffer) }
        // libvips' warnings were given on this thread while it decoded this file: they are the file's.
        var seen = Set<String>()
        let warnings = Vips.takeWarnings().filter { seen.insert($0).inserted }  // each once, in the order given
        // libvips' message was read from a buffer all workers share: find it again, alone.
        if case .failure(let reason) = result, reason.fromVips {
            result = Vips.diagnose { bytes.withUnsafeBytes { buffer in decode(buffer) } }
            _ = Vips.takeWarnings()
        }
        switch result {
        case .success(var decoded):
            decoded.warnings = warnings
            return .success(decoded)
        case .failure(var reason):
            if !warnings.isEmpty { reason.text += "; libvips warned: " + warnings.prefix(3).joined(separator: "; ") }
            return .failure(reason)
        }
    }

    private func decode(_ buffer: UnsafeRawBufferPointer) -> Result<Decoded, SkipReason> {
        guard let headerPtr = pyr_vips_load_buffer(buffer.baseAddress, buffer.count, 1) else {
            return .failure(.init("not an image libvips can read (\(Vips.takeError()))", fromVips: true))
        }
        var source = VImage(headerPtr)
        var (w, h) = (source.width, source.height)
        if w * h > maxPixels {
            return .failure(.init("header claims \(w)x\(h) = \(w * h) pixels, more than --max-pixels \(maxPixels); refused before decoding"))
        }
        if let o = source.int("orientation"), (5...8).contains(o) { swap(&w, &h) } // turned upright below
        // Resize the whole image to short side = storedSide; the centre square is cut out of the
        // decoded rows afterwards. (vips_thumbnail's own centre crop first copies the image to memory
        // through a libvips threadpool, which cost more than the crop; and libvips 8.14's
        // vips_thumbnail does not pass fail-on to its shrink-on-load decode, so truncated files would
        // decode to grey. Hence: our own loader with fail_on, then vips_thumbnail_image.)
        let (tw, th) = fullSize(width: w, height: h, short: storedSide)
        if crop == .full && max(tw, th) > RecordHeader.maxSide {
            return .failure(.init("a \(w)x\(h) image stored whole at short side \(storedSide) would be \(tw)x\(th) px; a record holds at most \(RecordHeader.maxSide) px a side"))
        }
        let factor = Double(min(w, h)) / Double(storedSide)
        if factor >= 4, let loader = pyr_vips_loader_name(buffer.baseAddress, buffer.count),
           String(cString: loader).hasPrefix("jpegload") {
            // Shrink-on-load: libjpeg decodes at 1/2, 1/4 or 1/8 size, keeping at least 2x to resample.
            let shrink: Int32 = factor >= 16 ? 8 : factor >= 8 ? 4 : 2
            guard let shrunk = pyr_vips_load_buffer(buffer.baseAddress, buffer.count, shrink) else {
                return .failure(.init("cannot decode (\(Vips.takeError()))", fromVips: true))
            }
            source = VImage(shrunk)
        }
        do {
            // Upright, then the colour the cache stores (8-bit sRGB or grey, alpha flattened onto
            // white; CMYK through its embedded or libvips' fallback profile), then one resize with
            // the linear kernel — the antialiased bilinear filter of every smaller level and of the
            // loader, so all sizes of a sample are made the same way. (vips_thumbnail_image, used
            // before, resized with lanczos3: twice the taps, a third of a photo build's time.)
            var image = try source.apply("vips_autorot") { pyr_vips_autorot($0, $1) }
            let space = channels == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB
            let ready = pyr_vips_interpretation(image.ptr) == space && pyr_vips_format(image.ptr) == VIPS_FORMAT_UCHAR && image.bands == channels
            if !ready { // most photos are 8-bit sRGB already; skip the no-op stages
                image = try image.apply("vips_colourspace") { pyr_vips_colourspace($0, $1, space) }
                if image.hasAlpha { image = try image.apply("vips_flatten") { pyr_vips_flatten_white($0, $1) } }
                image = try image.apply("vips_cast") { pyr_vips_cast_uchar($0, $1) }
                if image.bands > channels { image = try image.apply("vips_extract_band") { pyr_vips_extract_band($0, $1, 0, Int32(channels)) } }
            }
            if image.width != tw || image.height != th {
                let (hs, vs) = (Double(tw) / Double(image.width), Double(th) / Double(image.height))
                image = try image.apply("vips_resize") { pyr_vips_resize($0, $1, hs, vs) }
            }
            guard image.bands == channels else { return .failure(.init("has \(image.bands) bands after conversion, expected \(channels)")) }
            guard image.width == tw, image.height == th else {
                return .failure(.init("decoded to \(image.width)x\(image.height), expected \(tw)x\(th)"))
            }
            // A centre crop of a landscape image asks libvips for the centre columns only: the
            // resize then computes no column it would throw away (same values, a quarter less work
            // for 4:3 photos). Every row is still computed, so damage anywhere is still seen.
            let x0 = crop == .center ? (tw - storedSide) / 2 : 0
            let w = crop == .center ? min(tw, storedSide) : tw
            let pixels = try image.pixels(strip: 16, columns: x0..<(x0 + w))
            if crop == .center && th != storedSide {
                return .success(Decoded(pixels: centreSquare(pixels, width: w, height: th), width: storedSide, height: storedSide))
            }
            return .success(Decoded(pixels: pixels, width: w, height: th))
        } catch let failure as VipsFailure {
            return .failure(.init("cannot decode (\(failure.message))", fromVips: true))
        } catch {
            return .failure(.init("cannot decode (\(error))"))
        }
    }

    /// The centred `storedSide` square of an image whose short side is `storedSide`.
    private func centreSquare(_ pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
        let side = storedSide, c = channels
        let (x0, y0) = ((width - side) / 2, (height - side) / 2)
        var out = [UInt8](repeating: 0, count: side * side * c)
        pixels.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for y in 0..<side {
                    dst.baseAddress!.advanced(by: y * side * c)
                        .copyMemory(from: src.baseAddress!.advanced(by: ((y0 + y) * width + x0) * c), byteCount: side * c)
                }
            }
        }
        return out
    }

    /// Reads a whole file; the reasons name what a person would check (permissions, a folder, an empty file).
    private func readFile(_ path: String) -> Result<[UInt8], SkipReason> {
        let fd = open(path, O_RDONLY)
        if fd < 0 { return .failure(.init("cannot open: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.init("cannot stat: \(String(cString: strerror(errno)))")) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return .failure(.init("is a folder")) }
        if st.st_size == 0 { return .failure(.init("empty file (0 bytes)")) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { return .failure(.init("cannot read: \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            done += n
        }
        if done < bytes.count { bytes.removeLast(bytes.count - done) }
        return .success(bytes)
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
    /// The text holds a message read from libvips' error buffer.
    var fromVips: Bool
    init(_ text: String, fromVips: Bool = false) { self.text = text; self.fromVips = fromVips }
}
