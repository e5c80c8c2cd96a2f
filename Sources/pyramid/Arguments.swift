import ArgumentParser
import Foundation
import PyramidBuild
import PyramidCache
import PyramidLoader
import PyramidTrain

// Library enums as option values: parsed by their raw value, listed in `--help`, refused with the
// values they take.

extension Conv2D.Algorithm: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
extension CorruptRecordPolicy: ExpressibleByArgument {}
extension MRED.Distillation: ExpressibleByArgument {}
extension BasicBlock.Shortcut: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}

extension Network.Architecture: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["resnet20", "resnet32", "resnet44", "resnet56", "resnet8", "plain"] }
    public var defaultValueDescription: String { description }
}

/// An on/off option (`--gradient-smoothing on`).
enum Switch: String, CaseIterable, ExpressibleByArgument {
    case on, off
}
extension SourceFormat: ExpressibleByArgument {}
extension BuildOptions.Crop: ExpressibleByArgument {}

extension RecordHeader.Filter: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { ["none", "sub"] }
    public var defaultValueDescription: String { name }
}

/// The split of a CIFAR or IDX folder (`--split`).
enum Split: String, CaseIterable, ExpressibleByArgument {
    case train, test
}

/// Which checkpoint of a run `pyramid eval` reads (`--checkpoint`).
enum CheckpointChoice: String, CaseIterable, ExpressibleByArgument {
    /// `checkpoint-best.bin`: the highest validation top-1.
    case best
    /// `checkpoint.bin`: the last epoch's.
    case final
}

extension SampleOrder: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public static var allValueStrings: [String] { ["global", "shards", "shards:W"] }
}

/// Where a remote cache's shards go (every command that reads a cache takes these).
struct RemoteArguments: ParsableArguments {
    @Option(help: ArgumentHelp("For s3:// caches: the directory fetched shards go to (default: $PYRAMID_CACHE_DIR, else $XDG_CACHE_HOME/pyramid, else ~/.cache/pyramid).",
                               valueName: "dir"))
    var cacheDir: String?

    @Option(help: ArgumentHelp("For s3:// caches: bytes the fetched shards may take, e.g. 2GiB or 500MB (default: $PYRAMID_CACHE_LIMIT, else the whole cache). A run that needs more at once is refused at start with the minimum.",
                               valueName: "size"))
    var cacheLimit: String?

    /// The remote options the flags give (and a pinned manifest ETag), passed to every open.
    func options(manifestETag: String? = nil) throws -> RemoteOptions {
        var options = RemoteOptions(manifestETag: manifestETag)
        options.cacheDirectory = cacheDir.map { URL(fileURLWithPath: $0) }
        if let cacheLimit {
            guard let n = parseByteSize(cacheLimit) else { throw ValidationError("--cache-limit: \"\(cacheLimit)\" is not a size (examples: 2000000000, 512MiB, 4GiB)") }
            options.limit = n
        }
        return options
    }
}
