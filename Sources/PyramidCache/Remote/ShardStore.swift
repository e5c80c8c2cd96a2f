#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Where a ``CacheReader`` of a remote cache gets its shards: it makes a shard's `data.mdb` local
/// (downloading it) and keeps it until released. Implemented by ``ShardFetcher``.
public protocol ShardStore: AnyObject, Sendable {
    /// Makes shard `number` local in the reader's directory and keeps it there until
    /// ``release(_:)``; waits for the download.
    /// - Throws: ``RemoteError`` when it cannot be fetched.
    func acquire(_ number: Int) throws
    /// Ends one ``acquire(_:)``: the shard may be evicted once nobody holds it.
    func release(_ number: Int)
    /// The shards each coming step reads, in step order (this epoch's rest, then the next
    /// epoch's), and how many steps are read at once: the store fetches ahead in order of first
    /// use and evicts the shard whose next use is farthest.
    /// - Throws: ``RemoteError/cacheLimitTooSmall(limit:minimum:reason:)`` when the shards that
    ///   `concurrency` consecutive steps read do not fit the limit together.
    func schedule(_ uses: [[Int]], concurrency: Int) throws
    /// Step `step` of the last schedule is being read (by one worker; several steps may be at
    /// once): its shards are not evicted until ``end(step:)``, and fetching ahead and eviction
    /// count from the oldest step in progress.
    func begin(step: Int)
    /// Step `step` (of ``begin(step:)``) is read.
    func end(step: Int)
    /// Every label, by sample index.
    func labels() throws -> [Int32]
    /// Counters since the store was made.
    var statistics: RemoteStatistics { get }
}

/// What a remote cache's store did, for progress lines and `log.jsonl`.
public struct RemoteStatistics: Sendable, Equatable, Codable {
    /// Body bytes downloaded.
    public var bytesFetched: Int = 0
    /// Shard files downloaded completely.
    public var shardsFetched: Int = 0
    /// Acquisitions that found the shard already local.
    public var hits: Int = 0
    /// Acquisitions that had to wait for a download.
    public var misses: Int = 0
    /// Failed attempts that were retried.
    public var retries: Int = 0
    /// Seconds readers waited for shards.
    public var waitSeconds: Double = 0
    /// Shards evicted to stay under the limit.
    public var evictions: Int = 0
    public init() {}

    /// `self - earlier`, counter by counter.
    public func since(_ earlier: RemoteStatistics) -> RemoteStatistics {
        var d = RemoteStatistics()
        d.bytesFetched = bytesFetched - earlier.bytesFetched; d.shardsFetched = shardsFetched - earlier.shardsFetched
        d.hits = hits - earlier.hits; d.misses = misses - earlier.misses; d.retries = retries - earlier.retries
        d.waitSeconds = waitSeconds - earlier.waitSeconds; d.evictions = evictions - earlier.evictions
        return d
    }
}
