/*
 * api_queue.h - work that no client waits for, handed to the store's
 * shared queue (store.h, postgresql) instead of run here: any instance
 * with room claims it (work_queue.h).
 *
 * A run goes to the queue when the store has one, its policy waits on no
 * job (wait = none), its answer is not streamed (a stream shows each job
 * as it ends, here) and none of its jobs has a secret parameter (the
 * queue would have to keep the value in the database, where every record
 * keeps "***").  Each job still gets an instance here, with an id of this
 * daemon's, so that the 202 and the run's record look as they do for a
 * run of this instance's own; that instance is never started
 * (job_instance.enqueued).
 */
#ifndef TASKPOOLD_API_QUEUE_H
#define TASKPOOLD_API_QUEUE_H

#include <stdbool.h>

#include "api_call.h"
#include "api_start.h"

struct store;

/* Whether spec's jobs, delivered as `delivery`, go to s's queue. */
bool api_queue_fits(struct store *s, const struct call_spec *spec,
		    enum call_delivery delivery);

/*
 * Commits one record per job of spec to the queue, in spec's order, each
 * before the next: once this returns 0 every job is accepted (and the
 * 202 may go out).  Fills c->jobs (the instances, enqueued) and futures;
 * spec->params are stolen, all of them, whatever happens.  Returns 0, or
 * -1 with *why (for the client) and *reason (for the metrics) set: the
 * jobs queued before the failure are cancelled in the store again (as
 * far as it answers: a job cancelled there never runs).  Blocks its
 * caller for at most STORE_TIMEOUT_NS per job.
 */
int api_queue_jobs(struct store *s, struct call *c, struct call_spec *spec,
		   struct future **futures, const char **why,
		   const char **reason);

#endif
