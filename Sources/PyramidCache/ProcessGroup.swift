#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// The processes of one build or training run, and what they exchange.
///
/// One process is ``SingleProcess``, where every exchange is the identity. Under `mpirun`,
/// `PyramidMPI`'s `MPIProcessGroup` implements the same calls with MPI, so the builder, the
/// trainer and a user's own training loop are written once for any number of processes. Every
/// collective call (``allreduceSum(_:)-(UnsafeMutableBufferPointer<Float>)``, ``allgather(_:)``,
/// ``broadcast(_:root:)``, ``barrier()``) must be made by every rank, in the same order, from one
/// thread of each process.
public protocol ProcessGroup: AnyObject {
    /// This process's rank, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Processes of the group on this machine (to divide its cores among them).
    var localSize: Int { get }
    /// Replaces `values` on every rank by their element-wise sum over the ranks. Every rank gets
    /// bit-identical sums.
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>)
    /// ``allreduceSum(_:)-(UnsafeMutableBufferPointer<Float>)`` for doubles.
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Every rank's `bytes`, indexed by rank, on every rank.
    func allgather(_ bytes: [UInt8]) -> [[UInt8]]
    /// `root`'s `bytes` on every rank (the others' argument is ignored).
    func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8]
    /// Returns when every rank has called it.
    func barrier()
    /// Sends a few numbers to rank 0 without waiting for it (progress of long work). Not collective.
    func post(_ values: [Int64])
    /// Rank 0: the posts that arrived since the last call, in arrival order. Not collective.
    func collectPosts() -> [(rank: Int, values: [Int64])]
    /// Stops every process of the group after printing `message` on standard error; does not return.
    func abort(_ message: String, code: Int32) -> Never
}

extension ProcessGroup {
    /// ``allreduceSum(_:)-(UnsafeMutableBufferPointer<Float>)`` of an array.
    public func allreduceSum(_ values: inout [Float]) { values.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    /// ``allreduceSum(_:)-(UnsafeMutableBufferPointer<Double>)`` of an array.
    public func allreduceSum(_ values: inout [Double]) { values.withUnsafeMutableBufferPointer { allreduceSum($0) } }
    /// The sum of `value` over the ranks.
    public func sum(_ value: Double) -> Double {
        var v = [value]
        allreduceSum(&v)
        return v[0]
    }
    /// True when this is rank 0 (the rank that writes manifests, checkpoints and logs).
    public var isRoot: Bool { rank == 0 }
}

/// One process: rank 0 of 1; every exchange is the identity.
public final class SingleProcess: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localSize: Int { 1 }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) {}
    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }
    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] { bytes }
    public func barrier() {}
    public func post(_ values: [Int64]) {}
    public func collectPosts() -> [(rank: Int, values: [Int64])] { [] }
    public func abort(_ message: String, code: Int32) -> Never {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(code)
    }
}
