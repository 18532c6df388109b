/*
 * api_answer.c - see api_answer.h.
 */
#include <stdio.h>

#include "api_answer.h"
#include "api_json.h"
#include "http.h"
#include "json_out.h"

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

/*
 * The answers are written straight into one buffer (json_out.h), byte for
 * byte as json_dumps() wrote the trees that built them before, without a
 * tree: building, dumping and freeing one took about 10,400 of the 52,100
 * instructions of a zero-duration request, rendering takes about 750
 * (bench/callgrind, docs/benchmarks.md).
 */

/* ", " between the elements of an array: before every one but the first. */
static void
separate(struct json_out *o, bool *first)
{
	if (!*first)
		json_out_literal(o, ", ");
	*first = false;
}

/* api_job_link() of inst, as an element of an array. */
static void
render_link(struct json_out *o, const struct job_instance *inst, bool *first)
{
	separate(o, first);
	json_out_literal(o, "{");
	api_job_link_members(o, inst);
	json_out_literal(o, "}");
}

/* {"id", "job", "href", "state", and "result" or "error"} of job i. */
static void
render_job_state(struct json_out *o, const struct call *c, size_t i,
		 const struct future_snapshot *s)
{
	json_out_literal(o, "{");
	api_job_link_members(o, c->jobs[i]);
	json_out_literal(o, ", \"state\": ");
	json_out_string(o, future_state_name(s->state));
	if (s->state == FUTURE_SUCCEEDED) {
		json_out_literal(o, ", \"result\": ");
		api_json_result_out(o, s);
	} else {
		json_out_literal(o, ", \"error\": ");
		json_out_string(o, s->error);		/* NULL: null */
	}
	json_out_literal(o, "}");
}

/*
 * A problem with every job's state, and with `pending`, the links of
 * those not done, when there are any.
 */
static void
render_jobs_problem(struct json_out *o, const struct call *c,
		    const struct future_snapshot *snaps, unsigned status,
		    const char *detail)
{
	bool first = true;
	size_t i;

	http_problem_open(o, status, detail);
	json_out_literal(o, ", \"jobs\": [");
	for (i = 0; i < c->njobs; i++) {
		separate(o, &first);
		render_job_state(o, c, i, &snaps[i]);
	}
	json_out_literal(o, "]");
	first = true;
	for (i = 0; i < c->njobs; i++) {
		if (future_state_is_done(snaps[i].state))
			continue;
		if (first)
			json_out_literal(o, ", \"pending\": [");
		render_link(o, c->jobs[i], &first);
	}
	if (!first)
		json_out_literal(o, "]");
	json_out_literal(o, "}");
}

static void
render_all(struct json_out *o, const struct call *c,
	   const struct future_snapshot *snaps, unsigned *status)
{
	bool first = true;
	size_t i, bad;

	*status = failure_status(c, snaps, &bad);
	if (*status != 200) {
		render_jobs_problem(o, c, snaps, *status, bad == 1 ?
				    "a job did not succeed" :
				    "jobs did not succeed");
		return;
	}
	json_out_literal(o, "{\"results\": [");
	for (i = 0; i < c->njobs; i++) {
		separate(o, &first);
		api_json_result_out(o, &snaps[i]);
	}
	json_out_literal(o, "]}");
}

static void
render_one(struct json_out *o, const struct call *c,
	   const struct future_snapshot *snaps, size_t winner,
	   unsigned *status)
{
	bool first = true;
	size_t i, bad;

	if (snaps[winner].state != FUTURE_SUCCEEDED) {
		*status = failure_status(c, snaps, &bad);
		if (*status == 200)
			*status = 502;
		render_jobs_problem(o, c, snaps, *status, "the awaited job "
				    "did not succeed");
		return;
	}
	*status = 200;
	json_out_literal(o, "{\"result\": ");
	api_json_result_out(o, &snaps[winner]);
	json_out_literal(o, ", \"job\": ");
	json_out_string(o, c->jobs[winner]->def->name);
	json_out_literal(o, ", \"pending\": [");
	for (i = 0; i < c->njobs; i++)
		if (i != winner)
			render_link(o, c->jobs[i], &first);
	json_out_literal(o, "]}");
}

static void
render_accepted(struct json_out *o, const struct call *c, unsigned *status)
{
	bool first = true;
	size_t i;

	*status = 202;
	json_out_literal(o, "{\"jobs\": [");
	for (i = 0; i < c->njobs; i++)
		render_link(o, c->jobs[i], &first);
	json_out_literal(o, "]}");
}

char *
api_answer_render(const struct call *c, const struct future_snapshot *snaps,
		  bool expired, int winner, unsigned *status, size_t *len)
{
	struct json_out o;
	char detail[128];

	json_out_init(&o);
	if (expired) {
		*status = 504;
		snprintf(detail, sizeof(detail), "the deadline of %.3f s "
			 "passed; unfinished jobs %s", (double)c->timeout_ns /
			 1e9, c->losers == ROUTE_LOSERS_CANCEL ?
			 "are cancelled" : "go on");
		render_jobs_problem(&o, c, snaps, *status, detail);
		return json_out_finish(&o, len);
	}
	if (c->wait == RUN_WAIT_ALL)
		render_all(&o, c, snaps, status);
	else if (c->wait == RUN_WAIT_NONE)
		render_accepted(&o, c, status);
	else					/* first, any */
		render_one(&o, c, snaps, winner < 0 ? 0 : (size_t)winner,
			   status);
	return json_out_finish(&o, len);
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
