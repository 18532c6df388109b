/*
 * api_answer.c - see api_answer.h.
 */
#include <stdio.h>

#include "api_answer.h"
#include "api_json.h"
#include "http.h"

/* Which status a run answers with when not every job succeeded. */
static unsigned
failure_status(const struct call *c, const struct future_snapshot *snaps,
	       size_t *bad)
{
	bool failed = false, timed_out = false, cancelled = false;
	size_t i;

	*bad = 0;
	for (i = 0; i < c->njobs; i++) {
		switch (snaps[i].state) {
		case FUTURE_SUCCEEDED:
			continue;
		case FUTURE_FAILED:	failed = true; break;
		case FUTURE_TIMED_OUT:	timed_out = true; break;
		case FUTURE_CANCELLED:	cancelled = true; break;
		default:		break;
		}
		(*bad)++;
	}
	if (failed)
		return 502;
	if (timed_out)
		return 504;
	if (cancelled)
		return 503;
	return 200;
}

/* {"id", "job", "href", "state", and "result" or "error"} of job i. */
static json_t *
job_state(const struct call *c, size_t i, const struct future_snapshot *s)
{
	json_t *j = api_object_set(api_job_link(c->jobs[i]), "state",
				   json_string(future_state_name(s->state)));

	if (s->state == FUTURE_SUCCEEDED)
		return api_object_set(j, "result", api_json_result(s));
	return api_object_set(j, "error", api_json_string_or_null(s->error));
}

/*
 * A problem with every job's state, and with `pending`, the links of
 * those not done, when there are any.
 */
static json_t *
jobs_problem(const struct call *c, const struct future_snapshot *snaps,
	     unsigned status, const char *detail)
{
	json_t *jobs = json_array(), *pending = json_array(), *problem;
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		jobs = api_array_append(jobs, job_state(c, i, &snaps[i]));
		if (!future_state_is_done(snaps[i].state))
			pending = api_array_append(pending,
						   api_job_link(c->jobs[i]));
	}
	problem = api_object_set(http_problem_new(status, detail), "jobs",
				 jobs);
	if (json_array_size(pending) == 0) {
		json_decref(pending);
		return problem;
	}
	return api_object_set(problem, "pending", pending);
}

static json_t *
answer_all(const struct call *c, const struct future_snapshot *snaps,
	   unsigned *status)
{
	json_t *results;
	size_t i, bad;

	*status = failure_status(c, snaps, &bad);
	if (*status != 200)
		return jobs_problem(c, snaps, *status, bad == 1 ?
				    "a job did not succeed" :
				    "jobs did not succeed");
	results = json_array();
	for (i = 0; i < c->njobs; i++)
		results = api_array_append(results,
					   api_json_result(&snaps[i]));
	return api_object_set(json_object(), "results", results);
}

static json_t *
answer_one(const struct call *c, const struct future_snapshot *snaps,
	   size_t winner, unsigned *status)
{
	struct job_instance *w = c->jobs[winner];
	json_t *pending, *answer;
	size_t i, bad;

	if (snaps[winner].state != FUTURE_SUCCEEDED) {
		*status = failure_status(c, snaps, &bad);
		if (*status == 200)
			*status = 502;
		return jobs_problem(c, snaps, *status, "the awaited job did "
				    "not succeed");
	}
	pending = json_array();
	for (i = 0; i < c->njobs; i++)
		if (i != winner)
			pending = api_array_append(pending,
						   api_job_link(c->jobs[i]));
	*status = 200;
	answer = api_object_set(json_object(), "result",
				api_json_result(&snaps[winner]));
	answer = api_object_set(answer, "job", json_string(w->def->name));
	return api_object_set(answer, "pending", pending);
}

static json_t *
answer_accepted(const struct call *c, unsigned *status)
{
	json_t *jobs = json_array();
	size_t i;

	for (i = 0; i < c->njobs; i++)
		jobs = api_array_append(jobs, api_job_link(c->jobs[i]));
	*status = 202;
	return api_object_set(json_object(), "jobs", jobs);
}

json_t *
api_answer_build(const struct call *c, const struct future_snapshot *snaps,
		 bool expired, int winner, unsigned *status)
{
	char detail[128];

	if (expired) {
		*status = 504;
		snprintf(detail, sizeof(detail), "the deadline of %.3f s "
			 "passed; unfinished jobs %s", (double)c->timeout_ns /
			 1e9, c->losers == ROUTE_LOSERS_CANCEL ?
			 "are cancelled" : "go on");
		return jobs_problem(c, snaps, *status, detail);
	}
	switch (c->wait) {
	case RUN_WAIT_ALL:
		return answer_all(c, snaps, status);
	case RUN_WAIT_NONE:
		return answer_accepted(c, status);
	case RUN_WAIT_FIRST:
	case RUN_WAIT_ANY:
		break;
	}
	return answer_one(c, snaps, winner < 0 ? 0 : (size_t)winner, status);
}

json_t *
api_answer_job_line(const struct call *c, size_t index,
		    const struct future_snapshot *s)
{
	json_t *line = api_object_set(json_object(), "index",
				      json_integer((json_int_t)index));
	const struct job_instance *inst = c->jobs[index];

	line = api_object_set(line, "id", json_string(inst->id));
	line = api_object_set(line, "job", json_string(inst->def->name));
	line = api_object_set(line, "state",
			      json_string(future_state_name(s->state)));
	if (s->state == FUTURE_SUCCEEDED)
		return api_object_set(line, "result", api_json_result(s));
	return api_object_set(line, "error",
			      api_json_string_or_null(s->error));
}
