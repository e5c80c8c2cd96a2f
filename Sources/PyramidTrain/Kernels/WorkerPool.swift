import Dispatch
import Foundation
import COpenBLAS
import Synchronization

/// How work is split over the cores: the batch is cut into `threads` parts, each part runs its
/// GEMMs single-threaded on its own core (OpenBLAS's own threading helps little for the small-M
/// products of a CIFAR ResNet; docs/design.md).
///
/// The count is the one bound by ``with(_:_:)`` around the calling code (the trainer binds its
/// run's `threads`), else the process default set by ``configure(_:)`` (1 until a program sets
/// it): linking the library changes nothing process-wide by itself.
public enum Threads {
    /// Parts the batch is split into for the calling code.
    public static var count: Int { scoped ?? processDefault.load(ordering: .relaxed) }

    @TaskLocal private static var scoped: Int?
    private static let processDefault = Atomic<Int>(1)

    /// Sets the process default (a tool's `--threads`) and makes OpenBLAS single-threaded inside
    /// each part.
    public static func configure(_ threads: Int) {
        processDefault.store(max(1, threads), ordering: .relaxed)
        openblas_set_num_threads(1)
    }

    /// Runs `body` with `threads` parts (OpenBLAS single-threaded inside each); the count returns to
    /// what it was when `body` returns, and other threads and tasks never see it.
    public static func with<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
        openblas_set_num_threads(1)
        return try $scoped.withValue(max(1, threads), operation: body)
    }
}

/// Runs `body(part)` for `parts` parts, on as many threads; inline when there is one part.
///
/// A training step opens a few hundred short parallel regions (every convolution, BatchNorm and
/// element-wise pass), many of them 20–200 µs long at 14 px. Waking a Dispatch worker costs ~30 µs
/// here, so the regions run on ``WorkerPool``'s helpers, which spin briefly between regions and
/// sleep after that. A region opened while another is running (a nested call, or another thread
/// training at the same time) uses Dispatch instead.
@inline(__always)
func parallelFor(_ parts: Int, _ body: (Int) -> Void) {
    if parts <= 1 { body(0); return }
    if !WorkerPool.shared.run(parts, body) {
        withoutActuallyEscaping(body) { body in
            let region = Region(body: body)
            DispatchQueue.concurrentPerform(iterations: parts) { region.body($0) }
        }
    }
}

/// A region's body handed to Dispatch. `@unchecked Sendable`: `concurrentPerform` returns only
/// after every part has run, so the body and what it captures outlive the region, and each part
/// writes only what belongs to its part (the contract of ``parallelFor(_:_:)``).
private struct Region: @unchecked Sendable {
    let body: (Int) -> Void
}

/// Runs `body(worker, chunk)` for every chunk of `0..<chunks` on `workers` threads (at most one
/// per chunk), each worker claiming the next unclaimed chunk until none is left. On a shared
/// machine a neighbour often slows one core down for milliseconds; with a fixed half of the batch
/// per core the other then waited (4–15% of a step, measured on the 2-core VMs of
/// docs/performance.md), with chunks it takes more of them.
/// Which worker runs a chunk varies from run to run, so what a chunk computes (and where it
/// writes) must depend on the chunk alone; per-worker scratch is fine.
func parallelChunks(_ chunks: Int, workers: Int, _ body: (_ worker: Int, _ chunk: Int) -> Void) {
    let workers = min(workers, chunks)
    if workers <= 1 { for c in 0..<chunks { body(0, c) }; return }
    if chunks < 8 * workers {
        // Few, large chunks: claiming them would leave a thread idle for a whole chunk at the
        // end more often than it saves; a fixed contiguous share each.
        parallelFor(workers) { worker in for c in partRange(worker, of: workers, count: chunks) { body(worker, c) } }
        return
    }
    let next = ChunkCounter()
    parallelFor(workers) { worker in
        while true {
            let c = next.value.add(1, ordering: .relaxed).oldValue
            if c >= chunks { return }
            body(worker, c)
        }
    }
}

/// The shared chunk counter of ``parallelChunks(_:workers:_:)``.
private final class ChunkCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The `part`-th of `parts` near-equal contiguous ranges of `0..<count`.
@inline(__always)
func partRange(_ part: Int, of parts: Int, count: Int) -> Range<Int> {
    (part * count / parts)..<((part + 1) * count / parts)
}

/// Persistent helper threads for ``parallelFor``: the caller runs part 0, helper `i` runs part
/// `i`. Helpers poll for the next region for about ``spinLimit`` polls (tens of microseconds,
/// enough to bridge the serial code between two regions of a step) and then block on a condition
/// variable, so an idle trainer (waiting for the loader, evaluating, finished) leaves the cores to
/// the loader's workers.
///
/// `@unchecked Sendable`, because the plain fields `body` and `parts` are shared. Why that is
/// race-free, in the C++20 memory model that Swift's `Synchronization` atomics follow
/// ([intro.races], [atomics.order]); `WorkerPoolTests` runs it through many thousands of regions,
/// sleeps included:
/// 1. *Publication.* The caller (the one thread holding `busy`) writes `body`, `parts` and
///    `pending`, then increments `generation` (a sequentially consistent read-modify-write, so
///    also a release). A helper reads `body` and `parts` only after an acquiring load of
///    `generation` returned the new value: that load synchronizes with the increment, so the
///    writes before it are visible.
/// 2. *Completion.* Every helper, after its last read of `body`/`parts` and its part's writes,
///    decrements `pending` with release. Each decrement is a read-modify-write, so it continues the
///    release sequence of every earlier decrement; the caller's acquiring load that reads 0 reads
///    the last of them and so synchronizes with all of them: every part's writes happen before
///    `run` returns, and no helper touches `body` when the caller clears it.
/// 3. *The next region* writes `body`, `parts` and `pending` only after (2): no helper reads them
///    between its decrement and its next acquiring load of `generation` (step 1 again).
/// 4. *No lost wake-up.* A helper that stops spinning takes the mutex, increments `sleepers` and
///    re-reads `generation`, all sequentially consistent, and waits only if it is unchanged; the
///    caller increments `generation` and then reads `sleepers`. In the single total order of
///    sequentially consistent operations either the helper's read of `generation` comes after the
///    increment (it does not wait), or the caller's read of `sleepers` comes after the helper's
///    increment (it broadcasts, under the mutex, which the helper holds until `pthread_cond_wait`
///    releases it: the broadcast cannot fall between the check and the wait).
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Polls before a helper blocks.
    static let spinLimit = 4000

    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The current region's body and part count; written by the caller before `generation` moves
    /// (ordered by it, see the type's comment).
    private var body: ((Int) -> Void)?
    private var parts = 0
    private var helpers = 0

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    /// Runs the region on the pool; false (nothing run) when the pool is in use.
    func run(_ parts: Int, _ work: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while helpers < parts - 1 { startHelper(part: helpers + 1) }
        withoutActuallyEscaping(work) { work in
            body = work
            self.parts = parts
            pending.store(helpers, ordering: .relaxed)  // every helper reports, busy or not
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            work(0)
            var polls = 0
            while pending.load(ordering: .acquiring) > 0 {
                polls += 1
                if polls > Self.spinLimit { sched_yield() }
            }
            body = nil
        }
        return true
    }

    private func startHelper(part: Int) {
        helpers += 1
        let seen = generation.load(ordering: .acquiring)
        let thread = Thread { [self] in loop(part: part, seen: seen) }
        thread.name = "pyramid-worker-\(part)"
        thread.start()
    }

    private func loop(part: Int, seen start: Int) {
        var seen = start
        while true {
            var polls = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                polls += 1
                if polls > Self.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(condition, mutex) }
                    sleepers.subtract(1, ordering: .relaxed)
                    pthread_mutex_unlock(mutex)
                    polls = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            // A helper beyond this region's part count has nothing to do but must still report.
            if part < parts, let body { body(part) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}
