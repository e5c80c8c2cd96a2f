#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The weights that resample one axis: output pixel `j` is `Σ_t weights[j·stride + t] · source[first[j] + t]`.
///
/// The filter is the triangle (bilinear) kernel, widened by the scale when shrinking so that every
/// source pixel contributes (antialiasing, as PIL's and libvips' "linear" resamplers do). Taps
/// beyond the image's edge that lie inside the box are padding: black, they keep their weight, so
/// a padded crop is rendered as if the black border were part of the image (what resizing a
/// pad-and-crop made at full size gives). Taps beyond the edge and outside the box are dropped and
/// the rest renormalized (the view's own edge keeps its value). An output pixel with no tap in the
/// image is padding (`first == -1`): zero.
struct AxisTable {
    /// First source index of each output pixel, or -1 for padding.
    var first: [Int32]
    /// Number of taps of each output pixel.
    var taps: [Int32]
    /// `stride` weights per output pixel.
    var weights: [Float]
    var stride: Int
    /// Every output pixel is padding or one tap of weight 1: the axis is a plain gather.
    var isGather: Bool
    /// Lowest and highest source index used (lo > hi when all padding).
    var lo: Int, hi: Int

    /// - Parameters:
    ///   - source: source pixels on this axis.
    ///   - output: output pixels on this axis.
    ///   - origin: the box's start, in source pixels (may be negative).
    ///   - extent: the box's length, in source pixels.
    ///   - flip: output pixel `j` takes the place of `output - 1 - j`.
    init(source: Int, output: Int, origin: Double, extent: Double, flip: Bool) {
        var scale = extent / Double(output)
        if abs(scale - 1) < 1e-9 { scale = 1 }
        let support = max(1.0, scale)
        stride = Int((2 * support).rounded(.up)) + 1
        var first = [Int32](repeating: -1, count: output)
        var taps = [Int32](repeating: 0, count: output)
        var weights = [Float](repeating: 0, count: output * stride)
        var gather = true, lo = Int.max, hi = Int.min
        let stride = self.stride
        // Source pixel k (centre k + 0.5) is black padding when it lies beyond the image but in the box.
        let boxFirst = Int((origin - 0.5).rounded(.up)), boxLast = Int((origin + extent - 0.5).rounded(.down))
        weights.withUnsafeMutableBufferPointer { wb in
            for j in 0..<output {
                let jj = flip ? output - 1 - j : j
                let u = origin + (Double(jj) + 0.5) * scale
                var center = u - 0.5
                let r = center.rounded()
                if abs(center - r) < 1e-6 { center = r }
                let k0 = max(min(0, boxFirst), Int((center - support).rounded(.down)))
                let k1 = min(max(source - 1, boxLast), Int((center + support).rounded(.up)))
                // The triangle is positive strictly inside its support: the positive taps are contiguous.
                var sum = 0.0, n = 0, start = -1
                let w = wb.baseAddress! + j * stride
                var k = k0
                while k <= k1 && n < stride {
                    let wk = 1 - abs(Double(k) - center) / support
                    if wk > 1e-9 {
                        sum += wk
                        if k >= 0 && k < source {
                            if start < 0 { start = k }
                            w[n] = Float(wk); n += 1
                        }
                    }
                    k += 1
                }
                guard start >= 0, sum > 0 else { continue }
                let inv = Float(1 / sum)
                for t in 0..<n { w[t] *= inv }
                first[j] = Int32(start)
                taps[j] = Int32(n)
                if n != 1 { gather = false }
                lo = min(lo, start); hi = max(hi, start + n - 1)
            }
        }
        self.first = first; self.taps = taps; self.weights = weights
        self.isGather = gather; self.lo = lo; self.hi = hi
    }
}
