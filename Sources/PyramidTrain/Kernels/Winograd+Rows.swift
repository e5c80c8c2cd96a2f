/// Rows split into their even and odd columns and merged back: the layout the Winograd transforms
/// work in (tile (i, j)'s columns 2j and 2j+1 side by side in two arrays).
extension Winograd {
    /// `even[j] = row[2j]`, `odd[j] = row[2j + 1]` for a row of `w` values (odd: the last pair is
    /// `(row[w − 1], 0)`), never touching memory past the row or past the pairs.
    @inline(__always)
    static func split(_ row: UnsafePointer<Float>, width w: Int, even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>) {
        splitPairs(row, pairs: w / 2, even: even, odd: odd, spill: false)
        if w % 2 == 1 { even[w / 2] = row[w - 1]; odd[w / 2] = 0 }
    }

    /// `row[2j] = even[j]`, `row[2j + 1] = odd[j]` for a row of `w` values (the inverse of ``split(_:width:even:odd:)``).
    @inline(__always)
    static func merge(even: UnsafePointer<Float>, odd: UnsafePointer<Float>, width w: Int, into row: UnsafeMutablePointer<Float>) {
        mergePairs(even: even, odd: odd, pairs: w / 2, into: row, spill: false)
        if w % 2 == 1 { row[w - 1] = even[w / 2] }
    }

    /// `even[j] = row[2j]`, `odd[j] = row[2j + 1]` for the `pairs` pairs of an even-width row,
    /// eight pairs (one SIMD16 load) at a time, the last block overlapping the one before. A row of
    /// fewer than eight pairs is one block when `spill` (the 16 floats from `row` are readable and
    /// the 8 − `pairs` values after `even` and `odd` may be overwritten), else scalar.
    @inline(__always)
    static func splitPairs(_ row: UnsafePointer<Float>, pairs: Int, even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>,
                           spill: Bool) {
        @inline(__always) func block(_ j: Int) {
            let q = Kernels.load16(row + 2 * j)
            Kernels.store(q.evenHalf, even + j); Kernels.store(q.oddHalf, odd + j)
        }
        pairBlocks(pairs, spill: spill, block, scalar: { j in even[j] = row[2 * j]; odd[j] = row[2 * j + 1] })
    }

    /// `row[2j] = even[j]`, `row[2j + 1] = odd[j]` for `pairs` pairs (the inverse of
    /// ``splitPairs(_:pairs:even:odd:spill:)``); with fewer than eight pairs one block of 16 when
    /// `spill` (the values after the row are written again later and `even`/`odd` are readable
    /// for eight), else scalar.
    @inline(__always)
    static func mergePairs(even: UnsafePointer<Float>, odd: UnsafePointer<Float>, pairs: Int, into row: UnsafeMutablePointer<Float>, spill: Bool) {
        @inline(__always) func block(_ j: Int) {
            var q = SIMD16<Float>()
            q.evenHalf = Kernels.load(even + j); q.oddHalf = Kernels.load(odd + j)
            Kernels.store16(q, row + 2 * j)
        }
        pairBlocks(pairs, spill: spill, block, scalar: { j in row[2 * j] = even[j]; row[2 * j + 1] = odd[j] })
    }

    /// `block(j)` for blocks of eight pairs from `j`, the last overlapping the one before; with
    /// fewer than eight pairs one block from 0 when `spill`, else `scalar(j)` for each pair.
    @inline(__always)
    static func pairBlocks(_ pairs: Int, spill: Bool, _ block: (Int) -> Void, scalar: (Int) -> Void) {
        if pairs >= 8 {
            var j = 0
            while j + 8 <= pairs { block(j); j += 8 }
            if j < pairs { block(pairs - 8) }
        } else if spill {
            block(0)
        } else {
            for j in 0..<pairs { scalar(j) }
        }
    }
}
