/*
 * api_queue.c - see api_queue.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_queue.h"
#include "daemon.h"
#include "log.h"
#include "params.h"
#include "store/store.h"

bool
api_queue_fits(struct store *s, const struct call_spec *spec,
	       enum call_delivery delivery)
{
	size_t i, k;

	if (s == NULL || !store_has_queue(s) || spec->wait != RUN_WAIT_NONE ||
	    delivery == CALL_NDJSON || delivery == CALL_SSE)
		return false;
	for (i = 0; i < spec->njobs; i++)
		for (k = 0; k < spec->jobs[i]->nparams; k++)
			if (spec->jobs[i]->params[k].secret)
				return false;
	return true;
}

/*
 * The queue's record of inst: its id, job and params (every value: none
 * is a secret, api_queue_fits() saw to it).  Returns 0, or -1 when out of
 * memory.
 */
static int
queue_record(const struct job_instance *inst, struct store_job *rec)
{
	struct timespec now;

	memset(rec, 0, sizeof(*rec));
	snprintf(rec->id, sizeof(rec->id), "%s", inst->id);
	snprintf(rec->job, sizeof(rec->job), "%s", inst->def->name);
	rec->state = STORE_QUEUED;
	clock_gettime(CLOCK_REALTIME, &now);
	rec->created = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	rec->params = json_dumps(inst->params, JSON_COMPACT | JSON_SORT_KEYS);
	return rec->params != NULL ? 0 : -1;
}

/* Takes back the first n jobs of c, queued already: a failed run. */
static void
unqueue(struct store *s, struct call *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (store_cancel(s, c->jobs[i]->id) < 0)
			log_warn("queue: job %s (id %s) stays queued though "
				 "its run was refused", c->jobs[i]->def->name,
				 c->jobs[i]->id);
}

int
api_queue_jobs(struct store *s, struct call *c, struct call_spec *spec,
	       struct future **futures, const char **why,
	       const char **reason)
{
	struct daemon *d = c->daemon;
	struct store_job rec;
	size_t i, n = 0;
	int rc;

	*why = NULL;
	*reason = "out_of_memory";
	for (i = 0; i < spec->njobs && *why == NULL; i++) {
		struct job_instance *inst = job_new(&d->env, c->cfg,
						    spec->jobs[i],
						    spec->params[i]);

		spec->params[i] = NULL;	/* job_new() took it */
		if (inst == NULL || queue_record(inst, &rec) != 0) {
			*why = "out of memory";
			job_unref(inst);
			break;
		}
		inst->enqueued = true;
		rc = store_enqueue(s, &rec);
		store_job_clear(&rec);
		if (rc != 0) {
			log_warn("queue: job %s not queued", inst->def->name);
			*why = "the shared queue is unavailable; try again "
			       "later";
			*reason = "store_unavailable";
			job_unref(inst);
			break;
		}
		c->jobs[n++] = inst;
		futures[i] = inst->future;
	}
	for (i = 0; i < spec->njobs; i++) {
		json_decref(spec->params[i]);	/* those not handed over */
		spec->params[i] = NULL;
	}
	pthread_mutex_lock(&c->lock);
	c->njobs = n;
	pthread_mutex_unlock(&c->lock);
	if (*why == NULL)
		return 0;
	unqueue(s, c, n);
	return -1;
}
