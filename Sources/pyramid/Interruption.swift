import Foundation
import Synchronization

/// Set by SIGINT; long commands poll it (``interruptRequested``) and stop cleanly. Lock-free, so the
/// signal handler may set it.
let interruptFlag = Atomic<Int32>(0)

/// Whether SIGINT (or SIGTERM under mpirun) asked long work to stop.
var interruptRequested: Bool { interruptFlag.load(ordering: .relaxed) != 0 }

/// Installs a SIGINT handler that asks long work to stop at its next safe point.
/// A second SIGINT exits at once.
/// SIGINT is also unblocked: a parent (a test runner, a job launcher) may have left it blocked, and
/// worker threads inherit the mask of the thread that starts them.
func installInterruptHandler() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    interruptFlag.store(0, ordering: .relaxed)  // initialized here, never first in the handler
    let handler: @convention(c) (Int32) -> Void = { _ in
        if interruptFlag.exchange(1, ordering: .relaxed) != 0 { _exit(Failure.Kind.interrupted.exitCode) }
    }
    signal(SIGINT, handler)
    // mpirun turns a Ctrl-C into SIGTERM to every rank: stop at the next safe point as for SIGINT.
    if Processes.distributed { signal(SIGTERM, handler) }
}
