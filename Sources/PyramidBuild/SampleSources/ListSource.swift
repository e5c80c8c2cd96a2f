import Foundation

/// A text file of `path<TAB>label` lines. Relative paths are relative to the list file's folder.
/// Labels are integers (class names `0`, `1`, …, or those of `--class-names`; each from 0 to
/// ``SourceCatalog/maxClasses`` − 1, a sign or a larger number is refused naming the line) or
/// class names (classes = the sorted distinct names, when any label is not an integer). Blank lines and lines starting with `#` are ignored;
/// a line without a tab or label is refused and reported.
enum ListSource: SampleSource {
    static let formats: [SourceFormat] = [.list]

    /// Any file that no other reader recognized.
    static func recognize(path: String, isDirectory: Bool, names: [String]) throws -> SourceFormat? { isDirectory ? nil : .list }

    static func catalog(path file: String, format: SourceFormat, split: String) throws -> SourceCatalog {
        guard let data = FileManager.default.contents(atPath: file) else { throw BuildError.missingSource(path: file) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw BuildError.malformedSource(path: file, reason: "not UTF-8 text (a list file has one `path<TAB>label` per line)")
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        var entries: [(path: String, label: String, line: Int)] = []
        var refused: [SkippedItem] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                refused.append(SkippedItem(path: "\(file):\(n + 1)", reason: "expected `path<TAB>label`"))
                continue
            }
            let p = String(parts[0])
            let path = p.hasPrefix("/") ? p : base.appendingPathComponent(p).path
            entries.append((path, parts[1].trimmingCharacters(in: .whitespaces), n + 1))
        }
        if entries.isEmpty && refused.isEmpty { throw BuildError.empty(path: file) }
        var classes: [String]
        var items: [FileItem] = []
        if entries.allSatisfy({ isInteger($0.label) }) {
            // Integer labels index the classes directly: each must be one the cache can hold.
            var labels: [Int] = []
            for entry in entries {
                guard let label = Int(entry.label), (0..<SourceCatalog.maxClasses).contains(label) else {
                    throw BuildError.malformedSource(
                        path: "\(file):\(entry.line)",
                        reason: "label \(entry.label) is out of range (integer labels are 0 to \(SourceCatalog.maxClasses - 1))")
                }
                labels.append(label)
            }
            classes = (0...(labels.max() ?? 0)).map(String.init)
            items = zip(entries, labels).map { FileItem(path: $0.path, label: $1) }
        } else {
            classes = Set(entries.map(\.label)).sorted(by: byteOrder)
            guard classes.count <= SourceCatalog.maxClasses else {
                throw BuildError.malformedSource(path: file, reason: "\(classes.count) distinct labels; a cache holds at most \(SourceCatalog.maxClasses) classes")
            }
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            items = entries.map { FileItem(path: $0.path, label: index[$0.label] ?? 0) }
        }
        return SourceCatalog(source: .init(format: "list", path: file), classes: classes,
                             items: .files(items), refused: refused, naturalChannels: 3)
    }
}

/// Whether `label` is written as an integer: ASCII digits with an optional sign.
private func isInteger(_ label: String) -> Bool {
    let digits = label.utf8.drop { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
    return label.utf8.count - digits.count <= 1 && !digits.isEmpty && digits.allSatisfy { (48...57).contains($0) }
}
