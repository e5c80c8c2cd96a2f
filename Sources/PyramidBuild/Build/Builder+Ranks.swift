import Foundation
import PyramidCache

/// What the ranks of a build exchange: the start (rank 0's state), progress, every shard's
/// progress at the end, and the renumbering of a shard's keys.
extension Builder {
    /// Rank 0's outcome of preparing the build, on every rank. A failure on rank 0 is rethrown
    /// there and becomes ``BuildError/peerFailed(rank:)`` on the others.
    func shareSetup(_ setup: Result<(state: BuildState, resumed: Bool, dictionarySeconds: Double), Error>,
                    group: ProcessGroup) throws -> (state: BuildState, resumed: Bool, dictionarySeconds: Double) {
        struct Shared: Codable { var state: BuildState?; var resumed: Bool; var dictionarySeconds: Double }
        var bytes: [UInt8] = []
        if group.isRoot {
            let shared: Shared
            switch setup {
            case .success(let s): shared = Shared(state: s.state, resumed: s.resumed, dictionarySeconds: s.dictionarySeconds)
            case .failure: shared = Shared(state: nil, resumed: false, dictionarySeconds: 0)
            }
            bytes = Array((try? JSONEncoder().encode(shared)) ?? Data())
        }
        bytes = group.broadcast(bytes, root: 0)
        if group.isRoot { return try setup.get() }
        guard let shared = try? JSONDecoder().decode(Shared.self, from: Data(bytes)), let state = shared.state else {
            throw BuildError.peerFailed(rank: 0)
        }
        return (state, shared.resumed, shared.dictionarySeconds)
    }

    /// Every shard's progress (by shard number) and the skipped and warned items of all of them, in
    /// source order, on every rank.
    func gatherShards(writers: [Int: ShardWriter], progress: [Int: ShardProgress], group: ProcessGroup,
                      board: inout ProgressBoard, progress report: (BuildProgress) -> Void)
        throws -> (progress: [ShardProgress], skipped: [SkippedItem], warned: [SkippedItem]) {
        struct Part: Codable { var shards: [Int: ShardProgress]; var skipped: [Int: [SkippedItem]]; var warned: [Int: [SkippedItem]] }
        var part = Part(shards: progress, skipped: [:], warned: [:])
        func items(_ writer: ShardWriter, _ prefix: String) throws -> [SkippedItem] {
            try writer.metaEntries(prefix: prefix).compactMap { try? JSONDecoder().decode(SkippedItem.self, from: Data($0.value)) }
        }
        for (k, writer) in writers {
            part.skipped[k] = try items(writer, "skip/")
            part.warned[k] = try items(writer, "warn/")
        }
        // Rank 0 keeps the progress line moving until every rank has finished its shards.
        if group.isRoot && group.size > 1 {
            while !board.allFinished {
                for (rank, values) in group.collectPosts() { board.update(rank: rank, values) }
                report(board.progress)
                // A 20 Hz refresh of the progress line, not a wait for an event: the other ranks'
                // posts arrive through MPI, which has no blocking receive with a timeout.
                if !board.allFinished { usleep(50_000) }
            }
        }
        var shards: [Int: ShardProgress] = [:]
        var skipped: [Int: [SkippedItem]] = [:], warned: [Int: [SkippedItem]] = [:]
        for (rank, bytes) in group.allgather(Array(try JSONEncoder().encode(part))).enumerated() {
            guard let p = try? JSONDecoder().decode(Part.self, from: Data(bytes)) else {
                throw BuildError.output(path: output.path, reason: "rank \(rank) sent an unreadable summary of its shards")
            }
            shards.merge(p.shards) { a, _ in a }
            skipped.merge(p.skipped) { a, _ in a }
            warned.merge(p.warned) { a, _ in a }
        }
        let all = try (0..<options.shards).map { k in
            guard let p = shards[k], p.complete else {
                throw BuildError.output(path: output.appendingPathComponent(shardDirectoryName(k)).path, reason: "shard \(k) is not complete after every rank finished")
            }
            return p
        }
        // Shards are contiguous source ranges, so shard order is source order.
        let order = (0..<options.shards)
        return (all, order.flatMap { skipped[$0] ?? [] }, order.flatMap { warned[$0] ?? [] })
    }

    /// Gives shard `k`'s records their sample indices (`firstIndex + i`) and writes its description,
    /// continuing a renumbering that a killed build left half done.
    func renumber(shard k: Int, writer: ShardWriter, progress: ShardProgress, firstIndex: Int, buildID: String) throws {
        var p = progress
        let from = p.keyBase
        let done = p.movedTo == firstIndex ? p.moved : 0
        if p.movedTo != nil && p.movedTo != firstIndex {
            throw BuildError.output(path: writer.directory.path, reason: "an interrupted renumbering of shard \(k) targets index \(p.movedTo!), now \(firstIndex)")
        }
        let info = ShardInfo(number: k, firstIndex: firstIndex, count: p.count, levels: levels, channels: channels, buildID: buildID,
                             formatVersion: options.formatVersion)
        try writer.moveKeys(from: from, to: firstIndex, count: p.count, done: done) { moved in
            if moved == p.count {
                p.keyBase = firstIndex; p.movedTo = nil; p.moved = 0
            } else {
                p.movedTo = firstIndex; p.moved = moved
            }
            var entries: [(key: String, value: [UInt8])] = [(ShardProgress.metaKey, p.encoded())]
            if moved == p.count { entries.append((ShardInfo.metaKey, info.encoded())) }
            return entries
        }
        try writer.packLevels()  // version 3: final keys, so the level files are packed now (nothing for 1, 2)
        try writer.sync()
    }
}

/// One rank's counts, as it posts them to rank 0.
struct RankTally {
    /// Source items of this rank's shards.
    var items: Int
    /// Items processed (written or skipped), including earlier runs.
    var processed: Int
    var processedBefore: Int
    var written: Int
    var skipped: Int

    func values(finished: Bool) -> [Int64] {
        [Int64(items), Int64(processed), Int64(processedBefore), Int64(written), Int64(skipped), finished ? 1 : 0]
    }
}

/// Rank 0's view of every rank's counts, for the progress line.
struct ProgressBoard {
    var tallies: [RankTally?]
    var finished: [Bool]
    let total: Int

    init(ranks: Int, total: Int) {
        tallies = Array(repeating: nil, count: ranks)
        finished = Array(repeating: false, count: ranks)
        self.total = total
    }

    mutating func update(rank: Int, _ tally: RankTally, finished done: Bool) {
        tallies[rank] = tally
        if done { finished[rank] = true }
    }

    mutating func update(rank: Int, _ values: [Int64]) {
        guard rank < tallies.count, values.count >= 6 else { return }
        let v = values.map { Int($0) }
        update(rank: rank, RankTally(items: v[0], processed: v[1], processedBefore: v[2], written: v[3], skipped: v[4]), finished: v[5] != 0)
    }

    var allFinished: Bool { !finished.contains(false) }
    var processedThisRun: Int { tallies.reduce(0) { $0 + ($1.map { $0.processed - $0.processedBefore } ?? 0) } }

    var progress: BuildProgress {
        let t = tallies.compactMap { $0 }
        return BuildProgress(phase: "build", processed: t.reduce(0) { $0 + $1.processed }, total: total,
                             written: t.reduce(0) { $0 + $1.written }, skipped: t.reduce(0) { $0 + $1.skipped },
                             processedThisRun: processedThisRun)
    }
}
