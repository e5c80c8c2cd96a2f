/// Errors that stop a build. A bad image does not: it is skipped and reported (unless `--strict`).
public enum BuildError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The source path does not exist or cannot be listed.
    case missingSource(path: String)
    /// The source exists but is not in a format the build reads (or not the one named).
    case unrecognizedSource(path: String, reason: String)
    /// A source file is malformed as a whole (an IDX header, a CIFAR batch size, a list line).
    case malformedSource(path: String, reason: String)
    /// An option value is invalid.
    case invalidOption(name: String, reason: String)
    /// The output directory cannot be used.
    case output(path: String, reason: String)
    /// `--strict`: the first bad input stops the build.
    case badInput(path: String, reason: String)
    /// The build was interrupted; `--resume` finishes it.
    case interrupted(committed: Int, total: Int, output: String)
    /// libvips failed outside of one image (initialisation, a mosaic).
    case vips(function: String, message: String)
    /// `--resume` with options that differ from the interrupted build's.
    case resumeMismatch(option: String, was: String, now: String)
    /// The source holds no usable samples.
    case empty(path: String)

    public var description: String {
        switch self {
        case .missingSource(let path): return "\(path): no such file or directory"
        case .unrecognizedSource(let path, let reason): return "\(path): \(reason)"
        case .malformedSource(let path, let reason): return "\(path): \(reason)"
        case .invalidOption(let name, let reason): return "--\(name): \(reason)"
        case .output(let path, let reason): return "\(path): \(reason)"
        case .badInput(let path, let reason): return "\(path): \(reason) (--strict stops at the first bad input)"
        case .interrupted(let committed, let total, let output):
            return "interrupted after \(committed) of \(total) source items; run the same command with --resume to finish \(output)"
        case .vips(let function, let message): return "libvips \(function) failed: \(message)"
        case .resumeMismatch(let option, let was, let now):
            return "cannot resume: the interrupted build used \(option)=\(was), this command says \(now) (use the same options, or --overwrite to start again)"
        case .empty(let path): return "\(path): no samples to build"
        }
    }
}
