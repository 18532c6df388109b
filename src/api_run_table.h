/*
 * api_run_table.h - the runs of the API (calls, api_call.h) by id and by
 * idempotency key: the live ones, and those done for `retain`.
 *
 * Bounded: at most max_runs are kept; a new one first pushes out the
 * run that got done first.  Runs that are not done are never pushed out (each
 * holds a live job, so the job registry bounds them).  Ids are
 * "<instance>-<boot id>-r<sequence>", beside the jobs' ids.
 *
 * Listing is newest first by a cursor: the sequence number of the last run
 * of the previous page.  A page starts by looking that run up by id; only
 * when it is gone (expired) does it walk from the newest, so a page costs
 * O(limit) while the client keeps up with expiry, O(kept runs) at worst.
 *
 * Locking: one leaf mutex guards the tables, the list and each call's
 * table links and done_mono_ns; references are dropped after it is
 * released.
 */
#ifndef TASKPOOLD_API_RUN_TABLE_H
#define TASKPOOLD_API_RUN_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "api_call.h"

struct api_run_table;

/*
 * A new table, or NULL when out of memory.  id_prefix ("<instance>-<boot
 * id>-") is copied.
 */
struct api_run_table *api_run_table_new(unsigned max_runs, int64_t retain_ns,
					const char *id_prefix);
/* New bounds (on reload); the next add and expire apply them. */
void api_run_table_set_limits(struct api_run_table *t, unsigned max_runs,
			      int64_t retain_ns);

/*
 * Adds c (takes its own reference) and gives it its id and seq.  When c
 * has an idempotency key that a kept run holds already, adds nothing and
 * returns 1 with *existing a new reference to that run.  Returns 0 when
 * added, or -1 when out of memory.
 */
int api_run_table_add(struct api_run_table *t, struct call *c,
		      struct call **existing);
/* Takes c out (a run that could not start).  NULL-safe on absent. */
void api_run_table_remove(struct api_run_table *t, struct call *c);
/* Notes that c is done now (monotonic now_ns): its retain starts. */
void api_run_table_done(struct api_run_table *t, struct call *c,
			int64_t now_ns);

/* The run with this id or idempotency key, as a new reference, or NULL. */
struct call *api_run_table_find(struct api_run_table *t, const char *id);
struct call *api_run_table_find_key(struct api_run_table *t,
				    const char *key);

/*
 * Up to limit runs, newest first, older than the run of sequence `after`
 * (0: from the newest), as new references in out.  *next is the cursor of
 * the next page, 0 when there is none.  Returns how many.
 */
size_t api_run_table_list(struct api_run_table *t, uint64_t after,
			  size_t limit, struct call **out, uint64_t *next);

/*
 * Drops runs done for longer than retain (monotonic now_ns), at most max
 * of them.  Returns how many; max means there may be more.
 */
size_t api_run_table_expire(struct api_run_table *t, int64_t now_ns,
			    size_t max);

/* How many runs are kept. */
size_t api_run_table_count(struct api_run_table *t);

/* Frees the table and drops its references.  NULL is ok. */
void api_run_table_free(struct api_run_table *t);

#endif
