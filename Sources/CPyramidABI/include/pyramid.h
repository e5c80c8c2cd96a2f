/*
 * pyramid.h — the C interface of Pyramid's loader (libPyramidC.so).
 *
 * Opaque handles, status codes and error strings the caller frees, in the manner of zstd.h and
 * sqlite3.h. Functions that can fail return an int32_t status: PYRAMID_OK (0) on success, a
 * positive code that is not a failure (PYRAMID_END, PYRAMID_TIMEOUT from pyramid_next), or
 * PYRAMID_INVALID / PYRAMID_ERROR with a message; pyramid_status_name names each code. The few
 * that cannot fail return their value directly (the versions, pyramid_string_free,
 * pyramid_digest). Nothing here traps on what a caller passes: a bad argument, a closed handle, a
 * released batch, an unreadable cache or a corrupt record each come back as a status and a
 * message. Every `char **error` may be NULL; when it is not and the call fails, *error receives
 * a message to free with pyramid_string_free (and is set to NULL on success).
 *
 * Ownership: a pyramid_loader belongs to the caller from pyramid_open until pyramid_close; a
 * batch's memory belongs to the loader and is lent from pyramid_next until pyramid_release; every
 * string a function returns through a `char **` is the caller's to free with pyramid_string_free;
 * every `const char *` returned directly is static (never free it).
 *
 * Threads: a loader may be used from several threads; calls on one loader are serialized (one
 * pyramid_next waits while another thread's call runs). Functions without a loader are safe from
 * any thread.
 * Fork: a loader opened before fork() refuses every call in the child (status PYRAMID_ERROR,
 * "used in a process forked after it was opened"); open a new one there.
 *
 * The functions a language binding needs to release batches from a garbage collector are in
 * pyramid_binding.h.
 */
#ifndef PYRAMID_H
#define PYRAMID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions libPyramidC exports (they are its only exported symbols in C). */
#if defined(__GNUC__) || defined(__clang__)
#define PYRAMID_API __attribute__((visibility("default")))
#else
#define PYRAMID_API
#endif

/* The version of this interface; a change of layout or meaning increments it (adding a function
   does not). */
#define PYRAMID_ABI_VERSION 2

/* The most sizes one batch carries (a parallel schedule's views). */
#define PYRAMID_MAX_VIEWS 16

/* Status codes. */
#define PYRAMID_OK 0
#define PYRAMID_END 1        /* pyramid_next: the epoch has no more batches */
#define PYRAMID_TIMEOUT 2    /* pyramid_next: no batch within the timeout; call again */
#define PYRAMID_ERROR (-1)   /* the cache, a record or the loader's state failed: see *error */
#define PYRAMID_INVALID (-2) /* a bad argument (a configuration value, a cursor, …): see *error */

/* Pixel formats of pyramid_batch_info.format. */
#define PYRAMID_FLOAT32 0    /* float, N x C x H x W, normalized with the cache's mean and std */
#define PYRAMID_UINT8 1      /* uint8_t, N x H x W x C, the rendered pixels */

typedef struct pyramid_loader pyramid_loader;

/* One batch, as pyramid_next hands it out. The pointers stay valid until pyramid_release(id). */
typedef struct pyramid_batch_info {
    uint64_t id;             /* the handle to release */
    int64_t epoch;
    int64_t step;            /* within the epoch's plan, from 0 */
    int64_t count;           /* samples (images x duplicates) */
    int64_t channels;        /* 1 or 3 */
    int64_t cursor;          /* stream position of the step's first image (all ranks) */
    int64_t next_cursor;     /* the position to resume from after this step */
    int64_t substitutions;   /* corrupt records replaced in this batch */
    int32_t format;          /* PYRAMID_FLOAT32 or PYRAMID_UINT8 */
    int32_t views;           /* sizes carried: 1, or a parallel schedule's count */
    int64_t sizes[PYRAMID_MAX_VIEWS];     /* side of the square images of each view, largest first */
    void *data[PYRAMID_MAX_VIEWS];        /* each view's pixels */
    const int32_t *labels;   /* count labels */
    const int64_t *indices;  /* count sample indices (after a substitution, the replacement's) */
} pyramid_batch_info;

/* PYRAMID_ABI_VERSION of the library actually loaded. Any thread. */
PYRAMID_API int32_t pyramid_abi_version(void);

/* Pyramid's version, e.g. "0.1.0" (a static string: do not free). Any thread. */
PYRAMID_API const char *pyramid_version(void);

/* The same as a number, MAJOR × 10000 + MINOR × 100 + PATCH (0.1.0 is 100), for comparisons. */
PYRAMID_API uint32_t pyramid_version_number(void);

/* The name of a status code ("PYRAMID_OK", "PYRAMID_END", …; "unknown status" for any other
   value), a static string: do not free. Any thread. */
PYRAMID_API const char *pyramid_status_name(int32_t status);

/* Frees a string this library returned through a `char **`. NULL is ignored. Any thread. */
PYRAMID_API void pyramid_string_free(char *string);

/*
 * Opens the cache at `path` with a configuration given as a JSON object (NULL or "{}" for the
 * defaults). Keys, all optional:
 *   "schedule"        string  "fixed:S", "trd:…", "mixsize:…", "parallel:…", "progressive:…"
 *                             (default: fixed at the cache's largest level)
 *   "batch_size"      int     base images per rank per step (default 128)
 *   "seed"            int     0 … 2^64-1 (default 0)
 *   "epochs"          int     epochs of the run, for schedules that need them (default 1)
 *   "augment"         string  "rrc", "pad:P", "flip", "none", … (default: the cache's training
 *                             augmentation when shuffling, its evaluation view otherwise)
 *   "rank", "world_size"  int this process's share of every step (default 0 of 1)
 *   "workers"         int     loader threads (default: the cores)
 *   "prefetch"        int     batch buffers in use at once (default max(4, 2 x workers))
 *   "output"          string  "float32" or "uint8" (default "float32")
 *   "shuffle"         bool    a permutation per epoch (default true), else index order
 *   "drop_last"       bool    drop the partial last step (default: shuffle)
 *   "corrupt_records" string  "fail" or "substitute" (default "fail")
 *   "order"           string  how a shuffled epoch is ordered: "global" (every sample permuted) or
 *                             "shards:W" (the shards shuffled, then the samples of W shards at a
 *                             time; default: global for a directory, shards:4 for s3://)
 * `path` is a cache directory or s3://bucket/prefix (credentials and endpoint from the AWS
 * variables and files; PYRAMID_CACHE_DIR and PYRAMID_CACHE_LIMIT for the local copy).
 * On PYRAMID_OK *loader is the new loader; PYRAMID_INVALID for a bad key or value (or a size the
 * cache cannot serve), PYRAMID_ERROR for an unreadable cache.
 */
PYRAMID_API int32_t pyramid_open(const char *path, const char *configuration_json, pyramid_loader **loader, char **error);

/* Closes the loader: stops its epoch; every later call but pyramid_release is refused. Batches
   not yet released stay valid until released; the loader is freed with the last of them. Call it
   once, from any thread, after the other threads' calls on this loader have returned. */
PYRAMID_API int32_t pyramid_close(pyramid_loader *loader, char **error);

/* The cache's manifest and the loader's resolved configuration, as JSON in *json (free it). */
PYRAMID_API int32_t pyramid_describe(pyramid_loader *loader, char **json, char **error);

/* Every step of epochs first ..< first + count as JSON: {"epochs": [{"epoch", "steps":
   [{"sizes", "batch", "duplicates", "cursor", "images"}]}]}, in *json (free it). */
PYRAMID_API int32_t pyramid_plan(pyramid_loader *loader, int64_t first, int64_t count, char **json, char **error);

/* The steps pyramid_start_epoch(loader, epoch, cursor) would serve, as pyramid_plan's JSON with
   one epoch: the rest of the epoch's plan from a step boundary, or the rest planned afresh from
   another position (after a change of the global batch). */
PYRAMID_API int32_t pyramid_plan_from(pyramid_loader *loader, int64_t epoch, int64_t cursor, char **json, char **error);

/* Starts serving `epoch` from stream position `cursor` (0, or a batch's next_cursor); an epoch
   in progress is stopped first. */
PYRAMID_API int32_t pyramid_start_epoch(pyramid_loader *loader, int64_t epoch, int64_t cursor, char **error);

/* The next batch of the current epoch, waiting `timeout_ms` at most (negative: no limit).
   PYRAMID_OK fills *info (the batch is lent to the caller until pyramid_release(info->id));
   PYRAMID_END, PYRAMID_TIMEOUT or PYRAMID_ERROR leave it as it was. Wait with a timeout when the
   calling thread must stay responsive (a Python binding polls so that Ctrl-C is handled). */
PYRAMID_API int32_t pyramid_next(pyramid_loader *loader, int32_t timeout_ms, pyramid_batch_info *info, char **error);

/* Gives a batch's buffer back to the loader. Releasing an id twice, or one this loader never
   gave out, is PYRAMID_ERROR. Any thread, also after pyramid_close. */
PYRAMID_API int32_t pyramid_release(pyramid_loader *loader, uint64_t batch_id, char **error);

/* Stops the current epoch (its workers finish the step they are on). */
PYRAMID_API int32_t pyramid_stop_epoch(pyramid_loader *loader, char **error);

/* Substitutions made so far (policy "substitute") as a JSON array of
   {"index", "level", "shard", "reason", "replacement"}, in *json (free it). */
PYRAMID_API int32_t pyramid_substitutions(pyramid_loader *loader, char **json, char **error);

/* XXH3-64 (seed 0) of `length` bytes: the digest `pyramid batches` prints for a view's pixels. */
PYRAMID_API uint64_t pyramid_digest(const void *bytes, size_t length);

#ifdef __cplusplus
}
#endif

#endif /* PYRAMID_H */
