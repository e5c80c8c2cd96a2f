import Foundation

/// `root/<class>/<file>`: classes are the sorted sub-folder names; files below a class folder
/// (at any depth) belong to it. Files at the top level, and hidden files, are refused and reported.
enum FolderSource: SampleSource {
    static let formats: [SourceFormat] = [.folder]

    /// Any directory that no other reader recognized.
    static func recognize(path: String, isDirectory: Bool, names: [String]) throws -> SourceFormat? { isDirectory ? .folder : nil }

    static func catalog(path root: String, format: SourceFormat, split: String) throws -> SourceCatalog {
        let fm = FileManager.default
        let rootURL = URL(fileURLWithPath: root)
        let top: [String]
        do { top = try fm.contentsOfDirectory(atPath: root).sorted(by: byteOrder) } catch {
            throw BuildError.missingSource(path: root)
        }
        var classes: [String] = []
        var refused: [SkippedItem] = []
        for name in top {
            let path = rootURL.appendingPathComponent(name).path
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: path, isDirectory: &isDir)
            if name.hasPrefix(".") { refused.append(SkippedItem(path: path, reason: "hidden file")); continue }
            if isDir.boolValue { classes.append(name) } else {
                refused.append(SkippedItem(path: path, reason: "not inside a class folder"))
            }
        }
        if classes.isEmpty {
            throw BuildError.unrecognizedSource(path: root, reason: "no class folders (expected root/<class>/<image>)")
        }
        guard classes.count <= SourceCatalog.maxClasses else {
            throw BuildError.malformedSource(path: root, reason: "\(classes.count) class folders; a cache holds at most \(SourceCatalog.maxClasses) classes")
        }
        var items: [FileItem] = []
        for (label, name) in classes.enumerated() {
            let dir = rootURL.appendingPathComponent(name)
            var files: [String] = []
            collect(dir.path, into: &files, refused: &refused)
            for f in files.sorted(by: byteOrder) { items.append(FileItem(path: f, label: label)) }
        }
        return SourceCatalog(source: .init(format: "folder", path: root), classes: classes,
                             items: .files(items), refused: refused, naturalChannels: 3)
    }

    private static func collect(_ dir: String, into files: inout [String], refused: inout [SkippedItem]) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
            refused.append(SkippedItem(path: dir, reason: "cannot list folder"))
            return
        }
        for name in names {
            let path = (dir as NSString).appendingPathComponent(name)
            if name.hasPrefix(".") { refused.append(SkippedItem(path: path, reason: "hidden file")); continue }
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                collect(path, into: &files, refused: &refused)
            } else {
                files.append(path) // includes dangling links: decoding reports them
            }
        }
    }
}
