import PyramidCache

/// Errors raised while configuring or running a ``Loader``.
public enum LoaderError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A schedule string could not be parsed.
    case invalidSchedule(spec: String, reason: String)
    /// The schedule asks for a size the cache cannot serve.
    case unservableSize(size: Int, levels: [Int], reason: String)
    /// A configuration value is out of range; `key` names the ``LoaderConfiguration`` property.
    case invalidConfiguration(key: LoaderConfiguration.Key, reason: String)
    /// An augmentation string could not be parsed.
    case invalidAugmentation(spec: String, reason: String)
    /// A resume cursor outside the epoch.
    case invalidCursor(cursor: Int, sampleCount: Int)
    /// Reading a record failed (corrupt, missing); under the `fail` policy this stops the epoch.
    case cache(CacheError)
    /// Substitution found no readable record at all.
    case nothingReadable(index: Int, level: Int)
    /// Sample `index` (in `shard`) has a label outside `0..<classes` (a damaged labels database, or
    /// a manifest whose class list is too short).
    case invalidLabel(shard: Int, index: Int, label: Int, classes: Int)

    public var description: String {
        switch self {
        case .invalidSchedule(let spec, let reason):
            return "invalid schedule '\(spec)': \(reason)"
        case .unservableSize(let size, let levels, let reason):
            return "the cache cannot serve size \(size) (levels \(levels.map(String.init).joined(separator: ","))): \(reason)"
        case .invalidConfiguration(let key, let reason):
            return "invalid \(key.label): \(reason)"
        case .invalidAugmentation(let spec, let reason):
            return "invalid augmentation '\(spec)': \(reason)"
        case .invalidCursor(let cursor, let count):
            return "resume cursor \(cursor) is outside the epoch (0...\(count))"
        case .cache(let error):
            return error.description
        case .nothingReadable(let index, let level):
            return "no readable record found to substitute for index \(index) at level \(level)"
        case .invalidLabel(let shard, let index, let label, let classes):
            return "shard \(shard), index \(index): label \(label) is outside the cache's \(classes) classes (0..<\(classes)); the labels database or the manifest's class list is damaged"
        }
    }
}
