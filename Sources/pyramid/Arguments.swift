import ArgumentParser
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
