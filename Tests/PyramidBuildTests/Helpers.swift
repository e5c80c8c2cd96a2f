import Foundation
import PyramidBuild
import PyramidCache
import PyramidTestSupport
import PyramidImageTestSupport

/// Builds `source` into `out` with `options`; returns the report.
@discardableResult
func build(_ source: String, _ out: URL, _ options: BuildOptions, format: SourceFormat? = nil,
           isCancelled: @escaping () -> Bool = { false }, progress: (BuildProgress) -> Void = { _ in }) throws -> BuildReport {
    let catalog = try SourceFormat.open(path: source, format: format, split: "train", classNames: nil)
    return try Builder(catalog: catalog, options: options, output: out).run(progress: progress, isCancelled: isCancelled)
}

/// Every record's stored bytes, level by level in index order, plus the labels: what must be
/// identical between two builds of the same data.
func recordBytes(_ dir: URL) throws -> [[UInt8]] { try CacheFixture.recordBytes(dir) }

/// Writes an IDX source of `count` 28×28 pattern images into `dir`.
func makeIDX(_ dir: TempDirectory, count: Int, gzip: Bool = true, side: Int = 28) throws {
    try Fixtures.writeIDXSource(directory: dir.url.path, count: count, side: side, gzip: gzip)
}

/// Mean absolute difference of two equally long byte arrays.
func meanAbsDiff(_ a: [UInt8], _ b: [UInt8]) -> Double {
    precondition(a.count == b.count)
    return Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(a.count, 1))
}
