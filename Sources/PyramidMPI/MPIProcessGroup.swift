import CMPI
import Foundation
import PyramidCache

/// The processes started by `mpirun`, as a `ProcessGroup` (Open MPI, `MPI_COMM_WORLD`).
///
/// ```swift
/// let group: ProcessGroup = MPIProcessGroup.launchedByMPI ? try MPIProcessGroup() : SingleProcess()
/// // … each step, after the backward pass:
/// group.allreduceSum(gradients)          // then scale by 1 / group.size
/// ```
///
/// MPI is initialized with `MPI_THREAD_FUNNELED`: only the thread that made the group may call it
/// (worker threads never do). Errors inside MPI are fatal (MPI's default handler), and a process
/// that dies makes `mpirun` stop the others, so no collective call waits for a rank that is gone.
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int
    public let localSize: Int
    private var pending: [(request: UnsafeMutableRawPointer, values: UnsafeMutablePointer<Int64>)] = []
    private var finished = false
    static let postTag: Int32 = 0x5059  // "PY"
    static let postCapacity = 16

    /// True when this process was started by `mpirun` (Open MPI's `OMPI_COMM_WORLD_SIZE`, or a
    /// PMI/PMIx launcher's variables); `pyramid` then makes an ``MPIProcessGroup``.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_SIZE"] != nil
    }

    /// Initializes MPI (once per process) and joins `MPI_COMM_WORLD`.
    /// - Throws: ``MPIError`` when MPI cannot start or cannot give `MPI_THREAD_FUNNELED`.
    public init() throws {
        var provided: Int32 = 0
        let rc = pyr_mpi_init(&provided)
        guard rc == MPI_SUCCESS else { throw MPIError.initialization("MPI_Init_thread returned \(rc)") }
        guard provided >= MPI_THREAD_FUNNELED else {
            throw MPIError.initialization("MPI gives thread level \(provided), Pyramid needs MPI_THREAD_FUNNELED")
        }
        rank = Int(pyr_mpi_rank())
        size = Int(pyr_mpi_size())
        localSize = Int(pyr_mpi_local_size())
    }

    deinit { finish() }

    /// Waits for this rank's posts to be delivered and finalizes MPI (once); call it before the
    /// process exits normally. Later collective calls are invalid.
    public func finish() {
        guard !finished else { return }
        finished = true
        for p in pending { _ = pyr_mpi_request_test(p.request, 1); p.values.deallocate() }
        pending = []
        // Rank 0 drops posts nobody will read, so that finalizing does not wait for them.
        if rank == 0 { _ = collectPosts() }
        pyr_mpi_barrier()
        _ = pyr_mpi_finalize()
    }

    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        inCountedParts(values) { pyr_mpi_allreduce_float_sum($0, $1) }
    }

    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) {
        inCountedParts(values) { pyr_mpi_allreduce_double_sum($0, $1) }
    }

    /// Runs an in-place allreduce over `values` in parts of at most `Int32.max` elements (MPI's counts).
    private func inCountedParts<T>(_ values: UnsafeMutableBufferPointer<T>, _ allreduce: (UnsafeMutablePointer<T>, Int32) -> Int32) {
        guard size > 1, let base = values.baseAddress else { return }
        var offset = 0
        while offset < values.count {
            let n = min(values.count - offset, Int(Int32.max))
            check(allreduce(base + offset, Int32(n)), "MPI_Allreduce")
            offset += n
        }
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        guard size > 1 else { return [bytes] }
        var counts = [Int64](repeating: 0, count: size)
        check(counts.withUnsafeMutableBufferPointer { pyr_mpi_allgather_int64(Int64(bytes.count), $0.baseAddress!) }, "MPI_Allgather")
        guard counts.reduce(0, +) <= Int64(Int32.max) else {
            abort("pyramid: rank \(rank): an exchange of \(counts.reduce(0, +)) bytes is larger than MPI's 2 GiB count", code: 1)
        }
        let counts32 = counts.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<size { displacements[r] = displacements[r - 1] + counts32[r - 1] }
        var all = [UInt8](repeating: 0, count: max(1, Int(counts.reduce(0, +))))
        let rc = bytes.withUnsafeBytes { mine in
            all.withUnsafeMutableBytes { out in
                counts32.withUnsafeBufferPointer { c in
                    displacements.withUnsafeBufferPointer { d in
                        pyr_mpi_allgatherv_bytes(mine.baseAddress, Int32(bytes.count), out.baseAddress, c.baseAddress, d.baseAddress)
                    }
                }
            }
        }
        check(rc, "MPI_Allgatherv")
        return (0..<size).map { r in Array(all[Int(displacements[r])..<Int(displacements[r] + counts32[r])]) }
    }

    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] {
        guard size > 1 else { return bytes }
        var count = Int64(bytes.count)
        check(pyr_mpi_bcast_int64(&count, Int32(root)), "MPI_Bcast")
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        if count > 0 {
            check(out.withUnsafeMutableBytes { pyr_mpi_bcast_bytes($0.baseAddress, Int32(count), Int32(root)) }, "MPI_Bcast")
        }
        return out
    }

    public func barrier() {
        guard size > 1 else { return }
        check(pyr_mpi_barrier(), "MPI_Barrier")
    }

    public func post(_ values: [Int64]) {
        guard size > 1, rank != 0 else { return }
        precondition(values.count <= Self.postCapacity, "post at most \(Self.postCapacity) values")
        pending.removeAll { p in
            let done = pyr_mpi_request_test(p.request, 0) == 1
            if done { p.values.deallocate() }
            return done
        }
        let buffer = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, values.count))
        buffer.initialize(from: values, count: values.count)
        guard let request = pyr_mpi_isend_int64(buffer, Int32(values.count), Self.postTag) else {
            buffer.deallocate()
            return
        }
        pending.append((request, buffer))
    }

    public func collectPosts() -> [(rank: Int, values: [Int64])] {
        guard size > 1, rank == 0 else { return [] }
        var out: [(Int, [Int64])] = []
        var values = [Int64](repeating: 0, count: Self.postCapacity)
        while true {
            var source: Int32 = 0
            let n = values.withUnsafeMutableBufferPointer {
                pyr_mpi_try_receive_int64(Self.postTag, $0.baseAddress, Int32(Self.postCapacity), &source)
            }
            if n < 0 { break }
            out.append((Int(source), Array(values[0..<Int(n)])))
        }
        return out
    }

    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        pyr_mpi_abort(code)
        exit(code)
    }

    private func check(_ rc: Int32, _ function: String) {
        if rc != MPI_SUCCESS { abort("pyramid: rank \(rank) of \(size): \(function) failed with MPI error \(rc)", code: 1) }
    }
}

/// Why MPI could not start.
public enum MPIError: Error, CustomStringConvertible {
    case initialization(String)
    public var description: String {
        switch self { case .initialization(let reason): "cannot start MPI: \(reason)" }
    }
}
