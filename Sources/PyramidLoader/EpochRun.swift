import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache
import Synchronization

/// One epoch being served: worker threads claim steps in order, fill reusable buffers, and hand
/// them over in step order.
///
/// Buffers: at most `prefetch` exist — being filled, filled and waiting, or held by the consumer
/// (a ``Batch`` returns its buffer when released). If the consumer keeps batches and every buffer
/// is out, one more is allocated instead of waiting forever.
///
/// All mutable state is one ``State`` value behind one mutex; each transition is a method of
/// ``State`` and says which waiters it wakes. Waking happens after the lock is released.
final class EpochRun: Sendable {
    let loader: Loader
    let epoch: Int
    let plan: EpochPlan
    let order: [Int32]
    /// For a remote cache: the files each step from `firstStep` on reads (this rank's share).
    let fileUses: [[Int]]
    let firstStep: Int
    private let state: Mutex<State>

    init(loader: Loader, epoch: Int, cursor: Int) throws {
        self.loader = loader
        self.epoch = epoch
        let (plan, first) = try loader.plan(epoch: epoch, from: cursor)
        self.plan = plan
        order = loader.sampler.order(epoch: epoch)
        firstStep = first
        if let store = loader.cache.store {
            // Fetch ahead through this epoch's rest and the next epoch (its order is known already).
            fileUses = loader.fileUses(plan: plan, order: order, from: first)
            var ahead = fileUses
            let c = loader.configuration
            if c.shuffle, c.epochs.map({ epoch + 1 < $0 }) ?? true {
                ahead += loader.fileUses(plan: loader.plan(epoch: epoch + 1), order: loader.sampler.order(epoch: epoch + 1), from: 0)
            }
            try store.schedule(ahead, concurrency: c.workers)
        } else {
            fileUses = []
        }
        // Buffers left by earlier epochs are reused, so their pages are not faulted in again.
        state = Mutex(State(firstStep: first, steps: plan.steps.count, capacity: loader.configuration.prefetch,
                            spare: loader.takeBuffers()))
    }

    deinit {
        let spare = state.withLock { $0.takeFree() }
        loader.returnBuffers(spare)
    }

    var buffersAllocated: Int { state.withLock { $0.allocated } }

    /// Starts the worker threads (plain threads, not Dispatch: a loader made after a `fork` must work).
    func start() {
        let remaining = state.withLock { $0.steps - $0.nextClaim }
        for w in 0..<min(loader.configuration.workers, max(1, remaining)) {
            // The thread holds the run until its loop returns; the run holds no thread.
            startThread(name: "pyramid-load-\(w)") { [self] in work() }
        }
    }

    /// Stops the workers after the step each is rendering; a waiting consumer gets nil.
    func cancel() {
        state.withLock { $0.cancel() }.wake()
    }

    /// Returns a buffer to the pool (called when a ``Batch`` is released).
    func recycle(_ storage: BatchStorage) {
        let (wakeups, toLoader) = state.withLock { $0.recycle(storage) }
        if let toLoader { loader.returnBuffers([toLoader]) }  // the epoch is over: straight to the next one
        wakeups.wake()
    }

    // MARK: Workers

    private func work() {
        let renderer = SampleRenderer(loader: loader)
        let idle = DispatchSemaphore(value: 0)
        while true {
            switch state.withLock({ $0.claim(idle: idle) }) {
            case .stop:
                return
            case .wait:
                idle.wait()
            case .render(let step, let storage):
                let result: Result<BatchStorage, any Error>
                do {
                    if let store = loader.cache.store {
                        // A remote cache: the step's files stay local while it is rendered.
                        let shards = fileUses[step - firstStep]
                        store.begin(step: step - firstStep)
                        defer { store.end(step: step - firstStep) }
                        try loader.cache.pin(shards)
                        defer { renderer.endReads(); loader.cache.unpin(shards) }
                        try renderer.fill(storage, epoch: epoch, step: step, plan: plan.steps[step], order: order)
                    } else {
                        try renderer.fill(storage, epoch: epoch, step: step, plan: plan.steps[step], order: order)
                    }
                    result = .success(storage)
                } catch {
                    result = .failure(error)
                }
                let (wakeups, handOver) = state.withLock { $0.finish(step: step, result: result) }
                wakeups.wake()
                if let (task, delivery) = handOver { task.resume(with: delivery.batch(of: self)) }
            }
        }
    }

    // MARK: Consumer

    /// The next batch in step order, waiting for it; nil at the end of the epoch or once cancelled.
    func next() throws -> Batch? {
        guard case .batch(let batch) = try next(deadline: .distantFuture) else { return nil }
        return batch
    }

    /// The next batch in step order, waiting for it until `deadline` at most.
    func next(deadline: DispatchTime) throws -> EpochIterator.Poll {
        let signal = DispatchSemaphore(value: 0)
        while true {
            let (outcome, spare, wakeups) = state.withLock { $0.take(waiting: .thread(signal)) }
            if let spare { loader.returnBuffers(spare) }
            wakeups.wake()
            if let outcome {
                guard let batch = try outcome.batch(of: self).get() else { return .end }
                return .batch(batch)
            }
            if signal.wait(timeout: deadline) == .timedOut {
                // Unregister, unless a worker took the registration just now (then look once more).
                let gone = state.withLock { $0.stopWaiting(signal) }
                if gone { return .timedOut }
            }
        }
    }

    /// ``next()`` for async callers: the task suspends instead of blocking its thread.
    func nextAsync() async throws -> Batch? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Batch?, any Error>) in
            let (outcome, spare, wakeups) = state.withLock { $0.take(waiting: .task(continuation)) }
            if let spare { loader.returnBuffers(spare) }
            wakeups.wake()
            if let outcome { continuation.resume(with: outcome.batch(of: self)) }
        }
    }
}

/// A consumer waiting for the next step: a thread (woken to take its batch itself) or a task
/// (handed its batch).
private enum Consumer: Sendable {
    case thread(DispatchSemaphore)
    case task(CheckedContinuation<Batch?, any Error>)
}

/// What a consumer gets for a step: a filled buffer, the end of the epoch, or an error.
private enum Delivery: Sendable {
    case storage(BatchStorage)
    case end
    case failure(any Error)

    func batch(of run: EpochRun) -> Result<Batch?, any Error> {
        switch self {
        case .storage(let s): return .success(Batch(storage: s, run: run))
        case .end: return .success(nil)
        case .failure(let e): return .failure(e)
        }
    }
}

/// Threads and tasks to wake once the lock is released.
private struct Wakeups {
    var workers: [DispatchSemaphore] = []
    /// A consumer thread to wake (it takes its batch itself).
    var consumer: DispatchSemaphore?
    /// A consumer task whose epoch ends (cancelled).
    var ended: CheckedContinuation<Batch?, any Error>?
    func wake() {
        for w in workers { w.signal() }
        consumer?.signal()
        ended?.resume(returning: nil)
    }
}

/// An epoch run's mutable state. Every method runs under the run's mutex.
///
/// Invariants, true whenever the lock is free:
/// - `nextDeliver ≤ nextClaim ≤ steps`;
/// - each step in `nextDeliver..<nextClaim` is being rendered (`rendering` counts them) or is in
///   `ready` (rendered, or failed);
/// - every allocated buffer is in `free`, being rendered, in `ready`, or held by the consumer in a
///   ``Batch``; `allocated ≤ capacity`, and `capacity` grows (by one) only when the consumer would
///   otherwise wait for a step that no worker can start;
/// - a worker claims a step only while `phase == .running`; after a failure or `cancel()` none does;
/// - at most one consumer waits (`consumer`), and it waits for step `nextDeliver`.
private struct State: ~Copyable {
    enum Phase { case running, failed, cancelled }
    enum Claim { case render(step: Int, storage: BatchStorage), wait, stop }

    let steps: Int
    var nextClaim: Int
    var nextDeliver: Int
    var rendering = 0
    var ready: [Int: Result<BatchStorage, any Error>] = [:]
    var free: [BatchStorage]
    var allocated: Int
    var capacity: Int
    var nextID: Int
    var phase = Phase.running
    var consumer: Consumer?
    var idleWorkers: [DispatchSemaphore] = []

    init(firstStep: Int, steps: Int, capacity: Int, spare: [BatchStorage]) {
        self.steps = steps
        nextClaim = firstStep; nextDeliver = firstStep
        free = spare; allocated = spare.count; self.capacity = capacity
        nextID = spare.map(\.id).max() ?? 0
    }

    /// A worker's next job: a step and a buffer to fill, a wait for a buffer, or the end.
    mutating func claim(idle: DispatchSemaphore) -> Claim {
        guard phase == .running, nextClaim < steps else { return .stop }
        let storage: BatchStorage
        if let s = free.popLast() {
            storage = s
        } else if allocated < capacity {
            allocated += 1
            nextID += 1
            storage = BatchStorage(id: nextID)
        } else {
            idleWorkers.append(idle)
            return .wait
        }
        defer { nextClaim += 1; rendering += 1 }
        return .render(step: nextClaim, storage: storage)
    }

    /// Records a rendered (or failed) step. A task waiting for exactly that step gets it handed over;
    /// a failure stops the workers waiting for a buffer.
    mutating func finish(step: Int, result: Result<BatchStorage, any Error>)
        -> (Wakeups, (CheckedContinuation<Batch?, any Error>, Delivery)?) {
        rendering -= 1
        ready[step] = result
        var wakeups = Wakeups()
        if case .failure = result, phase == .running {
            phase = .failed
            wakeups.workers = takeIdleWorkers()
        }
        guard let waiting = consumer, step == nextDeliver else { return (wakeups, nil) }
        consumer = nil
        switch waiting {
        case .thread(let s):
            wakeups.consumer = s
            return (wakeups, nil)
        case .task(let c):
            return (wakeups, deliver().0.map { (c, $0) })
        }
    }

    /// The consumer's step if it can be delivered now (with the spare buffers that go back to the
    /// loader at the end of the epoch); otherwise registers `waiting` and returns nil.
    mutating func take(waiting: Consumer) -> (Delivery?, [BatchStorage]?, Wakeups) {
        let (delivery, spare) = deliver()
        if let delivery { return (delivery, spare, Wakeups()) }
        if phase == .cancelled { return (.end, nil, Wakeups()) }
        consumer = waiting
        var wakeups = Wakeups()
        if growIfStarved() { wakeups.workers = takeIdleWorkers() }
        return (nil, nil, wakeups)
    }

    /// Takes step `nextDeliver` out of `ready`, or says the epoch is over; nil while it is not ready.
    private mutating func deliver() -> (Delivery?, [BatchStorage]?) {
        if nextDeliver >= steps {
            // Every batch is out: the buffers not held by the consumer go to the next epoch now
            // (their pages are already faulted in).
            return (.end, takeFree())
        }
        guard let result = ready.removeValue(forKey: nextDeliver) else { return (nil, nil) }
        nextDeliver += 1
        switch result {
        case .success(let storage): return (.storage(storage), nil)
        case .failure(let error):
            phase = .cancelled
            return (.failure(error), nil)
        }
    }

    /// Grows the pool by one if the consumer would otherwise wait for a step no worker can start
    /// (every buffer is held by batches the consumer keeps); true if it grew.
    private mutating func growIfStarved() -> Bool {
        guard free.isEmpty && allocated >= capacity && rendering == 0 && nextClaim == nextDeliver && phase == .running else { return false }
        capacity += 1
        return true
    }

    /// A released buffer: back to the pool while the epoch runs, to the loader once it is over.
    mutating func recycle(_ storage: BatchStorage) -> (Wakeups, BatchStorage?) {
        var wakeups = Wakeups()
        wakeups.workers = takeIdleWorkers()
        if nextDeliver >= steps { return (wakeups, storage) }
        free.append(storage)
        return (wakeups, nil)
    }

    /// Stops claiming; a waiting consumer ends its epoch.
    mutating func cancel() -> Wakeups {
        phase = .cancelled
        var wakeups = Wakeups()
        wakeups.workers = takeIdleWorkers()
        if let waiting = consumer {
            consumer = nil
            switch waiting {
            case .thread(let s): wakeups.consumer = s
            case .task(let c): wakeups.ended = c
            }
        }
        return wakeups
    }

    /// Removes a waiting thread that gave up; false if it was already woken (its step is ready).
    mutating func stopWaiting(_ signal: DispatchSemaphore) -> Bool {
        guard case .thread(let s) = consumer, s === signal else { return false }
        consumer = nil
        return true
    }

    mutating func takeFree() -> [BatchStorage] {
        defer { free = [] }
        return free
    }

    mutating func takeIdleWorkers() -> [DispatchSemaphore] {
        defer { idleWorkers = [] }
        return idleWorkers
    }
}
