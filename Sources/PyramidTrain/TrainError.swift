/// Errors of the trainer, each naming what a person needs to act.
public enum TrainError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidModel(String)
    case invalidOption(name: String, reason: String)
    case nonFinite(epoch: Int, step: Int, loss: Float)
    case checkpoint(path: String, reason: String)
    case incompatible(String)
    case interrupted(directory: String, epoch: Int, cursor: Int)

    public var description: String {
        switch self {
        case .invalidModel(let s): return s
        case .invalidOption(let name, let reason): return "\(name): \(reason)"
        case .nonFinite(let epoch, let step, let loss):
            return "the loss became \(loss) at epoch \(epoch), step \(step); training stopped (the last good checkpoint is kept)"
        case .checkpoint(let path, let reason): return "\(path): \(reason)"
        case .incompatible(let s): return s
        case .interrupted(let directory, let epoch, let cursor):
            return "interrupted in epoch \(epoch) at sample \(cursor); checkpoint written. Continue with: pyramid train --resume \(directory)"
        }
    }
}
