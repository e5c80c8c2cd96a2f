import Foundation

/// CIFAR-10 and CIFAR-100 binary batches (the "binary version" of the datasets).
///
/// CIFAR-10 records are `label u8` + 3072 bytes; CIFAR-100 records are `coarse u8, fine u8` + 3072
/// bytes (the fine label is used). Pixels are planar R, G, B of 32×32. `path` is a directory holding
/// `data_batch_1.bin`…`data_batch_5.bin` and `test_batch.bin` (CIFAR-10) or `train.bin` and
/// `test.bin` (CIFAR-100), or one batch file. Class names come from `batches.meta.txt` or
/// `fine_label_names.txt` beside the batches when present.
enum CIFARSource: SampleSource {
    static let formats: [SourceFormat] = [.cifar10, .cifar100]

    static func recognize(path: String, isDirectory: Bool, names: [String]) throws -> SourceFormat? {
        if isDirectory {
            if names.contains(where: { $0.hasPrefix("data_batch_") && $0.hasSuffix(".bin") }) || names.contains("test_batch.bin") { return .cifar10 }
            if names.contains("train.bin") || names.contains("test.bin") { return .cifar100 }
            return nil
        }
        guard path.hasSuffix(".bin") else { return nil }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if size > 0 && size % 3073 == 0 { return .cifar10 }
        if size > 0 && size % 3074 == 0 { return .cifar100 }
        throw BuildError.unrecognizedSource(path: path, reason: "a .bin file whose size (\(size) bytes) is not a whole number of CIFAR-10 (3073) or CIFAR-100 (3074) records")
    }

    static func catalog(path: String, format variant: SourceFormat, split: String) throws -> SourceCatalog {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        _ = fm.fileExists(atPath: path, isDirectory: &isDir)
        let dir = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        let files: [String]
        if isDir.boolValue {
            let names: [String]
            switch (variant, split) {
            case (.cifar10, "train"): names = (1...5).map { "data_batch_\($0).bin" }
            case (.cifar10, "test"): names = ["test_batch.bin"]
            case (_, "train"): names = ["train.bin"]
            case (_, "test"): names = ["test.bin"]
            default: throw BuildError.invalidOption(name: "split", reason: "must be train or test, not \(split)")
            }
            files = names.map { (path as NSString).appendingPathComponent($0) }
            if let missing = files.first(where: { !fm.fileExists(atPath: $0) }) { throw BuildError.missingSource(path: missing) }
        } else {
            files = [path]
        }
        let labelBytes = variant == .cifar10 ? 1 : 2
        let recordSize = labelBytes + 3072
        var pixels: [UInt8] = []
        var labels: [Int] = []
        var origins: [(file: String, start: Int)] = []
        for file in files {
            guard let data = fm.contents(atPath: file) else { throw BuildError.missingSource(path: file) }
            guard data.count > 0, data.count % recordSize == 0 else {
                throw BuildError.malformedSource(path: file, reason: "\(data.count) bytes is not a whole number of \(variant.rawValue) records of \(recordSize) bytes")
            }
            origins.append((file, labels.count))
            let n = data.count / recordSize
            pixels.reserveCapacity(pixels.count + n * 3072)
            data.withUnsafeBytes { raw in
                let b = raw.bindMemory(to: UInt8.self)
                for r in 0..<n {
                    let base = r * recordSize
                    labels.append(Int(b[base + labelBytes - 1]))
                    let px = base + labelBytes
                    for i in 0..<1024 { // planar RGB to interleaved
                        pixels.append(b[px + i]); pixels.append(b[px + 1024 + i]); pixels.append(b[px + 2048 + i])
                    }
                }
            }
        }
        let classCount = variant == .cifar10 ? 10 : 100
        if let bad = labels.first(where: { $0 >= classCount }) {
            throw BuildError.malformedSource(path: path, reason: "label \(bad) is out of range for \(variant.rawValue)")
        }
        var classes = (0..<classCount).map(String.init)
        let namesFile = (dir as NSString).appendingPathComponent(variant == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt")
        if let text = try? String(contentsOfFile: namesFile, encoding: .utf8) {
            let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if names.count == classCount { classes = names }
        }
        let originsCopy = origins
        let set = RasterSet(width: 32, height: 32, channels: 3, pixels: pixels, labels: labels) { i in
            let o = originsCopy.last(where: { $0.start <= i }) ?? originsCopy[0]
            return "\(o.file)#\(i - o.start)"
        }
        return SourceCatalog(source: .init(format: variant.rawValue, path: path, split: isDir.boolValue ? split : nil),
                             classes: classes, items: .raster(set), refused: [], naturalChannels: 3)
    }
}
