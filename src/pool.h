/*
 * pool.h - a fixed set of worker threads fed by one bounded queue.
 *
 * pool_submit() never blocks: when the queue is full it fails at once and
 * the caller decides (the HTTP layer answers 503).  Each submission gets a
 * future; a worker starts it, runs the work function and completes it with
 * what the function returned.  A submission still queued can be cancelled
 * through its future (future_cancel()); the worker then skips it.
 *
 * The pool knows nothing of HTTP, JSON or jobs: work is a function pointer
 * and an opaque argument.
 */
#ifndef TASKPOOLD_POOL_H
#define TASKPOOLD_POOL_H

#include <stddef.h>

#include "future.h"

struct pool;

/*
 * Runs on a worker thread.  Returns the terminal state for the future
 * (FUTURE_SUCCEEDED, FUTURE_FAILED, ...) and may set *result and *error to
 * malloc'd strings, which the pool then gives (stolen) to the future.
 */
typedef enum future_state (*pool_work_fn)(void *arg, char **result,
					  char **error);

/*
 * Called exactly once per accepted submission, after the work function ran
 * or after the submission was dropped (cancelled, or discarded by
 * pool_free()): the place to release `arg`.  May be NULL.
 */
typedef void (*pool_release_fn)(void *arg);

/*
 * New pool of `workers` threads (>= 1) and room for `queue` waiting
 * submissions (>= 1).  Returns NULL with errno set on failure; no thread is
 * left running then.
 */
struct pool *pool_new(unsigned workers, unsigned queue);

/*
 * Queues work.  Returns a new reference on its future, or NULL with errno
 * EAGAIN (queue full), ESHUTDOWN (pool stopping) or ENOMEM.  On failure
 * release is not called: arg is still the caller's.
 */
struct future *pool_submit(struct pool *p, pool_work_fn work,
			   pool_release_fn release, void *arg);

/*
 * Replaces the calloc() that pool_submit() uses for its items, so that a
 * test can count or fail allocations.  Call it while no submit is under
 * way.  This function can't fail.
 */
void pool_set_allocator(struct pool *p, void *(*item_calloc)(size_t, size_t));

/* Number of submissions waiting, and of workers running one. */
size_t pool_queued(struct pool *p);
size_t pool_busy(struct pool *p);

/*
 * Stops accepting work, cancels what is still queued (futures CANCELLED),
 * waits for the running work to finish, joins the workers and frees the
 * pool.  Must not be called from a worker.  NULL is ok.
 */
void pool_free(struct pool *p);

#endif
