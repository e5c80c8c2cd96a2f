import Foundation
import PyramidCache

/// One epoch being served: worker threads claim steps in order, fill reusable buffers, and hand
/// them over in step order.
///
/// Buffers: at most `prefetch` exist — being filled, filled and waiting, or held by the consumer
/// (a ``Batch`` returns its buffer when released). If the consumer keeps batches and every buffer
/// is out, one more is allocated instead of waiting forever.
final class EpochRun: @unchecked Sendable {
    let loader: Loader
    let epoch: Int
    let plan: EpochPlan
    let order: [Int32]
    private let firstStep: Int

    private let cond = NSCondition()
    private var nextClaim: Int
    private var nextDeliver: Int
    private var ready: [Int: Result<BatchStorage, Error>] = [:]
    private var free: [BatchStorage] = []
    private var allocated = 0
    private var nextID = 0
    private var capacity: Int
    private var inFlight = 0
    private var cancelled = false
    private var failed = false
    private var waiter: (step: Int, continuation: CheckedContinuation<Batch?, Error>)?

    init(loader: Loader, epoch: Int, cursor: Int) throws {
        self.loader = loader
        self.epoch = epoch
        let (plan, first) = try loader.plan(epoch: epoch, from: cursor)
        self.plan = plan
        firstStep = first
        nextClaim = first
        nextDeliver = first
        order = loader.sampler.order(epoch: epoch)
        capacity = loader.configuration.prefetch
        // Buffers left by earlier epochs: reused, so their pages are not faulted in again.
        free = loader.takeBuffers()
        allocated = free.count
        nextID = free.map(\.id).max() ?? 0
    }

    deinit { loader.returnBuffers(free) }

    var buffersAllocated: Int { cond.lock(); defer { cond.unlock() }; return allocated }

    func start() {
        let n = min(loader.configuration.workers, max(1, plan.steps.count - firstStep))
        for w in 0..<n {
            // Not kept: a Thread keeps its closure (and so this run) after it finishes, and a run
            // that is never released never gives its buffers back (every epoch leaked them).
            let t = Thread { [self] in work() }
            t.name = "pyramid-loader-\(w)"
            t.start()
        }
    }

    func cancel() {
        cond.lock()
        cancelled = true
        let w = waiter; waiter = nil
        cond.broadcast()
        cond.unlock()
        w?.continuation.resume(returning: nil)
    }

    /// Returns a buffer to the pool (called when a ``Batch`` is released).
    func recycle(_ storage: BatchStorage) {
        cond.lock()
        if nextDeliver >= plan.steps.count {
            loader.returnBuffers([storage])  // the epoch is over: straight to the next one
        } else {
            free.append(storage)
        }
        cond.broadcast()
        cond.unlock()
    }

    // MARK: Workers

    private func work() {
        let renderer = SampleRenderer(loader: loader)
        while true {
            cond.lock()
            var claimed: (Int, BatchStorage)?
            while claimed == nil {
                if cancelled || failed || nextClaim >= plan.steps.count { cond.unlock(); return }
                if let s = free.popLast() {
                    claimed = (nextClaim, s)
                } else if allocated < capacity {
                    allocated += 1
                    nextID += 1
                    claimed = (nextClaim, BatchStorage(id: nextID))
                } else {
                    cond.wait()
                }
            }
            let (step, storage) = claimed!
            nextClaim += 1
            inFlight += 1
            cond.unlock()

            let result: Result<BatchStorage, Error>
            do {
                try renderer.fill(storage, epoch: epoch, step: step, plan: plan.steps[step], order: order)
                result = .success(storage)
            } catch {
                result = .failure(error)
            }

            cond.lock()
            inFlight -= 1
            ready[step] = result
            if case .failure = result { failed = true }
            var resume: (CheckedContinuation<Batch?, Error>, Result<Batch?, Error>)?
            if let w = waiter, let r = takeReady(w.step) {
                waiter = nil
                resume = (w.continuation, r)
            }
            cond.broadcast()
            cond.unlock()
            if let (c, r) = resume { c.resume(with: r) }
        }
    }

    // MARK: Consumer (call with the lock held)

    /// The batch of `step` if its buffer is ready; nil while it is not.
    private func takeReady(_ step: Int) -> Result<Batch?, Error>? {
        if step >= plan.steps.count {
            // Every batch is out: the buffers not held by the consumer go back to the loader now,
            // so that the next epoch reuses them (their pages are already faulted in).
            nextDeliver = step
            loader.returnBuffers(free)
            free = []
            return .success(nil)
        }
        guard let r = ready.removeValue(forKey: step) else { return nil }
        nextDeliver = step + 1
        switch r {
        case .success(let storage): return .success(Batch(storage: storage, run: self))
        case .failure(let error):
            cancelled = true
            return .failure(error)
        }
    }

    /// Grows the pool by one if the consumer would otherwise wait for a step no worker can start.
    private func growIfStarved(_ step: Int) {
        if free.isEmpty && allocated >= capacity && inFlight == 0 && nextClaim == step && !cancelled {
            capacity += 1
            cond.broadcast()
        }
    }

    func next() throws -> Batch? {
        cond.lock()
        defer { cond.unlock() }
        let step = nextDeliver
        while true {
            if let r = takeReady(step) { return try r.get() }
            if cancelled { return nil }
            growIfStarved(step)
            cond.wait()
        }
    }

    func nextAsync() async throws -> Batch? {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Batch?, Error>) in
            cond.lock()
            let step = nextDeliver
            if let r = takeReady(step) {
                cond.unlock()
                c.resume(with: r)
                return
            }
            if cancelled { cond.unlock(); c.resume(returning: nil); return }
            waiter = (step, c)
            growIfStarved(step)
            cond.unlock()
        }
    }
}
