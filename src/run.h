/*
 * run.h - a group of futures and the policy that says when the group has
 * waited long enough.
 *
 *   RUN_WAIT_ALL    every future is complete (gather)
 *   RUN_WAIT_FIRST  the first future of the list is complete
 *   RUN_WAIT_ANY    whichever future completes first
 *   RUN_WAIT_NONE   at once
 *
 * The run's callback fires exactly once: when the policy is met, or when
 * run_expire() is called first (a deadline).  It runs on the thread that
 * met the policy (a worker, the timer thread, or the caller of run_wait()
 * when the policy was met already), with no lock held.  Futures the policy
 * did not wait for simply go on: they are "detached".
 *
 * Ownership: run_new() takes its own reference on each future (the caller
 * keeps its own) and returns a new reference on the run.  The futures'
 * completion callbacks hold further references on the run, so it outlives
 * its detached futures; the last run_unref() frees it.
 */
#ifndef TASKPOOLD_RUN_H
#define TASKPOOLD_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "future.h"

enum run_policy {
	RUN_WAIT_ALL,
	RUN_WAIT_FIRST,
	RUN_WAIT_ANY,
	RUN_WAIT_NONE,
};

struct run;

/*
 * Called once.  `expired` is true when run_expire() ended the wait before
 * the policy was met.  `winner` is the index of the future whose completion
 * met the policy (for ALL, the last one to complete; -1 for NONE or when
 * expired).  r is borrowed for the call.
 */
typedef void (*run_callback)(struct run *r, bool expired, int winner,
			     void *arg);

/* New run over n >= 1 futures (borrowed), or NULL when out of memory. */
struct run *run_new(enum run_policy policy, struct future **futures,
		    size_t n);

/*
 * A run is refcounted: run_new() returns the caller's reference; run_ref()
 * adds one (returns r) and run_unref() drops one, freeing the run with the
 * last (NULL is ok).  The run holds its own while it watches the futures.
 */
struct run *run_ref(struct run *r);
void run_unref(struct run *r);

/*
 * Starts waiting: registers cb and watches the futures.  cb may run before
 * this returns.  Call it once per run.  This function can't fail.
 */
void run_wait(struct run *r, run_callback cb, void *arg);

/*
 * Ends the wait now if the policy is not met yet: cb then runs on this
 * thread with expired = true.  Returns true if it did so; false, doing
 * nothing, if the run has fired or run_wait() has not been called yet
 * (so arm a deadline only after run_wait()).
 */
bool run_expire(struct run *r);

/* The futures of the run, borrowed; i < run_size(r). */
size_t run_size(const struct run *r);
struct future *run_future(const struct run *r, size_t i);

/* "all", "first", "any", "none" and back; -1 for an unknown name. */
const char *run_policy_name(enum run_policy p);
int run_policy_parse(const char *name);

#endif
