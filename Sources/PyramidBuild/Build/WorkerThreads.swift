import Dispatch
import Foundation

/// Threads that each run `body(worker)` once, started together and joined together.
///
/// Plain threads, not Dispatch: libvips keeps per-thread state (its error buffer, its warnings
/// here) that a thread must shut down itself (`Vips.threadShutdown`), and a build's workers run for
/// its whole length. ``join()`` waits on a semaphore each thread signals as its last act.
struct WorkerThreads: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let count: Int

    /// Starts `count` threads named `name-0`, `name-1`, … with 8 MiB stacks (libvips' decoders recurse).
    init(count: Int, name: String, body: @escaping @Sendable (_ worker: Int) -> Void) {
        self.count = count
        for worker in 0..<count {
            let thread = Thread { [finished] in
                body(worker)
                finished.signal()
            }
            thread.name = "\(name)-\(worker)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Returns once every thread has run its body.
    func join() {
        for _ in 0..<count { finished.wait() }
    }
}
