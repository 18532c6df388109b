/*
 * api_runs.c - see api_runs.h.
 *
 * A run's record (GET /runs/{id}):
 *   {"id", "href", "route", "wait", "state", "created",
 *    "jobs": [job records], "status": N | null, "answer": {...} | null}
 * with state "starting", "running" or "done"; status and answer once
 * done, the same answer its client got (or would have).  A listing
 * (GET /runs) shows each run without its jobs' records and answer, newest
 * first, paged as GET /jobs is (api_list.h), with cursors of its own
 * ('r' and the run's sequence number).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_call.h"
#include "api_json.h"
#include "api_list.h"
#include "api_run_table.h"
#include "api_runs.h"
#include "api_stored.h"
#include "daemon.h"

/* The members every view of a run has; njobs and state read once. */
static json_t *
run_summary(struct call *c, size_t *njobs, bool *done)
{
	char href[CALL_ID_MAX + 8];
	const char *state;
	json_t *v;

	pthread_mutex_lock(&c->lock);
	*njobs = c->njobs;
	*done = c->done;
	pthread_mutex_unlock(&c->lock);
	state = *done ? "done" : *njobs == 0 ? "starting" : "running";
	snprintf(href, sizeof(href), "/runs/%s", c->id);
	v = api_object_set(json_object(), "id", json_string(c->id));
	v = api_object_set(v, "href", json_string(href));
	v = api_object_set(v, "route", json_string(c->label));
	v = api_object_set(v, "wait", json_string(run_policy_name(c->wait)));
	v = api_object_set(v, "state", json_string(state));
	return api_object_set(v, "created", api_json_time(c->created_ns));
}

/* The status of a done run, and with_body its answer; or nulls. */
static json_t *
add_answer(json_t *v, struct call *c, bool with_body)
{
	unsigned status;
	json_t *answer = NULL;
	char *body = NULL;
	size_t len;
	bool done;

	done = with_body ? call_answer(c, &status, &body, &len) :
	       call_status(c, &status);
	v = api_object_set(v, "status", done ? json_integer(status) :
			   json_null());
	if (!with_body)
		return v;
	if (body != NULL)
		answer = json_loadb(body, len, 0, NULL);
	free(body);
	return api_object_set(v, "answer", answer != NULL ? answer :
			      json_null());
}

static json_t *
run_record(struct call *c)
{
	json_t *v, *jobs = json_array();
	size_t i, n;
	bool done;

	v = run_summary(c, &n, &done);
	for (i = 0; i < n; i++) {
		json_t *j = NULL;

		/* Given to the shared queue: its record is where it runs. */
		if (c->jobs[i]->enqueued)
			j = api_stored_job_json(c->daemon, c->jobs[i]->id);
		jobs = api_array_append(jobs, j != NULL ? j :
					api_job_record(c->jobs[i]));
	}
	v = api_object_set(v, "jobs", jobs);
	return add_answer(v, c, true);
}

enum server_handled
api_run_resource(struct daemon *d, struct server_request *req,
		 const char *id)
{
	struct call *c;
	enum server_handled handled;

	if (!api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD");
	c = api_run_table_find(d->runs, id);
	if (c == NULL && d->store_durable)	/* gone from memory */
		return api_stored_run(d, req, id);
	if (c == NULL)
		return api_respond_problem(req, 404, "no such run (it may "
					   "have expired)");
	handled = api_respond_json(req, 200, run_record(c));
	call_unref(c);
	return handled;
}

enum server_handled
api_runs_list(struct daemon *d, struct server_request *req)
{
	struct api_list_query q;
	struct call **page;
	json_t *runs, *v;
	uint64_t next;
	size_t n, i, njobs;
	bool done;

	if (!api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD");
	if (api_list_read(req, 'r', "limit, cursor", NULL, NULL, &q) != 0)
		return SERVER_DONE;
	if ((page = calloc(q.limit, sizeof(*page))) == NULL)
		return api_respond_problem(req, 503, "out of memory");
	n = api_run_table_list(d->runs, q.before, q.limit, page, &next);
	runs = json_array();
	for (i = 0; i < n; i++) {
		v = run_summary(page[i], &njobs, &done);
		runs = api_array_append(runs, add_answer(v, page[i], false));
		call_unref(page[i]);
	}
	free(page);
	return api_list_respond(req, "runs", runs, 'r', next);
}
