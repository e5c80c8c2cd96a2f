/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast generator whose whole state is one integer.
///
/// Every random choice the loader makes comes from a `SplitMix64` seeded by ``RandomKey/mix(_:)``
/// of the run seed and the choice's coordinates (epoch, stream position, duplicate, …), so each
/// choice is a pure function of those coordinates: no shared stream, no dependence on which thread
/// or which batch made it.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The current state; the next output is a function of it alone.
    public private(set) var state: UInt64

    /// A generator starting at `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.finalize(state)
    }

    /// The SplitMix64 output function (a bijective 64-bit mixer).
    @inline(__always)
    static func finalize(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A uniform integer in `0..<bound` (Lemire's multiply-and-reject: unbiased, and fixed by this
    /// code rather than by the standard library's implementation of `Int.random(in:using:)`).
    @inline(__always)
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }
}

/// Keys that separate the random streams of the loader's decisions.
public enum RandomKey {
    /// The per-epoch permutation.
    public static let permutation: UInt64 = 0x7065_726D
    /// A sample's augmentation (crop box, flip).
    public static let augmentation: UInt64 = 0x6175_676D
    /// TRD's per-epoch Bernoulli draw.
    public static let temporalDecrement: UInt64 = 0x7472_6421
    /// MixSize's per-epoch size order.
    public static let mixSize: UInt64 = 0x6D69_7853

    /// Hashes a list of integers into one seed; order matters.
    public static func mix(_ values: UInt64...) -> UInt64 {
        var h = start
        for v in values { h = step(h, v) }
        return h
    }

    /// ``mix(_:)-(UInt64...)`` of five values, without the variadic array (the per-sample hot path).
    @inline(__always)
    public static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64, _ e: UInt64) -> UInt64 {
        step(step(step(step(step(start, a), b), c), d), e)
    }

    private static let start: UInt64 = 0x243F_6A88_85A3_08D3

    @inline(__always)
    private static func step(_ h: UInt64, _ v: UInt64) -> UInt64 {
        SplitMix64.finalize(h ^ SplitMix64.finalize(v &+ 0x9E37_79B9_7F4A_7C15))
    }
}
