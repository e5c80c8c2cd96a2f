import CZlib
import Foundation

/// MNIST-style IDX files, gzipped or not: an `idx3-ubyte` image file (magic 0x00000803,
/// count × rows × cols bytes) and its `idx1-ubyte` label file (magic 0x00000801).
///
/// `path` is a directory holding `<split>-images-idx3-ubyte[.gz]` and
/// `<split>-labels-idx1-ubyte[.gz]` (Debian's dataset-fashion-mnist layout; `t10k` is the test
/// split), or the image file itself, whose label file is found by replacing `images-idx3` with
/// `labels-idx1` in its name.
enum IDXSource: SampleSource {
    static let formats: [SourceFormat] = [.idx]

    static func recognize(path: String, isDirectory: Bool, names: [String]) throws -> SourceFormat? {
        let found = isDirectory ? names.contains(where: { $0.contains("idx3-ubyte") }) : (path as NSString).lastPathComponent.contains("idx3-ubyte")
        return found ? .idx : nil
    }

    static func catalog(path: String, format: SourceFormat, split: String) throws -> SourceCatalog {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        _ = fm.fileExists(atPath: path, isDirectory: &isDir)
        let imagesPath: String
        if isDir.boolValue {
            guard split == "train" || split == "test" else {
                throw BuildError.invalidOption(name: "split", reason: "must be train or test, not \(split)")
            }
            let prefix = split == "train" ? "train" : "t10k"
            let candidates = ["\(prefix)-images-idx3-ubyte.gz", "\(prefix)-images-idx3-ubyte", "\(prefix)-images.idx3-ubyte"]
                .map { (path as NSString).appendingPathComponent($0) }
            guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw BuildError.missingSource(path: candidates[0])
            }
            imagesPath = found
        } else {
            imagesPath = path
        }
        let labelsPath = imagesPath.replacingOccurrences(of: "images-idx3", with: "labels-idx1")
            .replacingOccurrences(of: "images.idx3", with: "labels.idx1")
        guard labelsPath != imagesPath, fm.fileExists(atPath: labelsPath) else {
            throw BuildError.missingSource(path: labelsPath == imagesPath ? imagesPath + " (its labels-idx1 file)" : labelsPath)
        }
        let images = try readAll(imagesPath)
        let labelBytes = try readAll(labelsPath)
        func be32(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        guard images.count >= 16, be32(images, 0) == 0x0803 else {
            throw BuildError.malformedSource(path: imagesPath, reason: "not an IDX image file (magic 0x00000803 expected)")
        }
        let (n, rows, cols) = (be32(images, 4), be32(images, 8), be32(images, 12))
        let (pixels, overflow) = n.multipliedReportingOverflow(by: rows * cols)
        guard n > 0, rows > 0, cols > 0, !overflow, images.count == 16 + pixels else {
            throw BuildError.malformedSource(path: imagesPath, reason: "header says \(n) images of \(rows)x\(cols), file holds \(images.count - 16) pixel bytes")
        }
        guard labelBytes.count >= 8, be32(labelBytes, 0) == 0x0801 else {
            throw BuildError.malformedSource(path: labelsPath, reason: "not an IDX label file (no 0x00000801 header)")
        }
        guard be32(labelBytes, 4) == n, labelBytes.count == 8 + n else {
            throw BuildError.malformedSource(path: labelsPath, reason: "its header says \(be32(labelBytes, 4)) labels and it holds \(labelBytes.count - 8), but the image file holds \(n) images")
        }
        let labels = labelBytes[8...].map { Int($0) }
        let classCount = (labels.max() ?? 0) + 1
        let name = (imagesPath as NSString).lastPathComponent
        let set = RasterSet(width: cols, height: rows, channels: 1, pixels: Array(images[16...]), labels: labels) { "\(name)#\($0)" }
        return SourceCatalog(source: .init(format: "idx", path: path, split: isDir.boolValue ? split : nil),
                             classes: (0..<classCount).map(String.init), items: .raster(set), refused: [], naturalChannels: 1)
    }

    /// Reads a whole file through zlib, which passes uncompressed files through unchanged.
    static func readAll(_ path: String) throws -> [UInt8] {
        guard let gz = gzopen(path, "rb") else { throw BuildError.missingSource(path: path) }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw BuildError.malformedSource(path: path, reason: "gzip data is damaged") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
        }
        return out
    }
}
