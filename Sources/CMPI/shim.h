// Open MPI (Debian libopenmpi-dev 4.1) for Swift. Its handles — MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM,
// MPI_IN_PLACE… — are macros over addresses of library globals that Swift cannot import, so these
// wrappers take and return plain C types and name the handles in C.
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

// MPI_Init_thread with MPI_THREAD_FUNNELED (only the thread that initialized calls MPI). Returns the
// MPI error code; *provided receives the thread level granted.
static inline int pyr_mpi_init(int *provided) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) { *provided = MPI_THREAD_FUNNELED; return MPI_SUCCESS; }
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
}

static inline int pyr_mpi_finalize(void) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized ? MPI_SUCCESS : MPI_Finalize();
}

static inline int pyr_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int pyr_mpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }

// The number of ranks on this rank's machine (a communicator split by shared memory).
static inline int pyr_mpi_local_size(void) {
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) != MPI_SUCCESS) return 1;
    int s = 1;
    MPI_Comm_size(local, &s);
    MPI_Comm_free(&local);
    return s;
}

static inline int pyr_mpi_allreduce_float_sum(float *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static inline int pyr_mpi_allreduce_double_sum(double *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static inline int pyr_mpi_allgather_int64(int64_t value, int64_t *all) {
    return MPI_Allgather(&value, 1, MPI_INT64_T, all, 1, MPI_INT64_T, MPI_COMM_WORLD);
}

static inline int pyr_mpi_allgatherv_bytes(const void *bytes, int count, void *all, const int *counts, const int *displacements) {
    return MPI_Allgatherv(bytes, count, MPI_BYTE, all, counts, displacements, MPI_BYTE, MPI_COMM_WORLD);
}

static inline int pyr_mpi_bcast_bytes(void *bytes, int count, int root) {
    return MPI_Bcast(bytes, count, MPI_BYTE, root, MPI_COMM_WORLD);
}

static inline int pyr_mpi_bcast_int64(int64_t *value, int root) {
    return MPI_Bcast(value, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
}

static inline int pyr_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

// A non-blocking send of `count` int64 to rank 0 with `tag`. The request is heap-allocated (free it
// with pyr_mpi_request_test returning 1); `values` must stay valid until then.
static inline void *pyr_mpi_isend_int64(const int64_t *values, int count, int tag) {
    MPI_Request *request = (MPI_Request *)malloc(sizeof(MPI_Request));
    if (!request) return NULL;
    if (MPI_Isend(values, count, MPI_INT64_T, 0, tag, MPI_COMM_WORLD, request) != MPI_SUCCESS) { free(request); return NULL; }
    return request;
}

// 1 (and frees the request) when the send completed, 0 otherwise; with `wait`, blocks until it completes.
static inline int pyr_mpi_request_test(void *request, int wait) {
    int done = 0;
    if (wait) { MPI_Wait((MPI_Request *)request, MPI_STATUS_IGNORE); done = 1; }
    else MPI_Test((MPI_Request *)request, &done, MPI_STATUS_IGNORE);
    if (done) free(request);
    return done;
}

// Receives one pending message with `tag` from any rank, if there is one: returns its int64 count
// (at most `capacity` are stored in `values`) and its source rank, or -1 when none is waiting.
static inline int pyr_mpi_try_receive_int64(int tag, int64_t *values, int capacity, int *source) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &status);
    if (!flag) return -1;
    int count = 0;
    MPI_Get_count(&status, MPI_INT64_T, &count);
    if (count > capacity) count = capacity;
    MPI_Recv(values, capacity, MPI_INT64_T, status.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    *source = status.MPI_SOURCE;
    return count;
}

static inline void pyr_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
