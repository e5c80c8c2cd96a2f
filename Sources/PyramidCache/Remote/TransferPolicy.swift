#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// How hard a transfer tries before it reports a failure.
///
/// A failed attempt is retried after an exponential backoff with jitter when the failure is
/// passing: a reset or refused connection, a timeout, a stall (less than `minimumSpeed` bytes/s for
/// `stallSeconds`), a truncated body, HTTP 5xx (503 SlowDown included), 429 or 408. What cannot
/// pass is reported at once: 403, 404, 400 (clock skew included), an unknown host, an object that
/// changed. After `deadline` seconds for one object, or `maximumAttempts`, the transfer gives up
/// with one error naming the object and the last failure.
public struct TransferPolicy: Sendable, Equatable {
    /// Seconds one object may take, retries included.
    public var deadline: Double
    /// A transfer slower than `minimumSpeed` for this many seconds is a stall: cut and retried.
    public var stallSeconds: Int
    /// Bytes per second below which a transfer counts as stalled.
    public var minimumSpeed: Int
    /// Seconds to open a connection.
    public var connectSeconds: Int
    /// Attempts per object at most.
    public var maximumAttempts: Int
    /// The first backoff, doubled after each failure up to `maximumDelay`; each wait is drawn
    /// uniformly between half and all of it (jitter, so that many clients do not retry in step).
    public var firstDelay: Double
    public var maximumDelay: Double

    public init(deadline: Double = 600, stallSeconds: Int = 30, minimumSpeed: Int = 1024, connectSeconds: Int = 10,
                maximumAttempts: Int = 12, firstDelay: Double = 0.2, maximumDelay: Double = 10) {
        self.deadline = deadline; self.stallSeconds = stallSeconds; self.minimumSpeed = minimumSpeed
        self.connectSeconds = connectSeconds; self.maximumAttempts = maximumAttempts
        self.firstDelay = firstDelay; self.maximumDelay = maximumDelay
    }

    /// The default, with `PYRAMID_S3_DEADLINE` and `PYRAMID_S3_STALL_SECONDS` (seconds) applied.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> TransferPolicy {
        var p = TransferPolicy()
        if let d = environment["PYRAMID_S3_DEADLINE"].flatMap(Double.init), d > 0, d.isFinite { p.deadline = d }
        if let s = environment["PYRAMID_S3_STALL_SECONDS"].flatMap(Int.init), s > 0 { p.stallSeconds = s }
        return p
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures, from 1).
    func delay(after attempt: Int, random: Double) -> Double {
        let full = min(maximumDelay, firstDelay * pow(2, Double(max(0, attempt - 1))))
        return full * (0.5 + 0.5 * random)
    }
}

/// Counters of one client's transfers (all threads), for progress lines and `log.jsonl`.
public struct TransferStatistics: Sendable, Equatable, Codable {
    /// Body bytes received.
    public var bytesFetched: Int = 0
    /// Body bytes sent.
    public var bytesSent: Int = 0
    /// Attempts that failed and were retried.
    public var retries: Int = 0
    /// Objects downloaded completely.
    public var objectsFetched: Int = 0
    public init() {}
}
