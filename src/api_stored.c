/*
 * api_stored.c - see api_stored.h.
 *
 * What comes from the store is untrusted like any input: a state out of
 * range reads as failed, params that are not a JSON object as {}, and a
 * record that jansson refuses (text that is not UTF-8) answers 500
 * rather than something half-built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_call.h"
#include "api_json.h"
#include "api_list.h"
#include "api_stored.h"
#include "daemon.h"

_Static_assert(CALL_ID_MAX <= STORE_ID_MAX && JOB_ID_MAX <= STORE_ID_MAX,
	       "a run's or a job's id fits a record's");

/* 503: the store did not answer in time, or failed. */
static enum server_handled
unavailable(struct server_request *req)
{
	server_request_set_reason(req, "store_unavailable");
	server_add_header(req, "Retry-After", "1");
	return api_respond_problem(req, 503, "the store of durable records "
				   "did not answer; try again");
}

/* The record of a job from the store, as api_job_record() shows one. */
static json_t *
stored_record(const struct store_job *rec)
{
	struct future_snapshot s;
	json_t *params = NULL, *v;

	memset(&s, 0, sizeof(s));
	s.state = rec->state <= STORE_TIMED_OUT ?
		  (enum future_state)rec->state : FUTURE_FAILED;
	s.result = rec->result;
	s.result_flags = (rec->result_json ? FUTURE_RESULT_JSON : 0) |
			 (rec->truncated ? FUTURE_RESULT_TRUNCATED : 0);
	s.error = rec->error;
	s.times.created = rec->created;
	s.times.started = rec->started;
	s.times.finished = rec->finished;
	if (rec->params != NULL)
		params = json_loads(rec->params, 0, NULL);
	if (!json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	v = api_job_record_build(rec->id, rec->job, &s, rec->joined, params);
	/* A job of the shared queue, once claimed: as api_job_record_of(). */
	if (rec->attempt > 0 && rec->attempt <= INT32_MAX)
		v = api_object_set(v, "attempt", json_integer(rec->attempt));
	return v;
}

/* DELETE of a job that only the store knows. */
static enum server_handled
cancel_stored(struct daemon *d, struct server_request *req,
	      struct store_job *rec)
{
	struct store_job now;
	char detail[96];
	int rc;

	if (rec->state >= STORE_SUCCEEDED) {
		snprintf(detail, sizeof(detail), "the job has already "
			 "finished (%s)", future_state_name(
			 rec->state <= STORE_TIMED_OUT ?
			 (enum future_state)rec->state : FUTURE_FAILED));
		server_request_set_reason(req, "job_finished");
		return api_respond_problem(req, 409, detail);
	}
	if (!store_has_queue(d->store)) {
		/* Not in this daemon's memory, and no other runs jobs. */
		server_request_set_reason(req, "job_not_running");
		return api_respond_problem(req, 409, "the job is not running: "
					   "no instance holds it");
	}
	rc = store_cancel(d->store, rec->id);
	if (rc < 0)
		return unavailable(req);
	if (rc > 0) {
		server_request_set_reason(req, "unknown_job");
		return api_respond_problem(req, 404, "no such job (it may have "
					   "expired from the registry)");
	}
	/* A queued one is cancelled in the store at once: show that. */
	memset(&now, 0, sizeof(now));
	if (store_job_get(d->store, rec->id, &now) == 0) {
		store_job_clear(rec);
		*rec = now;
	}
	return api_respond_json(req, 202, stored_record(rec));
}

enum server_handled
api_stored_job(struct daemon *d, struct server_request *req, const char *id,
	       bool cancel, const struct auth_token *who)
{
	struct store_job rec;
	enum server_handled handled;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = store_job_get(d->store, id, &rec);
	if (rc < 0)
		return unavailable(req);
	if (rc > 0) {
		server_request_set_reason(req, "unknown_job");
		return api_respond_problem(req, 404, "no such job (it may have "
					   "expired from the registry)");
	}
	rec.id[sizeof(rec.id) - 1] = '\0';
	rec.job[sizeof(rec.job) - 1] = '\0';
	if (cancel && api_auth_cancel(req, who, rec.job) != 0)
		handled = SERVER_DONE;	/* answered 403 */
	else if (cancel)
		handled = cancel_stored(d, req, &rec);
	else
		handled = api_respond_json(req, 200, stored_record(&rec));
	store_job_clear(&rec);
	return handled;
}

/*
 * One job of a store's page: the registry's instance if it holds it (its
 * state is fresher than the last committed one), shown only if it still
 * matches the filter; else the store's record.  JSON null: skip it (it
 * moved on from the filter); NULL: out of memory (the answer is a 500).
 */
static json_t *
listed_record(struct daemon *d, const struct store_job *rec,
	      const struct registry_filter *filter)
{
	struct future_snapshot snap;
	struct job_instance *inst;
	json_t *v;

	if ((inst = registry_find(d->registry, rec->id)) == NULL)
		return stored_record(rec);
	snap = future_snapshot(inst->future);
	v = NULL;
	if (filter->states == 0 ||
	    (filter->states & REGISTRY_STATE(snap.state)))
		v = api_job_record_of(inst, &snap);
	else
		v = json_null();	/* moved on: not on this page */
	job_unref(inst);
	return v;
}

enum server_handled
api_stored_job_list(struct daemon *d, struct server_request *req,
		    const struct registry_filter *filter,
		    const struct api_list_query *q)
{
	struct store_filter sf = { filter->job, filter->states };
	struct store_job *out;
	json_t *jobs, *v;
	uint64_t next = 0;
	int i, n;

	/* Every change made before this request is in what it reads. */
	if (store_sync(d->store) != 0)
		return unavailable(req);
	if ((out = calloc(q->limit, sizeof(*out))) == NULL)
		return api_respond_problem(req, 503, "out of memory");
	n = store_job_list(d->store, &sf, q->before, q->limit, out, &next);
	if (n < 0) {
		free(out);
		return unavailable(req);
	}
	jobs = json_array();
	for (i = 0; i < n && (size_t)i < q->limit; i++) {
		out[i].id[sizeof(out[i].id) - 1] = '\0';
		out[i].job[sizeof(out[i].job) - 1] = '\0';
		v = listed_record(d, &out[i], filter);
		if (json_is_null(v))
			json_decref(v);
		else
			jobs = api_array_append(jobs, v);
	}
	for (i = 0; i < n && (size_t)i < q->limit; i++)
		store_job_clear(&out[i]);
	free(out);
	return api_list_respond(req, "jobs", jobs, 'j', next);
}

json_t *
api_stored_job_json(struct daemon *d, const char *id)
{
	struct job_instance *inst;
	struct store_job rec;
	json_t *v = NULL;

	if ((inst = registry_find(d->registry, id)) != NULL) {
		v = api_job_record(inst);
		job_unref(inst);
		return v;
	}
	memset(&rec, 0, sizeof(rec));
	if (d->store_durable && store_job_get(d->store, id, &rec) == 0) {
		rec.id[sizeof(rec.id) - 1] = rec.job[sizeof(rec.job) - 1] = '\0';
		v = stored_record(&rec);
	}
	store_job_clear(&rec);
	return v;
}

/*
 * The records of a stored run's jobs, from memory or the store; a job
 * that neither holds any more is left out.  -1: the store failed.
 */
static int
stored_run_jobs(struct daemon *d, const struct store_run *run, json_t **jobs)
{
	struct job_instance *inst;
	struct store_job rec;
	size_t i;
	int rc;

	*jobs = json_array();
	for (i = 0; i < run->njobs; i++) {
		if ((inst = registry_find(d->registry, run->jobs[i])) != NULL) {
			*jobs = api_array_append(*jobs, api_job_record(inst));
			job_unref(inst);
			continue;
		}
		memset(&rec, 0, sizeof(rec));
		rc = store_job_get(d->store, run->jobs[i], &rec);
		if (rc < 0) {
			json_decref(*jobs);
			*jobs = NULL;
			return -1;
		}
		if (rc == 0)
			*jobs = api_array_append(*jobs, stored_record(&rec));
		store_job_clear(&rec);
	}
	return 0;
}

/* A run's record as api_runs.c's run_record() shows one in memory. */
static json_t *
stored_run_record(const struct store_run *run, json_t *jobs)
{
	char href[STORE_ID_MAX + 8];
	const char *state;
	json_t *v, *answer = NULL;

	state = run->done ? "done" : run->njobs == 0 ? "starting" : "running";
	snprintf(href, sizeof(href), "/runs/%s", run->id);
	v = api_object_set(json_object(), "id", json_string(run->id));
	v = api_object_set(v, "href", json_string(href));
	v = api_object_set(v, "route", api_json_string_or_null(run->route));
	v = api_object_set(v, "wait", api_json_string_or_null(run->wait));
	v = api_object_set(v, "state", json_string(state));
	v = api_object_set(v, "created", api_json_time(run->created));
	v = api_object_set(v, "jobs", jobs);
	v = api_object_set(v, "status", run->done ?
			   json_integer(run->status) : json_null());
	if (run->done && run->answer != NULL)
		answer = json_loads(run->answer, 0, NULL);
	return api_object_set(v, "answer", answer != NULL ? answer :
			      json_null());
}

enum server_handled
api_stored_run(struct daemon *d, struct server_request *req, const char *id)
{
	struct store_run run;
	enum server_handled handled;
	json_t *jobs;
	int rc;

	memset(&run, 0, sizeof(run));
	rc = store_run_get(d->store, id, &run);
	if (rc < 0)
		return unavailable(req);
	if (rc > 0)
		return api_respond_problem(req, 404, "no such run (it may "
					   "have expired)");
	run.id[sizeof(run.id) - 1] = '\0';
	if (stored_run_jobs(d, &run, &jobs) != 0)
		handled = unavailable(req);
	else
		handled = api_respond_json(req, 200,
					   stored_run_record(&run, jobs));
	store_run_clear(&run);
	return handled;
}

/* Queues c's record: done with body (borrowed), or not yet. */
static void
record_run(struct daemon *d, struct call *c, bool done, unsigned status,
	   const char *body)
{
	char ids[CONFIG_ROUTE_JOBS_MAX][STORE_ID_MAX];
	struct store_run run;
	size_t i, n;

	pthread_mutex_lock(&c->lock);
	n = c->njobs;
	pthread_mutex_unlock(&c->lock);
	memset(&run, 0, sizeof(run));
	memcpy(run.id, c->id, sizeof(c->id));	/* CALL_ID_MAX < STORE_ID_MAX */
	run.route = (char *)c->label;
	run.wait = (char *)run_policy_name(c->wait);
	run.done = done;
	run.status = done ? status : 0;
	run.answer = done ? (char *)body : NULL;
	for (i = 0; i < n && i < CONFIG_ROUTE_JOBS_MAX; i++)
		memcpy(ids[i], c->jobs[i]->id, sizeof(c->jobs[i]->id));
	run.njobs = i;
	run.jobs = ids;
	run.idempotency_key = c->idempotency_key;
	run.fingerprint = c->fingerprint;
	run.created = c->created_ns;
	store_run_changed(d->store, &run);	/* a loss is counted there */
}

void
api_stored_run_changed(struct daemon *d, struct call *c)
{
	unsigned status = 0;
	char *body = NULL;
	size_t len;
	bool done;

	done = call_answer(c, &status, &body, &len);
	record_run(d, c, done, status, body);
	free(body);
}

void
api_stored_run_answer(struct daemon *d, struct call *c, unsigned status,
		      const char *body, size_t len)
{
	(void)len;
	record_run(d, c, true, status, body);
}
