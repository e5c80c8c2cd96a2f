#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Fetches a remote cache's shards into a local directory, within a byte limit.
///
/// - Order: shards a reader is waiting for first, then the scheduled steps' shards in order of
///   first use, ``downloads`` at once; a download starts when it fits under the limit, or when a local shard that is
///   needed later than it (or never) can be evicted. The victim is always the shard whose next use
///   is farthest; a shard being read, or read by a step in progress, is never evicted.
/// - Processes sharing the directory: each shard has a lock file (`shard-00000/lock`, `flock`).
///   A process that has a shard local holds it shared; downloading and deleting take it
///   exclusively, so a shard is downloaded once and never deleted under another reader. The locks
///   die with their process: a killed process leaves at most a `.part` file, which the next
///   download of that shard resumes (its ETag is beside it).
/// - The limit counts every shard file in the directory, whoever fetched it. When the space is
///   held by other processes' shards that are in use, a waiting reader gets its shard after 10 s
///   anyway (over the limit, counted in ``overLimitFetches``) rather than waiting forever.
///
/// `@unchecked Sendable`: every mutable property is read and written with `condition` locked.
public final class ShardFetcher: ShardStore, @unchecked Sendable {
    let client: S3Client
    let location: S3Location
    let manifest: Manifest
    /// ``Manifest/files``: what the ids of ``acquire(_:)`` and ``schedule(_:concurrency:)`` number.
    let files: [Manifest.CacheFile]
    let directory: URL
    /// Bytes of shard files the directory may hold.
    public let limit: Int
    /// Downloads at once: `PYRAMID_S3_DOWNLOADS`, default 4 (one stream rarely fills a link with
    /// tens of milliseconds of latency).
    public let downloads: Int

    private enum State { case absent, fetching, local }
    private struct Slot {
        var state = State.absent
        var pins = 0
        /// This process's lock file descriptor while the shard is local (held shared).
        var lock: Int32 = -1
        var failure: (any Error)?
        /// When eviction last failed because another process holds the shard.
        var busyUntil = Date.distantPast
    }
    private let condition = Condition()
    private var slots: [Slot]
    private var demand: [Int] = []
    private var uses: [[Int]] = []
    private var stepsOf: [[Int]] = []
    /// The oldest step in progress (or the next one): the present of ``nextUse(_:)``.
    private var position = 0
    /// Steps in progress (step → workers), and the shards they read (shard → steps in progress
    /// that read it): never evicted, even before their reader has pinned them.
    private var active: [Int: Int] = [:]
    private var inUse: [Int: Int] = [:]
    private var started = false
    private var counters = RemoteStatistics()
    /// Downloads that went over the limit because other processes held the space.
    public private(set) var overLimitFetches = 0

    /// The ETag of the manifest the run opened (see ``RemoteCache/manifestETag``).
    let manifestETag: String

    init(client: S3Client, location: S3Location, manifest: Manifest, manifestETag: String, directory: URL, limit: Int) {
        self.client = client; self.location = location; self.manifest = manifest; self.manifestETag = manifestETag
        self.directory = directory; self.limit = limit
        downloads = ProcessInfo.processInfo.environment["PYRAMID_S3_DOWNLOADS"].flatMap(Int.init).map { min(max($0, 1), 32) } ?? 4
        files = manifest.files
        slots = Array(repeating: Slot(), count: files.count)
        stepsOf = Array(repeating: [], count: files.count)
    }

    public var statistics: RemoteStatistics {
        condition.lock(); defer { condition.unlock() }
        var s = counters
        let t = client.statistics
        s.bytesFetched = t.bytesFetched; s.retries = t.retries
        return s
    }

    private func bytes(_ id: Int) -> Int { files[id].digest?.bytes ?? 0 }
    private func dataPath(_ id: Int) -> String { directory.appendingPathComponent(files[id].path).path }
    /// A version 1/2 shard's lock is `shard-00000/lock` (as before level files); a version 3
    /// file's is beside it (`level-224.mdb.lock`).
    private func lockPath(_ id: Int) -> String {
        manifest.hasLevelFiles ? dataPath(id) + ".lock"
            : directory.appendingPathComponent(manifest.shards[files[id].shard].name).appendingPathComponent("lock").path
    }

    public func labels() throws -> [Int32] {
        let path = directory.appendingPathComponent(Manifest.labelsFileName).path
        guard let data = FileManager.default.contents(atPath: path), data.count == 4 * manifest.sampleCount else {
            throw RemoteError.local(path: path, reason: "the labels file is missing or has the wrong size")
        }
        return data.withUnsafeBytes { raw in (0..<manifest.sampleCount).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) } }
    }

    // MARK: Readers

    public func acquire(_ number: Int) throws {
        condition.lock(); defer { condition.unlock() }
        if slots[number].state == .local {
            slots[number].pins += 1
            counters.hits += 1
            return
        }
        counters.misses += 1
        if !demand.contains(number) { demand.append(number) }
        startIfNeeded()
        condition.broadcast()
        let t0 = Date()
        defer { counters.waitSeconds += Date().timeIntervalSince(t0) }
        while slots[number].state != .local {
            if let failure = slots[number].failure {
                slots[number].failure = nil  // a later acquisition tries again
                demand.removeAll { $0 == number }
                throw failure
            }
            condition.wait()
        }
        demand.removeAll { $0 == number }
        slots[number].pins += 1
    }

    public func release(_ number: Int) {
        condition.lock(); defer { condition.unlock() }
        slots[number].pins = max(0, slots[number].pins - 1)
        condition.broadcast()
    }

    public func schedule(_ uses: [[Int]], concurrency: Int) throws {
        let window = max(1, min(concurrency, uses.count))
        var minimum = 0, widest = Set<Int>()
        for start in 0..<max(1, uses.count - window + 1) where start < uses.count {
            let ids = Set(uses[start..<min(uses.count, start + window)].joined())
            let need = ids.reduce(0) { $0 + bytes($1) }
            if need > minimum { minimum = need; widest = ids }
        }
        if minimum > limit {
            // Per level, so that a run at one size knows it needs only that level's share.
            var perLevel: [Int: Int] = [:]
            for id in widest { if let l = files[id].level { perLevel[l, default: 0] += bytes(id) } }
            let levels = perLevel.isEmpty ? "" : " (" + perLevel.sorted { $0.key > $1.key }
                .map { "level \($0.key): \(formatBytes($0.value))" }.joined(separator: ", ") + ")"
            let whole = manifest.hasLevelFiles ? "" : "; every shard file holds every level (a version \(manifest.formatVersion) cache: pyramid upgrade makes a file per level, so a run fetches only its levels)"
            throw RemoteError.cacheLimitTooSmall(
                limit: limit, minimum: minimum,
                reason: (window == 1 ? "one step reads from that many bytes of files" : "\(window) steps read at once (one per worker) touch that many bytes of files")
                    + levels + whole
                    + "; raise the limit (--cache-limit, PYRAMID_CACHE_LIMIT), or read in a streaming order (shards:W with a smaller W: --shuffle, order=)")
        }
        condition.lock(); defer { condition.unlock() }
        self.uses = uses
        stepsOf = Array(repeating: [], count: files.count)
        for (step, shards) in uses.enumerated() { for s in Set(shards) { stepsOf[s].append(step) } }
        position = 0
        active = [:]; inUse = [:]
        startIfNeeded()
        condition.broadcast()
    }

    public func begin(step: Int) {
        condition.lock(); defer { condition.unlock() }
        guard step >= 0, step < uses.count else { return }
        active[step, default: 0] += 1
        for s in Set(uses[step]) { inUse[s, default: 0] += 1 }
        position = active.keys.min() ?? step
        condition.broadcast()
    }

    public func end(step: Int) {
        condition.lock(); defer { condition.unlock() }
        guard let n = active[step], step < uses.count else { return }  // a step of an earlier schedule
        active[step] = n > 1 ? n - 1 : nil
        for s in Set(uses[step]) {
            if let k = inUse[s] { inUse[s] = k > 1 ? k - 1 : nil }
        }
        position = active.keys.min() ?? max(position, step + 1)
        condition.broadcast()
    }

    // MARK: Fetching (condition locked unless said otherwise)

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        for _ in 0..<downloads {
            startThread(name: "pyramid-fetch") { [self] in run() }
        }
    }

    /// The step at which `shard` is next read (Int.max: not again in the schedule).
    private func nextUse(_ shard: Int) -> Int {
        let steps = stepsOf[shard]
        var lo = 0, hi = steps.count
        while lo < hi { let mid = (lo + hi) / 2; if steps[mid] < position { lo = mid + 1 } else { hi = mid } }
        return lo < steps.count ? steps[lo] : Int.max
    }

    private func nextTarget() -> Int? {
        if let d = demand.first(where: { slots[$0].state == .absent && slots[$0].failure == nil }) { return d }
        var step = position
        while step < uses.count {
            for s in uses[step] where slots[s].state == .absent && slots[s].failure == nil { return s }
            step += 1
        }
        return nil
    }

    /// Bytes of shard files (complete or partial) in the directory, counting a download of ours
    /// in flight at its full size.
    private func bytesOnDisk() -> Int {
        files.indices.reduce(0) { sum, s in
            sum + (slots[s].state == .fetching ? bytes(s) : (fileSize(dataPath(s)) ?? 0) + (fileSize(dataPath(s) + ".part") ?? 0))
        }
    }

    private func run() {
        condition.lock(); defer { condition.unlock() }
        var waitingSince: Date?
        while true {
            guard let target = nextTarget() else { condition.wait(); continue }
            let present = FileManager.default.fileExists(atPath: dataPath(target))
            if !present && bytesOnDisk() + bytes(target) > limit {
                if evictOne(for: target) { continue }
                // Nothing of ours can go. A waiting reader gets its shard after 10 s regardless.
                let demanded = demand.contains(target)
                if demanded, let since = waitingSince, Date().timeIntervalSince(since) > 10 {
                    overLimitFetches += 1
                } else {
                    if demanded && waitingSince == nil { waitingSince = Date() }
                    condition.wait(seconds: 0.25)
                    continue
                }
            }
            waitingSince = nil
            slots[target].state = .fetching
            condition.unlock()
            let result = Result { try fetch(target) }
            condition.lock()
            switch result {
            case .success(let fd):
                slots[target].state = .local; slots[target].lock = fd
                if !present { counters.shardsFetched += 1 }
            case .failure(let error):
                slots[target].state = .absent; slots[target].failure = error
            }
            condition.broadcast()
        }
    }

    /// Evicts the local shard needed farthest in the future (later than `target`), if any; true
    /// when space was freed or a candidate was tried.
    private func evictOne(for target: Int) -> Bool {
        let needed = demand.contains(target) ? -1 : nextUse(target)
        let now = Date()
        let candidates = (0..<slots.count).filter { s in
            s != target && slots[s].pins == 0 && inUse[s] == nil && slots[s].state != .fetching && slots[s].busyUntil < now
                && FileManager.default.fileExists(atPath: dataPath(s)) && nextUse(s) > needed
        }
        guard let victim = candidates.max(by: { nextUse($0) < nextUse($1) }) else { return false }
        if slots[victim].lock >= 0 { close(slots[victim].lock); slots[victim].lock = -1 }  // our shared lock
        slots[victim].state = .absent
        let fd = open(lockPath(victim), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { slots[victim].busyUntil = now.addingTimeInterval(1); return true }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            unlink(dataPath(victim)); unlink(dataPath(victim) + ".part"); unlink(dataPath(victim) + ".part.etag")
            counters.evictions += 1
        } else {
            slots[victim].busyUntil = now.addingTimeInterval(1)  // another process reads it
        }
        return true
    }

    /// ``RemoteError/changed(object:reason:)`` when the manifest is no longer the one this run
    /// opened (a shard that does not match it was republished, not damaged); nil otherwise.
    func republished(_ object: String) -> RemoteError? {
        guard let now = try? client.head(location, Manifest.fileName), now.etag != manifestETag else { return nil }
        return .changed(object: object, reason: "the cache was published again since this run opened it (manifest ETag \(manifestETag) became \(now.etag)); start the run again to read the new publication")
    }

    /// Makes `shard` local and returns its lock file descriptor, held shared. Runs unlocked.
    private func fetch(_ shard: Int) throws -> Int32 {
        let info = files[shard]
        guard let file = info.digest else { throw RemoteError.notPublished(location: location.description, reason: "\(info.path) has no size and digest in the manifest") }
        let dir = directory.appendingPathComponent(manifest.shards[info.shard].name)
        try createDirectory(dir, purpose: "the shard's directory")
        let fd = open(lockPath(shard), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RemoteError.local(path: lockPath(shard), reason: String(cString: strerror(errno))) }
        let data = URL(fileURLWithPath: dataPath(shard))
        do {
            while true {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                    if !FileManager.default.fileExists(atPath: data.path) {
                        do {
                            try client.download(location, info.path, to: data, expected: .init(size: file.bytes, digest: file.digest))
                        } catch RemoteError.damaged(let object, let reason) {
                            throw republished(object) ?? RemoteError.damaged(object: object, reason: reason)
                        }
                    }
                    flock(fd, LOCK_SH)  // not atomic: check the file survived the change
                    if FileManager.default.fileExists(atPath: data.path) { return fd }
                } else if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                    if FileManager.default.fileExists(atPath: data.path) { return fd }
                    flock(fd, LOCK_UN)
                    usleep(20_000)
                } else {
                    usleep(50_000)  // another process is downloading or deleting it
                }
            }
        } catch {
            flock(fd, LOCK_UN)
            close(fd)
            throw error
        }
    }
}
