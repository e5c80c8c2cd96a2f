import Foundation

/// A text file of `path<TAB>label` lines. Relative paths are relative to the list file's folder.
/// Labels are integers (class names `0`, `1`, …, or those of `--class-names`) or class names
/// (classes = the sorted distinct names). Blank lines and lines starting with `#` are ignored;
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
        var entries: [(path: String, label: String)] = []
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
            entries.append((path, parts[1].trimmingCharacters(in: .whitespaces)))
        }
        if entries.isEmpty && refused.isEmpty { throw BuildError.empty(path: file) }
        let integers = entries.allSatisfy { Int($0.label).map { $0 >= 0 } ?? false }
        var classes: [String]
        var items: [FileItem] = []
        if integers {
            let maxLabel = entries.map { Int($0.label)! }.max() ?? -1
            classes = (0...max(maxLabel, 0)).map(String.init)
            items = entries.map { FileItem(path: $0.path, label: Int($0.label)!) }
        } else {
            classes = Set(entries.map(\.label)).sorted(by: byteOrder)
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            items = entries.map { FileItem(path: $0.path, label: index[$0.label]!) }
        }
        return SourceCatalog(source: .init(format: "list", path: file), classes: classes,
                             items: .files(items), refused: refused, naturalChannels: 3)
    }
}
