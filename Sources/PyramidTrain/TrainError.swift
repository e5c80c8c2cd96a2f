/// Errors of the trainer, each carrying what a person needs in order to act.
///
/// Settings are named as ``RunConfiguration`` names them (`distillation`, `schedule`, `testCache`);
/// a tool that exposes them as flags names the flag itself.
public enum TrainError: Error, Equatable, CustomStringConvertible, Sendable {
    /// ``Network/Configuration/architecture`` names no known model.
    case unknownArchitecture(name: String)
    /// ``Network/Configuration/shortcut`` names no known shortcut.
    case unknownShortcut(name: String)
    /// A setting of the run is out of range or does not fit the schedule or cache; `setting` is the
    /// ``RunConfiguration`` property (or an evaluation parameter such as `forcedBank`).
    case invalidSetting(setting: String, reason: String)
    /// A cache's pixels or classes do not fit the model: `path` holds `channels` channels and
    /// `classes` classes, the model takes `modelChannels` and `modelClasses`.
    case incompatibleCache(path: String, channels: Int, classes: Int, modelChannels: Int, modelClasses: Int)
    /// The directory holds no run: its `run.json` is missing or unreadable.
    case noRun(directory: String)
    /// A saved file (`run.json`, a checkpoint) was written in a format version this trainer does not read.
    case unsupportedVersion(path: String, found: Int, supported: Int)
    /// The loss became NaN or infinite at `epoch`, `step`; the last good checkpoint is kept.
    case nonFinite(epoch: Int, step: Int, loss: Float)
    /// A checkpoint cannot be read, written or does not fit the model; `reason` says which.
    case checkpoint(path: String, reason: String)
    /// The cache at a run's path is not the build the run was made on (rebuilt, or another cache).
    case otherCache(path: String, recorded: String, found: String)
    /// Training stopped on request after writing a checkpoint at (`epoch`, `cursor`); resuming the
    /// run in `directory` continues it.
    case interrupted(directory: String, epoch: Int, cursor: Int)

    public var description: String {
        switch self {
        case .unknownArchitecture(let name):
            return "unknown model '\(name)' (resnet20, resnet32, resnet44, resnet56, resnet8, plain)"
        case .unknownShortcut(let name): return "unknown shortcut '\(name)' (projection, pad)"
        case .invalidSetting(let setting, let reason): return "\(setting): \(reason)"
        case .incompatibleCache(let path, let channels, let classes, let modelChannels, let modelClasses):
            return "\(path): \(channels) channels and \(classes) classes; the model has \(modelChannels) and \(modelClasses)"
        case .noRun(let directory): return "\(directory): holds no run (no readable \(Trainer.configurationFile))"
        case .unsupportedVersion(let path, let found, let supported):
            return "\(path): format version \(found) is not supported (this pyramid reads version \(supported))"
        case .nonFinite(let epoch, let step, let loss):
            return "the loss became \(loss) at epoch \(epoch), step \(step); training stopped (the last good checkpoint is kept)"
        case .checkpoint(let path, let reason): return "\(path): \(reason)"
        case .otherCache(let path, let recorded, let found):
            return "\(path): is not the cache this run was made on (its build is \(found), the run's was \(recorded)): it was rebuilt or replaced; point the run at its own cache, or start a new run"
        case .interrupted(let directory, let epoch, let cursor):
            return "interrupted in epoch \(epoch) at sample \(cursor); checkpoint written in \(directory)"
        }
    }
}
