import Foundation
import PyramidCache

/// The output directory: created, refused, replaced or resumed according to the mode.
extension Builder {
    /// Decides what to do with the output directory and locks it for this build (a second build
    /// into it is refused while this one runs); returns the state to resume from, if any, and the lock.
    func prepareOutput() throws -> (BuildState?, DirectoryLock) {
        let fm = FileManager.default
        let path = output.path
        var isDir: ObjCBool = false
        let existed = fm.fileExists(atPath: path, isDirectory: &isDir)
        if existed {
            guard isDir.boolValue else { throw BuildError.output(path: path, reason: "exists and is not a directory") }
        } else {
            try? fm.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            if mkdir(path, 0o755) != 0 {
                throw BuildError.output(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
        let lock = try DirectoryLock(directory: output)
        if existed {
            let names = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != DirectoryLock.fileName }
            let complete = names.contains(Manifest.fileName)
            let interrupted = names.contains(BuildState.fileName)
            let ours = Set(names).subtracting([Manifest.fileName, BuildState.fileName, BuildReport.fileName])
                .allSatisfy { $0.hasPrefix("shard-") || $0.hasPrefix(".") }
            if !names.isEmpty && !complete && !interrupted {
                throw BuildError.occupiedOutput(path: path, content: .foreignFiles)
            }
            switch options.mode {
            case .overwrite where complete || interrupted:
                guard ours else { throw BuildError.occupiedOutput(path: path, content: .foreignFiles) }
                for name in names { try? fm.removeItem(atPath: (path as NSString).appendingPathComponent(name)) }
            case .resume where complete:
                throw BuildError.occupiedOutput(path: path, content: .completeCache)
            case .resume where interrupted:
                guard let state = BuildState.load(from: output) else {
                    throw BuildError.occupiedOutput(path: path, content: .unreadableState)
                }
                for (key, now) in fingerprint where state.fingerprint[key] != now {
                    throw BuildError.resumeMismatch(option: key, was: state.fingerprint[key] ?? "?", now: now)
                }
                return (state, lock)
            case .create where complete:
                throw BuildError.occupiedOutput(path: path, content: .completeCache)
            case .create where interrupted:
                throw BuildError.occupiedOutput(path: path, content: .interruptedBuild)
            default: break
            }
        }
        if access(path, W_OK) != 0 { throw BuildError.output(path: path, reason: "not writable") }
        return (nil, lock)
    }
}
