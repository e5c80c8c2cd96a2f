/*
 * pyramid_binding.h — what a language binding of libPyramidC needs beyond pyramid.h: releasing
 * batches from a garbage collector without running interpreted code.
 *
 * A finalizer written in Python runs wherever the collector frees an object, and a Ctrl-C that
 * lands in it is printed and dropped (and the release in it skipped). A Python capsule whose
 * destructor is native runs no Python code, so it can neither lose a signal nor skip the release.
 */
#ifndef PYRAMID_BINDING_H
#define PYRAMID_BINDING_H

#include "pyramid.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * pyramid_ticket: a ticket that, redeemed, releases `batch_id` of `loader` (batch_id 0: closes
 * the loader). NULL if `loader` is NULL. A ticket is an opaque number, not memory: redeeming one
 * twice, or a value never handed out, does nothing. pyramid_redeem_ticket redeems it; errors (a
 * batch released already, a closed loader, a forked child) are ignored. A NULL ticket is ignored.
 * Both: any thread.
 */
PYRAMID_API void *pyramid_ticket(pyramid_loader *loader, uint64_t batch_id);
PYRAMID_API void pyramid_redeem_ticket(void *ticket);

/*
 * pyramid_set_capsule_getter: how to read a ticket out of a capsule object (for Python:
 * PyCapsule_GetPointer), set before the first capsule dies. It is one setting for the process
 * (an atomic: any thread, the last call wins), because a capsule destructor receives nothing but
 * the capsule: the library cannot be told per capsule how to open it, and a process has one
 * Python runtime. pyramid_capsule_destructor is the destructor to give such a capsule, named
 * pyramid_capsule_name() (a static string): it redeems the ticket; without a getter it does
 * nothing (the batch then stays lent: a leak, never a crash).
 */
PYRAMID_API void pyramid_set_capsule_getter(void *(*getter)(void *capsule, const char *name));
PYRAMID_API void pyramid_capsule_destructor(void *capsule);
PYRAMID_API const char *pyramid_capsule_name(void);

#ifdef __cplusplus
}
#endif

#endif /* PYRAMID_BINDING_H */
