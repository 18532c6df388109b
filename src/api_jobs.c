/*
 * api_jobs.c - see api_jobs.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_jobs.h"
#include "api_json.h"
#include "api_list.h"
#include "api_stored.h"
#include "daemon.h"

/*
 * DELETE /jobs/{id}: asks the job to stop.  202 with its record: a queued
 * or sleeping job is cancelled by the time of the answer; one that stops
 * in its own time (a program given SIGTERM) ends `cancelled` later.  A job
 * that has finished cannot be cancelled: 409.
 */
static enum server_handled
cancel_job(struct server_request *req, struct job_instance *inst)
{
	enum future_state state;
	char detail[96];

	state = future_state(inst->future);
	if (future_state_is_done(state)) {
		snprintf(detail, sizeof(detail), "the job has already "
			 "finished (%s)", future_state_name(state));
		server_request_set_reason(req, "job_finished");
		return api_respond_problem(req, 409, detail);
	}
	job_cancel(inst);
	return api_respond_json(req, 202, api_job_record(inst));
}

/* /jobs/{id}: GET or HEAD its record, DELETE to cancel it, as who may. */
enum server_handled
api_job_resource(struct daemon *d, struct server_request *req, const char *id,
		 const struct auth_token *who)
{
	struct job_instance *inst;
	enum server_handled handled;
	bool cancel = !strcmp(server_request_method(req), "DELETE");

	if (!cancel && !api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD, DELETE");
	inst = registry_find(d->registry, id);
	if (inst == NULL && d->store_durable)	/* gone from memory */
		return api_stored_job(d, req, id, cancel, who);
	if (inst == NULL) {
		server_request_set_reason(req, "unknown_job");
		return api_respond_problem(req, 404, "no such job (it may have "
				       "expired from the registry)");
	}
	if (cancel && api_auth_cancel(req, who, inst->def->name) != 0)
		handled = SERVER_DONE;	/* answered 403 */
	else if (cancel)
		handled = cancel_job(req, inst);
	else
		handled = api_respond_json(req, 200, api_job_record(inst));
	job_unref(inst);
	return handled;
}

/* GET /jobs's own parameters: the filter. */
struct job_list_filter {
	unsigned states;	/* REGISTRY_STATE() bits; 0: any */
	const char *job;	/* borrowed from the query; NULL: any */
};

#define STATE_NAMES "queued, running, succeeded, failed, cancelled, " \
		    "timed_out"

/* One state's bit by its name (len bytes), or 0 if it names none. */
static unsigned
state_bit(const char *name, size_t len)
{
	enum future_state s;
	const char *n;

	for (s = FUTURE_QUEUED; s <= FUTURE_TIMED_OUT; s++) {
		n = future_state_name(s);
		if (strlen(n) == len && !memcmp(n, name, len))
			return REGISTRY_STATE(s);
	}
	return 0;
}

/*
 * `state`: a comma-separated list of states, and the parameter may come
 * again: the states of all of them.  `job`: one job's name, once.
 */
static int
job_list_param(void *arg, const char *key, const char *value, size_t len,
	       char *detail, size_t size)
{
	struct job_list_filter *f = arg;
	const char *end = value + len, *comma;
	char shown[48];
	unsigned bit;

	if (!strcmp(key, "job")) {
		if (f->job != NULL) {
			snprintf(detail, size, "parameter 'job' is given more "
				 "than once");
			return -1;
		}
		if (len == 0 || len > CONFIG_NAME_MAX || strlen(value) != len) {
			snprintf(detail, size, "parameter 'job' must be a job "
				 "name");
			return -1;
		}
		f->job = value;
		return 0;
	}
	if (strcmp(key, "state") != 0)
		return 1;
	for (;;) {
		comma = memchr(value, ',', (size_t)(end - value));
		if (comma == NULL)
			comma = end;
		bit = state_bit(value, (size_t)(comma - value));
		if (bit == 0) {
			api_list_printable(shown, sizeof(shown), value,
					   (size_t)(comma - value));
			snprintf(detail, size, "parameter 'state': '%s' is not "
				 "a state (" STATE_NAMES ")", shown);
			return -1;
		}
		f->states |= bit;
		if (comma == end)
			return 0;
		value = comma + 1;
	}
}

enum server_handled
api_job_list(struct daemon *d, struct server_request *req)
{
	struct job_list_filter f = { 0, NULL };
	struct registry_filter filter;
	struct registry_entry *entries;
	struct api_list_query q;
	json_t *jobs;
	uint64_t next;
	size_t n, i;

	if (api_list_read(req, 'j', "limit, cursor, state, job",
			  job_list_param, &f, &q) != 0)
		return SERVER_DONE;
	filter.job = f.job;
	filter.states = f.states;
	if (d->store_durable)		/* it holds what memory dropped */
		return api_stored_job_list(d, req, &filter, &q);
	entries = malloc(q.limit * sizeof(*entries));
	if (entries == NULL)
		return api_respond_problem(req, 503, "out of memory");
	n = registry_list(d->registry, &filter, q.before, q.limit,
			  api_list_examine(q.limit), entries, &next);
	/* The records, from the snapshots the filter saw, unlocked. */
	jobs = json_array();
	for (i = 0; i < n; i++) {
		jobs = api_array_append(jobs, api_job_record_of(
			entries[i].inst, &entries[i].snap));
		job_unref(entries[i].inst);
	}
	free(entries);
	return api_list_respond(req, "jobs", jobs, 'j', next);
}
