/*
 * registry.h - job instances by id: the live ones, and the finished ones
 * for a while.
 *
 * Bounded: at most max_jobs instances are held.  A new one first pushes out
 * the oldest finished instance; if every slot holds a live one, it is
 * refused (the caller answers 503).  Only live instances may exceed the
 * bound, after a reload lowered it: they are never dropped.  Finished instances are dropped
 * `retain` after they finish, by registry_expire(), which the daemon calls
 * from its timer.
 */
#ifndef TASKPOOLD_REGISTRY_H
#define TASKPOOLD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

struct registry;

/* New, empty registry, or NULL when out of memory. */
struct registry *registry_new(unsigned max_jobs, int64_t retain_ns);

/*
 * Changes the bounds (on reload).  A lower max_jobs takes effect at once:
 * finished instances over it are dropped, the oldest first (live ones are
 * never dropped: if they alone exceed it, adds are refused until enough
 * finish).  A new retain applies at the next expire.  Returns how many
 * were dropped.  This function can't fail.
 */
size_t registry_set_limits(struct registry *r, unsigned max_jobs,
			   int64_t retain_ns);

/*
 * Adds inst (takes its own reference) and watches its future, so that it
 * moves to the finished list when it completes.  Returns 0, or -1 with
 * errno EAGAIN when full of live instances, ESHUTDOWN once closed, ENOMEM
 * out of memory, EEXIST if an instance with its seq is held.
 */
int registry_add(struct registry *r, struct job_instance *inst);

/*
 * What an observer hears (registry_set_observer()): an instance was added
 * (created), or its future completed.
 */
enum registry_event {
	REGISTRY_ADDED,
	REGISTRY_FINISHED,
};
typedef void (*registry_observer)(enum registry_event ev,
				  struct job_instance *inst, void *arg);

/*
 * Sets the one observer (NULL: none), before any instance is added: it is
 * read without the lock.  fn is called without the registry's lock, on the
 * thread where the change happens (the adder's; the one that completed
 * the future), inst borrowed for the call; an instance's ADDED comes
 * before its FINISHED.  It must not block: the daemon's queues a copy for
 * the store (store.h).  This function can't fail.
 */
void registry_set_observer(struct registry *r, registry_observer fn,
			   void *arg);

/*
 * Refuses every later registry_add() (errno ESHUTDOWN), so that the live
 * instances can only get fewer: a stop closes the registry, then cancels
 * the live ones in one pass, and none can be added behind the pass.
 * This function can't fail.
 */
void registry_close(struct registry *r);

/* The instance with this id as a new reference, or NULL. */
struct job_instance *registry_find(struct registry *r, const char *id);

/*
 * Drops finished instances older than retain (monotonic now_ns), the
 * oldest first and at most max of them, so that one call holds the lock
 * (and its caller, the timer thread) only briefly.  Returns how many were
 * dropped: max means there may be more.
 */
size_t registry_expire(struct registry *r, int64_t now_ns, size_t max);

/*
 * Calls fn on every live instance, without the registry lock held (each
 * one is referenced for the call).  Returns how many it called fn on:
 * 0, logged, if there is no memory to list them.
 */
size_t registry_foreach_live(struct registry *r,
			     void (*fn)(struct job_instance *, void *),
			     void *arg);

/*
 * A listing's filter: job instances of one job (NULL: any) in one of a
 * set of states (bits REGISTRY_STATE(FUTURE_...); 0: any state).
 */
#define REGISTRY_STATE(s) (1u << (s))
struct registry_filter {
	const char *job;
	unsigned states;
};

/* One instance of a listing: a new reference, and what the filter saw. */
struct registry_entry {
	struct job_instance *inst;
	/* Its future's state, result and times, borrowed from inst. */
	struct future_snapshot snap;
};

/*
 * Lists instances newest first, in the order of their creation numbers
 * (inst->seq): those numbered below `before` (0: from the newest) that
 * match filter, at most limit (>= 1) of them, into out[] (room for
 * limit).  Returns how many; the caller job_unref()s each out[i].inst.
 *
 * It looks at `examine` instances at most (and holes: see seq_index.h),
 * so that a page holds the lock for O(examine), however many instances
 * the filter passes over: a page may be short, even empty, when the
 * filter matches few.  *next is the number to pass as `before` for the
 * next page (the last one looked at), or 0 when none is left.  An
 * instance added later gets a higher number (as a rule: an add may come
 * after a few newer ones), and one that goes simply leaves the order, so
 * neither shifts a later page.
 *
 * The lock covers the walk and the references only.  A state filter
 * is checked there against what the registry knows (a finished instance's
 * final state; a live one may be queued or running) and then precisely,
 * without the lock, on a snapshot of each future, which out[i].snap keeps:
 * every entry matches the filter in its snapshot, and the answer shows
 * that snapshot.  This function can't fail.
 */
size_t registry_list(struct registry *r, const struct registry_filter *filter,
		     uint64_t before, size_t limit, size_t examine,
		     struct registry_entry *out, uint64_t *next);

struct registry_counts {
	size_t live;
	size_t finished;
};
struct registry_counts registry_counts(struct registry *r);

/*
 * Buckets in the hash table, which grows with the entries and shrinks back
 * (never below REGISTRY_MIN_BUCKETS) after a burst.  For tests.
 */
#define REGISTRY_MIN_BUCKETS 1024
size_t registry_buckets(struct registry *r);

/*
 * Frees the registry and drops its references.  Live instances must have
 * completed (their futures' waiters point into the registry).
 */
void registry_free(struct registry *r);

#endif
