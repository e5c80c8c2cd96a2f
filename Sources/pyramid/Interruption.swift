import Foundation

/// Set by SIGINT; long commands poll it and stop cleanly.
nonisolated(unsafe) var interruptRequested: Int32 = 0

/// Installs a SIGINT handler that asks long work to stop at its next safe point.
/// A second SIGINT exits at once.
/// SIGINT is also unblocked: a parent (a test runner, a job launcher) may have left it blocked, and
/// worker threads inherit the mask of the thread that starts them.
func installInterruptHandler() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    let handler: @convention(c) (Int32) -> Void = { _ in
        if interruptRequested != 0 { _exit(Failure.Kind.interrupted.exitCode) }
        interruptRequested = 1
    }
    signal(SIGINT, handler)
    // mpirun turns a Ctrl-C into SIGTERM to every rank: stop at the next safe point as for SIGINT.
    if Processes.distributed { signal(SIGTERM, handler) }
}
