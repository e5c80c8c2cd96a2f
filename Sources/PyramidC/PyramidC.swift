import CPyramidABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache
import PyramidLoader
import Synchronization

// The C interface of include/pyramid.h. Every entry point validates what it is given, catches
// every error and returns it as a status and a message: nothing a caller passes can trap inside a
// host process. Loader handles are numbers looked up in a table, never dereferenced, so a closed
// or invented handle is an error, not a crash.

/// Open loaders by handle number.
private let loaders = Mutex<[UInt: LoaderHandle]>([:])
private let nextHandle = Atomic<UInt>(0)

/// One open loader: its epoch iterator and the batches it has handed out.
private final class LoaderHandle: Sendable {
    let loader: Loader
    let process = getpid()

    /// A batch handed out, with C copies of its labels and indices; freed with it.
    /// `@unchecked Sendable`: the copies are written once, before the batch is stored, and only
    /// freed (never written) after it leaves the table.
    final class HeldBatch: @unchecked Sendable {
        let batch: Batch
        let labels: UnsafeMutableBufferPointer<Int32>
        let indices: UnsafeMutableBufferPointer<Int64>
        init(batch: Batch, labels: UnsafeMutableBufferPointer<Int32>, indices: UnsafeMutableBufferPointer<Int64>) {
            self.batch = batch; self.labels = labels; self.indices = indices
        }
        deinit { labels.deallocate(); indices.deallocate() }
    }
    struct State: ~Copyable {
        /// Closed: every call but `pyramid_release` is refused; the handle goes once nothing is held.
        var closed = false
        var iterator: EpochIterator?
        var held: [UInt64: HeldBatch] = [:]
        var nextBatch: UInt64 = 0
    }
    /// The iterator and the batches handed out live only inside this mutex; a batch's pixels are
    /// read by the caller through the pointers `pyramid_next` returned until it releases the batch.
    let state = Mutex(State())
    /// Serializes `pyramid_next` (one consumer per epoch run) without holding `state` while it
    /// waits, so that releases from other threads go through meanwhile.
    let consumer = Mutex(0)

    init(loader: Loader) { self.loader = loader }

    /// Makes `next` the epoch being served (nil: none) and stops the one it replaces.
    func replaceEpoch(with next: EpochIterator?, closing: Bool = false) {
        let previous = state.withLock { s -> EpochIterator? in
            defer { s.iterator = next; if closing { s.closed = true } }
            return s.iterator
        }
        previous?.stop()
    }
}

/// Where a C caller receives an error message (may be NULL).
public typealias ErrorSlot = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

/// Runs `body`; an error becomes a message in `slot` (for the caller to free) and its status:
/// `PYRAMID_INVALID` for what the caller passed, `PYRAMID_ERROR` for the rest.
private func guarded(_ slot: ErrorSlot, _ body: () throws -> Int32) -> Int32 {
    slot?.pointee = nil
    do {
        return try body()
    } catch {
        slot?.pointee = cString("\(error)")
        return isInvalidArgument(error) ? PYRAMID_INVALID : PYRAMID_ERROR
    }
}

private func isInvalidArgument(_ error: any Error) -> Bool {
    switch error {
    case BridgeError.invalid: return true
    case let e as LoaderError:
        switch e {
        case .invalidSchedule, .invalidConfiguration, .invalidAugmentation, .unservableSize, .invalidCursor: return true
        default: return false
        }
    default: return false
    }
}

/// Stores `text` in `out` as a C string the caller frees.
private func output(_ text: UnsafeMutablePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws -> Int32 {
    guard let out else { free(text); throw BridgeError.invalid(key: "json", reason: "is NULL") }
    out.pointee = text
    return PYRAMID_OK
}

/// The loader behind `pointer`, checked: known, used in the process that opened it, and open
/// (unless `evenClosed`: a closed loader still takes back the batches it handed out).
private func handle(_ pointer: OpaquePointer?, evenClosed: Bool = false) throws -> LoaderHandle {
    guard let pointer else { throw BridgeError.misuse("the loader is NULL") }
    guard let h = loaders.withLock({ $0[number(of: pointer)] }) else {
        throw BridgeError.misuse("not a loader (closed and released already, or never opened)")
    }
    guard h.process == getpid() else {
        throw BridgeError.misuse("the loader was used in a process forked after it was opened (pid \(h.process)); open a new one in this process")
    }
    if !evenClosed, h.state.withLock({ $0.closed }) { throw BridgeError.misuse("the loader is closed") }
    return h
}

private func number(of pointer: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(pointer))) }

/// Forgets a closed loader once it holds no batch.
private func forgetIfDone(_ pointer: OpaquePointer, _ h: LoaderHandle) {
    if h.state.withLock({ $0.closed && $0.held.isEmpty }) { loaders.withLock { _ = $0.removeValue(forKey: number(of: pointer)) } }
}

private func cString(_ text: String) -> UnsafeMutablePointer<CChar>? { strdup(text) }

private func json<T: Encodable>(_ value: T) throws -> UnsafeMutablePointer<CChar>? {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return cString(String(decoding: try encoder.encode(value), as: UTF8.self))
}

// MARK: Entry points

@_cdecl("pyramid_open")
public func bridgeOpen(_ path: UnsafePointer<CChar>?, _ configuration: UnsafePointer<CChar>?,
                       _ loader: UnsafeMutablePointer<OpaquePointer?>?, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        guard let loader else { throw BridgeError.invalid(key: "loader", reason: "is NULL") }
        loader.pointee = nil
        guard let path else { throw BridgeError.invalid(key: "path", reason: "is NULL") }
        // A path that is not UTF-8 would be repaired into another path: refuse it.
        guard let text = String(validatingCString: path) else {
            throw BridgeError.invalid(key: "path", reason: "is not valid UTF-8; rename it or use a link with a UTF-8 name")
        }
        let reader = try CacheReader.open(text)
        let config = try BridgeConfiguration(json: configuration.map { String(cString: $0) }, manifest: reader.manifest)
        if config.loader.schedule.sizes.count > Int(PYRAMID_MAX_VIEWS), config.loader.schedule.parallelSizes != nil {
            throw BridgeError.invalid(key: "schedule", reason: "a parallel schedule serves at most \(PYRAMID_MAX_VIEWS) sizes")
        }
        let h = LoaderHandle(loader: try Loader(cache: reader, configuration: config.loader))
        let number = nextHandle.add(1, ordering: .relaxed).newValue
        loaders.withLock { $0[number] = h }
        loader.pointee = OpaquePointer(bitPattern: number)
        return PYRAMID_OK
    }
}

@_cdecl("pyramid_close")
public func bridgeClose(_ loader: OpaquePointer?, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        h.replaceEpoch(with: nil, closing: true)
        // Batches still held keep their buffers (a caller's tensors may view them) until released.
        forgetIfDone(loader!, h)
        return PYRAMID_OK
    }
}

/// What `pyramid_describe` returns.
private struct Description: Encodable {
    struct Configuration: Encodable {
        var schedule: String, batch_size: Int, seed: UInt64, epochs: Int?, augment: String, rank: Int, world_size: Int
        var workers: Int, prefetch: Int, output: String, shuffle: Bool, drop_last: Bool, corrupt_records: String, sizes: [Int]
        var parallel: Bool
        var order: String
    }
    var manifest: Manifest
    var configuration: Configuration
    var version: String
}

@_cdecl("pyramid_describe")
public func bridgeDescribe(_ loader: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        let c = h.loader.configuration
        return try output(try json(Description(
            manifest: h.loader.cache.manifest,
            configuration: .init(schedule: c.schedule.description, batch_size: c.batchSize, seed: c.seed, epochs: c.epochs,
                                 augment: h.loader.augmentation.description, rank: c.rank, world_size: c.worldSize, workers: c.workers,
                                 prefetch: c.prefetch, output: c.output.rawValue, shuffle: c.shuffle, drop_last: c.dropLast,
                                 corrupt_records: c.corruptRecords.rawValue, sizes: c.schedule.sizes, parallel: c.schedule.parallelSizes != nil,
                                 order: (c.order ?? .global).description),
            version: pyramidVersion)), out)
    }
}

/// What `pyramid_plan` returns.
private struct PlanJSON: Encodable {
    struct Step: Encodable { var sizes: [Int], batch: Int, duplicates: Int, cursor: Int, images: Int }
    struct Epoch: Encodable { var epoch: Int, steps: [Step], note: String? }
    var epochs: [Epoch]
}

@_cdecl("pyramid_plan")
public func bridgePlan(_ loader: OpaquePointer?, _ first: Int64, _ count: Int64,
                       _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        guard first >= 0, first < Int64(BridgeConfiguration.maxEpochs), count >= 0, count <= 100_000 else {
            throw BridgeError.invalid(key: "epochs", reason: "first \(first) and count \(count): first in 0..<\(BridgeConfiguration.maxEpochs), count in 0...100000")
        }
        let epochs = (Int(first)..<Int(first + count)).map { e in
            let plan = h.loader.plan(epoch: e)
            return PlanJSON.Epoch(epoch: e, steps: plan.steps.map {
                .init(sizes: $0.sizes, batch: $0.batchSize, duplicates: $0.duplicates, cursor: $0.cursor, images: $0.globalImages)
            }, note: plan.note)
        }
        return try output(try json(PlanJSON(epochs: epochs)), out)
    }
}

/// An epoch and stream position a caller passed, checked against the loader's cache.
private func checkPosition(epoch: Int64, cursor: Int64, of h: LoaderHandle) throws {
    guard epoch >= 0, epoch < Int64(BridgeConfiguration.maxEpochs) else {
        throw BridgeError.invalid(key: "epoch", reason: "\(epoch) is not in 0..<\(BridgeConfiguration.maxEpochs)")
    }
    guard cursor >= 0, cursor <= Int64(h.loader.cache.manifest.sampleCount) else {
        throw BridgeError.invalid(key: "cursor", reason: "\(cursor) is not in 0...\(h.loader.cache.manifest.sampleCount)")
    }
}

@_cdecl("pyramid_plan_from")
public func bridgePlanFrom(_ loader: OpaquePointer?, _ epoch: Int64, _ cursor: Int64,
                           _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        try checkPosition(epoch: epoch, cursor: cursor, of: h)
        let (plan, first) = try h.loader.plan(epoch: Int(epoch), from: Int(cursor))
        let steps = plan.steps[min(first, plan.steps.count)...].map {
            PlanJSON.Step(sizes: $0.sizes, batch: $0.batchSize, duplicates: $0.duplicates, cursor: $0.cursor, images: $0.globalImages)
        }
        return try output(try json(PlanJSON(epochs: [.init(epoch: Int(epoch), steps: steps, note: plan.note)])), out)
    }
}

@_cdecl("pyramid_start_epoch")
public func bridgeStartEpoch(_ loader: OpaquePointer?, _ epoch: Int64, _ cursor: Int64, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        try checkPosition(epoch: epoch, cursor: cursor, of: h)
        h.replaceEpoch(with: try h.loader.batches(epoch: Int(epoch), from: Int(cursor)))
        return PYRAMID_OK
    }
}

@_cdecl("pyramid_stop_epoch")
public func bridgeStopEpoch(_ loader: OpaquePointer?, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        try handle(loader).replaceEpoch(with: nil)
        return PYRAMID_OK
    }
}

@_cdecl("pyramid_next")
public func bridgeNext(_ loader: OpaquePointer?, _ timeoutMilliseconds: Int32, _ info: UnsafeMutablePointer<pyramid_batch_info>?,
                       _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        guard let info else { throw BridgeError.invalid(key: "info", reason: "is NULL") }
        return try h.consumer.withLock { _ in
            guard var iterator = h.state.withLock({ $0.iterator }) else {
                throw BridgeError.misuse("no epoch started (call pyramid_start_epoch first)")
            }
            let poll = try iterator.next(waitingAtMost: timeoutMilliseconds < 0 ? 86_400 : Double(timeoutMilliseconds) / 1000)
            switch poll {
            case .end: return PYRAMID_END
            case .timedOut: return PYRAMID_TIMEOUT
            case .batch(let batch):
                try describe(batch, into: info, held: h)
                return PYRAMID_OK
            }
        }
    }
}

/// Fills `info` for `batch` and keeps the batch (with C copies of its labels and indices) until released.
private func describe(_ batch: Batch, into info: UnsafeMutablePointer<pyramid_batch_info>, held h: LoaderHandle) throws {
    guard batch.sizes.count <= Int(PYRAMID_MAX_VIEWS) else {
        throw BridgeError.misuse("a batch with \(batch.sizes.count) sizes (at most \(PYRAMID_MAX_VIEWS))")
    }
    let labels = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, batch.count))
    let indices = UnsafeMutableBufferPointer<Int64>.allocate(capacity: max(1, batch.count))
    for i in 0..<batch.count { labels[i] = batch.labels[i]; indices[i] = Int64(batch.indices[i]) }
    var out = pyramid_batch_info()
    out.epoch = Int64(batch.epoch); out.step = Int64(batch.step); out.count = Int64(batch.count)
    out.channels = Int64(batch.channels); out.cursor = Int64(batch.plan.cursor); out.next_cursor = Int64(batch.nextCursor)
    out.substitutions = Int64(batch.substitutions)
    guard batch.format != .float32ChannelMajor else { throw BridgeError.misuse("channel-major batches are not part of the C interface") }
    out.format = batch.format == .float32 ? PYRAMID_FLOAT32 : PYRAMID_UINT8
    out.views = Int32(batch.sizes.count)
    withUnsafeMutableBytes(of: &out.sizes) { raw in
        let sizes = raw.bindMemory(to: Int64.self)
        for (v, s) in batch.sizes.enumerated() { sizes[v] = Int64(s) }
    }
    withUnsafeMutableBytes(of: &out.data) { raw in
        let data = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
        for (v, s) in batch.sizes.enumerated() {
            let images = batch.images(size: s)
            data[v] = UnsafeMutableRawPointer(mutating: images.format.isFloat
                ? UnsafeRawPointer(images.floats.baseAddress) : UnsafeRawPointer(images.bytes.baseAddress))
        }
    }
    out.labels = UnsafePointer(labels.baseAddress)
    out.indices = UnsafePointer(indices.baseAddress)
    out.id = h.state.withLock { s in
        s.nextBatch += 1
        s.held[s.nextBatch] = LoaderHandle.HeldBatch(batch: batch, labels: labels, indices: indices)
        return s.nextBatch
    }
    info.pointee = out
}

@_cdecl("pyramid_release")
public func bridgeRelease(_ loader: OpaquePointer?, _ batchID: UInt64, _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader, evenClosed: true)
        let found = h.state.withLock { $0.held.removeValue(forKey: batchID) != nil }
        guard found else { throw BridgeError.misuse("batch \(batchID) is not held (released already, or not from this loader)") }
        forgetIfDone(loader!, h)
        return PYRAMID_OK
    }
}

/// One entry of `pyramid_substitutions`.
private struct SubstitutionJSON: Encodable { var index: Int, level: Int, shard: Int, reason: String, replacement: Int }

@_cdecl("pyramid_substitutions")
public func bridgeSubstitutions(_ loader: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                _ error: ErrorSlot) -> Int32 {
    guarded(error) {
        let h = try handle(loader)
        return try output(try json(h.loader.substitutions.map {
            SubstitutionJSON(index: $0.index, level: $0.level, shard: $0.shard, reason: $0.reason, replacement: $0.replacement)
        }), out)
    }
}
