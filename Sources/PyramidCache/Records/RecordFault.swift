#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Why a record could not be decoded; wrapped into ``CacheError/corruptRecord(shard:index:level:reason:)`` by readers.
public struct RecordFault: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}
