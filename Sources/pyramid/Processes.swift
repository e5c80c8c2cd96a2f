import Foundation
import Synchronization
import PyramidCache
import PyramidMPI

/// The processes this command runs as: one, or the ranks `mpirun` started.
///
/// Launched without `mpirun`, every command is one process (``SingleProcess``) and MPI is never
/// initialized. Launched by `mpirun`, `build` and `train` join the MPI group (on first use of
/// ``group``); the others run as one process on each rank, and only rank 0 prints.
enum Processes {
    /// The rank `mpirun` gave this process (its environment), before MPI is initialized; 0 alone.
    static let launchRank: Int = {
        let env = ProcessInfo.processInfo.environment
        return Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["PMI_RANK"] ?? "0") ?? 0
    }()

    /// Processes started by the launcher on this machine (1 without one).
    static let launchLocalSize: Int = {
        let env = ProcessInfo.processInfo.environment
        return max(1, Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["MPI_LOCALNRANKS"] ?? "1") ?? 1)
    }()

    /// True under `mpirun`.
    static var distributed: Bool { MPIProcessGroup.launchedByMPI }

    private static let made = Mutex<(any ProcessGroup)?>(nil)

    /// The group, joined on first use (MPI_Init under `mpirun`).
    static func group() throws -> any ProcessGroup {
        try made.withLock { made in
            if let made { return made }
            let g: any ProcessGroup
            if distributed {
                do { g = try MPIProcessGroup() } catch { throw Failure.failure("\(error)") }
            } else {
                g = SingleProcess()
            }
            made = g
            return g
        }
    }

    /// The cores this process should use by default: the machine's, divided among the ranks on it.
    static var coresPerProcess: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / launchLocalSize) }

    /// Ends MPI cleanly when it was started (every rank, after its command succeeded).
    static func finish() {
        (made.withLock { $0 } as? MPIProcessGroup)?.finish()
    }

    /// A failure on one rank of several: rank 0's message as usual; another rank names itself; then
    /// every process of the job stops (MPI_Abort), so none waits for the failed one.
    static func fail(_ text: String, code: Int32) -> Never {
        guard let made = made.withLock({ $0 }), made.size > 1 else {
            printError(text)
            exit(code)
        }
        made.abort("\(text) [rank \(made.rank) of \(made.size)]", code: code)
    }
}
