import Foundation

/// The source formats the build reads.
public enum SourceFormat: String, CaseIterable, Sendable {
    case folder, list, cifar10, cifar100, idx

    /// Each format's reader, in the order detection asks them (the catch-alls last).
    static var sources: [any SampleSource.Type] { [IDXSource.self, CIFARSource.self, FolderSource.self, ListSource.self] }

    /// The reader of this format.
    var source: any SampleSource.Type { Self.sources.first { $0.formats.contains(self) }! }

    /// Lists a source: detects its format unless one is named.
    /// - Parameters:
    ///   - path: the source: a folder, a list file, CIFAR batches or IDX files.
    ///   - format: the format, or nil to detect it.
    ///   - split: `train` or `test`, for CIFAR and IDX directories.
    ///   - classNames: names for integer labels (IDX, CIFAR without its meta file, integer list files).
    /// - Throws: ``BuildError/missingSource(path:)``, ``BuildError/unrecognizedSource(path:reason:)``,
    ///   ``BuildError/malformedSource(path:reason:)``, ``BuildError/invalidOption(name:reason:)``.
    public static func open(path: String, format: SourceFormat?, split: String, classNames: [String]?) throws -> SourceCatalog {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BuildError.missingSource(path: path)
        }
        let chosen = try format ?? detect(path: path, isDirectory: isDir.boolValue)
        var catalog = try chosen.source.catalog(path: path, format: chosen, split: split)
        if let classNames {
            let needed = catalog.classes.count
            guard classNames.count >= needed else {
                throw BuildError.invalidOption(name: "classNames", reason: "\(classNames.count) names given, the source has \(needed) classes")
            }
            guard classNames.count <= SourceCatalog.maxClasses else {
                throw BuildError.invalidOption(name: "classNames", reason: "\(classNames.count) names; a cache holds at most \(SourceCatalog.maxClasses) classes")
            }
            catalog.classes = classNames  // every name given: classes the source lacks keep their names
        }
        return catalog
    }

    /// Guesses the format from what is at `path`: the first reader that recognizes it.
    static func detect(path: String, isDirectory: Bool) throws -> SourceFormat {
        let names = isDirectory ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []) : []
        for source in sources {
            if let format = try source.recognize(path: path, isDirectory: isDirectory, names: names) { return format }
        }
        return isDirectory ? .folder : .list
    }
}

/// A reader of one kind of source (``SourceFormat``): it recognizes its files and lists them, in a
/// fixed order, as a ``SourceCatalog``.
protocol SampleSource {
    /// The formats this reader reads.
    static var formats: [SourceFormat] { get }
    /// The format of `path` if this reader recognizes it (`names`: a directory's entries), else nil.
    /// - Throws: ``BuildError/unrecognizedSource(path:reason:)`` for a file that looks like this
    ///   format but cannot be.
    static func recognize(path: String, isDirectory: Bool, names: [String]) throws -> SourceFormat?
    /// Lists the source at `path` (`split`: train or test, where the format has splits).
    static func catalog(path: String, format: SourceFormat, split: String) throws -> SourceCatalog
}
