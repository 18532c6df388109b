/*
 * api_call.c - see api_call.h: the call as an object, its references, and
 * its answer, built once.  Starting a call and answering its client are
 * in api_start.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_answer.h"
#include "api_call.h"
#include "api_json.h"
#include "http.h"

struct call *
call_ref(struct call *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void
call_unref(struct call *c)
{
	size_t i;

	if (c == NULL ||
	    atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < c->njobs; i++)
		job_unref(c->jobs[i]);
	run_unref(c->run);
	server_request_unref(c->req);
	config_unref(c->cfg);
	free(c->answer);
	free(c->streamed);
	free(c->stream_waiters);
	free(c->idempotency_key);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

bool
call_starting(struct call *c)
{
	bool starting;

	pthread_mutex_lock(&c->lock);
	starting = c->njobs == 0 && !c->done;
	pthread_mutex_unlock(&c->lock);
	return starting;
}

bool
call_done(struct call *c)
{
	bool done;

	pthread_mutex_lock(&c->lock);
	done = c->done;
	pthread_mutex_unlock(&c->lock);
	return done;
}

void
call_fix_answer_locked(struct call *c)
{
	struct future_snapshot snaps[CONFIG_ROUTE_JOBS_MAX];
	unsigned status;
	size_t i, len;
	char *body;

	if (c->answer != NULL)
		return;
	for (i = 0; i < c->njobs; i++)
		snaps[i] = future_snapshot(c->jobs[i]->future);
	body = api_answer_render(c, snaps, c->expired, c->winner, &status,
				 &len);
	if (body == NULL)
		body = http_answer_fallback(&status, &len);
	if (body == NULL)
		return;
	c->status = status;
	c->answer = body;
	c->answer_len = len;
}

bool
call_status(struct call *c, unsigned *status)
{
	pthread_mutex_lock(&c->lock);
	if (!c->done) {
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	call_fix_answer_locked(c);
	*status = c->status ? c->status : 500;
	pthread_mutex_unlock(&c->lock);
	return true;
}

bool
call_answer(struct call *c, unsigned *status, char **body, size_t *len)
{
	pthread_mutex_lock(&c->lock);
	if (!c->done) {
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	call_fix_answer_locked(c);
	*status = c->status ? c->status : 500;
	*len = c->answer_len;
	*body = NULL;
	if (c->answer != NULL && (*body = malloc(c->answer_len + 1)) != NULL)
		memcpy(*body, c->answer, c->answer_len + 1);
	pthread_mutex_unlock(&c->lock);
	return true;
}

/*
 * Adds "Link: </runs/ID>; rel="monitor"": where the run can be read.  By
 * hand, as the id is: it goes on every answer.
 */
void
call_add_link(struct server_request *req, const struct call *c)
{
	static const char head[] = "</runs/", tail[] = ">; rel=\"monitor\"";
	char link[sizeof(head) + CALL_ID_MAX + sizeof(tail)];
	size_t n = strlen(c->id);

	memcpy(link, head, sizeof(head) - 1);
	memcpy(link + sizeof(head) - 1, c->id, n);
	memcpy(link + sizeof(head) - 1 + n, tail, sizeof(tail));
	server_add_header(req, "Link", link);
}

/* {"id", "href", "state", "jobs": [links]}: where a run can be read. */
json_t *
api_call_pointer(const struct call *c, const char *state)
{
	char href[CALL_ID_MAX + 8];
	json_t *jobs = json_array(), *v;
	size_t i, n;

	/* Under the lock: a run that is starting fills its jobs in. */
	pthread_mutex_lock((pthread_mutex_t *)&c->lock);
	n = c->njobs;
	pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
	for (i = 0; i < n; i++)
		jobs = api_array_append(jobs, api_job_link(c->jobs[i]));
	snprintf(href, sizeof(href), "/runs/%s", c->id);
	v = api_object_set(json_object(), "id", json_string(c->id));
	v = api_object_set(v, "href", json_string(href));
	v = api_object_set(v, "state", json_string(state));
	return api_object_set(v, "jobs", jobs);
}
