/// Errors that stop a build. A bad image does not: it is skipped and reported (unless `--strict`).
public enum BuildError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The source path does not exist or cannot be listed.
    case missingSource(path: String)
    /// The source exists but is not in a format the build reads (or not the one named).
    case unrecognizedSource(path: String, reason: String)
    /// A source file is malformed as a whole (an IDX header, a CIFAR batch size, a list line).
    case malformedSource(path: String, reason: String)
    /// An option value is invalid; `name` is the ``BuildOptions`` property (or source setting) it names.
    case invalidOption(name: String, reason: String)
    /// The output directory cannot be used (cannot be created or written).
    case output(path: String, reason: String)
    /// The output directory already holds something this build's ``BuildOptions/OutputMode`` does not go with.
    case occupiedOutput(path: String, content: OutputContent)
    /// Strict mode: the first bad input stops the build.
    case badInput(path: String, reason: String)
    /// The build was interrupted; resuming it (``BuildOptions/OutputMode/resume``) finishes it.
    case interrupted(committed: Int, total: Int, output: String)
    /// libvips failed outside of one image (initialisation, a mosaic).
    case vips(function: String, message: String)
    /// Resuming with options that differ from the interrupted build's (`option` is the recorded name).
    case resumeMismatch(option: String, was: String, now: String)
    /// The source holds no usable samples.
    case empty(path: String)
    /// Another rank of a distributed build failed (it reports why); this rank stops.
    case peerFailed(rank: Int)

    public var description: String {
        switch self {
        case .missingSource(let path): return "\(path): no such file or directory"
        case .unrecognizedSource(let path, let reason): return "\(path): \(reason)"
        case .malformedSource(let path, let reason): return "\(path): \(reason)"
        case .invalidOption(let name, let reason): return "\(name): \(reason)"
        case .output(let path, let reason): return "\(path): \(reason)"
        case .occupiedOutput(let path, let content): return "\(path): \(content)"
        case .badInput(let path, let reason): return "\(path): \(reason) (strict mode stops at the first bad input)"
        case .interrupted(let committed, let total, let output):
            return "interrupted after \(committed) of \(total) source items; resuming finishes \(output)"
        case .vips(let function, let message): return "libvips \(function) failed: \(message)"
        case .resumeMismatch(let option, let was, let now):
            return "cannot resume: the interrupted build used \(option)=\(was), this build says \(now)"
        case .empty(let path): return "\(path): no samples to build"
        case .peerFailed(let rank): return "rank \(rank) failed (its message says why)"
        }
    }
}

/// What an output directory holds that keeps a build from writing into it.
public enum OutputContent: Equatable, Sendable, CustomStringConvertible {
    /// Files that are not a cache: the build refuses to write into (or delete) them.
    case foreignFiles
    /// A complete cache (a new build would replace it; a resume has nothing to do).
    case completeCache
    /// An interrupted build (resuming finishes it; overwriting starts again).
    case interruptedBuild
    /// An interrupted build whose state file cannot be read.
    case unreadableState

    public var description: String {
        switch self {
        case .foreignFiles: return "holds files that are not part of a cache; refusing to write into or delete them"
        case .completeCache: return "already holds a cache"
        case .interruptedBuild: return "holds an interrupted build"
        case .unreadableState: return "\(BuildState.fileName) is unreadable"
        }
    }
}
