/*
 * api_jobs.c - see api_jobs.h.
 */
#include <stdio.h>
#include <string.h>

#include "api_jobs.h"
#include "api_json.h"
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

/* /jobs/{id}: GET or HEAD its record, DELETE to cancel it. */
enum server_handled
api_job_resource(struct daemon *d, struct server_request *req, const char *id)
{
	struct job_instance *inst;
	enum server_handled handled;
	bool cancel = !strcmp(server_request_method(req), "DELETE");

	if (!cancel && !api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD, DELETE");
	inst = registry_find(d->registry, id);
	if (inst == NULL) {
		server_request_set_reason(req, "unknown_job");
		return api_respond_problem(req, 404, "no such job (it may have "
				       "expired from the registry)");
	}
	if (cancel)
		handled = cancel_job(req, inst);
	else
		handled = api_respond_json(req, 200, api_job_record(inst));
	job_unref(inst);
	return handled;
}
