import CTurboJPEG
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// JPEG encoding and decoding of 8-bit grey or sRGB pixels with libjpeg-turbo's TurboJPEG API.
///
/// Each instance owns one TurboJPEG handle and a reusable output buffer, so it is used by one thread
/// at a time. Encoding is baseline JPEG with 4:2:0 chroma for colour (what FFCV and most photo
/// pipelines store), greyscale for one channel, the accurate integer DCT on both sides: the output
/// depends only on the pixels and the quality, and decoding is bit-exact across runs and machines.
final class JPEGCodec {
    private let handle: tjhandle
    private let compressing: Bool
    private var buffer: UnsafeMutablePointer<UInt8>?
    private var bufferSize = 0

    /// - Parameter compressing: a compressor (true) or a decompressor (false).
    init(compressing: Bool) {
        self.compressing = compressing
        handle = (compressing ? tjInitCompress() : tjInitDecompress())!
    }

    deinit {
        tjDestroy(handle)
        if let buffer { tjFree(buffer) }
    }

    private func errorText() -> String { String(cString: tjGetErrorStr2(handle)) }

    /// Appends the JPEG stream of `pixels` (`width × height × channels`, interleaved) to `out`.
    func encode(pixels: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int, quality: Int, to out: inout [UInt8]) throws {
        precondition(compressing)
        let subsampling = channels == 1 ? TJSAMP_GRAY : TJSAMP_420
        let needed = Int(tjBufSize(Int32(width), Int32(height), Int32(subsampling.rawValue)))
        if needed > bufferSize {
            if let buffer { tjFree(buffer) }
            buffer = tjAlloc(Int32(needed))
            bufferSize = needed
        }
        var size = UInt(bufferSize)
        var target = buffer
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let rc = tjCompress2(handle, pixels.bindMemory(to: UInt8.self).baseAddress, Int32(width), 0, Int32(height),
                             Int32(format.rawValue), &target, &size, Int32(subsampling.rawValue), Int32(quality),
                             TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT)
        guard rc == 0 else { throw CacheError.jpeg(function: "tjCompress2", message: errorText()) }
        out.append(contentsOf: UnsafeBufferPointer(start: target, count: Int(size)))
    }

    /// Decodes a JPEG stream that must be exactly `width × height` with `channels` channels into
    /// `destination`. Warnings (a truncated or damaged stream) count as errors.
    /// - Returns: nil, or why the stream is not what the record promises.
    func decode(_ jpeg: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int,
                into destination: UnsafeMutableRawBufferPointer) -> String? {
        precondition(!compressing)
        let source = jpeg.bindMemory(to: UInt8.self).baseAddress
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, source, UInt(jpeg.count), &w, &h, &subsampling, &colorspace) == 0 else {
            return "JPEG header: \(errorText())"
        }
        guard Int(w) == width, Int(h) == height else { return "JPEG is \(w)x\(h), header promises \(width)x\(height)" }
        let grey = colorspace == Int32(TJCS_GRAY.rawValue)
        guard grey == (channels == 1) else { return "JPEG has \(grey ? 1 : 3) channels, header promises \(channels)" }
        guard destination.count >= width * height * channels else { return "destination is too small" }
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let rc = tjDecompress2(handle, source, UInt(jpeg.count), destination.bindMemory(to: UInt8.self).baseAddress,
                               Int32(width), 0, Int32(height), Int32(format.rawValue),
                               TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING)
        return rc == 0 ? nil : "JPEG: \(errorText())"
    }
}
