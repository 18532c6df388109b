/*
 * api_call.c - see api_call.h.
 *
 * A route request becomes a `call`: one job instance per job of the route,
 * a run over their futures with the route's wait policy, and a deadline on
 * the timer.  The handler returns SERVER_LATER.  Whichever thread meets the
 * policy (or fires the deadline) wakes the connection with
 * server_respond_later(), and the connection's HTTP thread builds the
 * answer.  Jobs the policy did not wait for go on detached, in the
 * registry.
 *
 * A call is freed by whichever of its holders lets go last: the run's
 * callback, the deadline entry, the answer's builder, and api_call_route()
 * while it sets them up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_call.h"
#include "api_json.h"
#include "api_params.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "params.h"
#include "run.h"

struct call {
	atomic_uint refs;
	struct daemon *daemon;		/* borrowed */
	struct server_request *req;	/* a reference, until answered */
	struct config *cfg;		/* a reference: keeps route alive */
	const struct route *route;
	struct run *run;		/* a reference */
	struct timer_entry deadline;
	atomic_bool answered;		/* the run callback has run */
	bool expired;			/* set by the run callback, */
	int winner;			/* before the builder runs */
	size_t njobs;
	struct job_instance *jobs[];	/* references */
};

static void
call_unref(struct call *c)
{
	size_t i;

	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < c->njobs; i++)
		job_unref(c->jobs[i]);
	run_unref(c->run);
	server_request_unref(c->req);
	config_unref(c->cfg);
	free(c);
}

/*
 * One snapshot per job of c into snaps, taken once for one answer, so that
 * its status and its list of jobs agree while jobs still complete.  The
 * call's references keep their results and errors valid.
 */
static void
snapshot_jobs(struct call *c, struct future_snapshot *snaps)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		snaps[i] = future_snapshot(c->jobs[i]->future);
}

/* Which status a gather answers with when not every job succeeded. */
static unsigned
failure_status(struct call *c, const struct future_snapshot *snaps,
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

/* A problem naming each job that did not succeed (or is not done). */
static json_t *
jobs_problem(struct call *c, const struct future_snapshot *snaps,
	     unsigned status, const char *detail)
{
	json_t *jobs = json_array();
	size_t i;

	for (i = 0; i < c->njobs && jobs != NULL; i++) {
		json_t *j;

		if (snaps[i].state == FUTURE_SUCCEEDED)
			continue;
		j = api_object_set(api_job_link(c->jobs[i]), "state",
			json_string(future_state_name(snaps[i].state)));
		j = api_object_set(j, "error", api_json_string_or_null(snaps[i].error));
		jobs = api_array_append(jobs, j);
	}
	return api_object_set(http_problem_new(status, detail), "jobs", jobs);
}

static json_t *
answer_all(struct call *c, const struct future_snapshot *snaps,
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
		results = api_array_append(results, api_json_result(&snaps[i]));
	return api_object_set(json_object(), "results", results);
}

static json_t *
answer_one(struct call *c, const struct future_snapshot *snaps,
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
answer_accepted(struct call *c, unsigned *status)
{
	json_t *jobs = json_array();
	size_t i;

	for (i = 0; i < c->njobs; i++)
		jobs = api_array_append(jobs, api_job_link(c->jobs[i]));
	*status = 202;
	return api_object_set(json_object(), "jobs", jobs);
}

/*
 * Builds the answer from the call's futures.  Runs on the request's MHD
 * thread (server_respond_later()), or where the answer is dropped.
 */
static void
build_answer(struct server_request *req, void *arg, bool wanted)
{
	struct call *c = arg;
	struct future_snapshot snaps[CONFIG_ROUTE_JOBS_MAX];
	unsigned status;
	json_t *body;
	char detail[96];

	if (!wanted) {
		call_unref(c);
		return;
	}
	snapshot_jobs(c, snaps);
	if (c->expired) {
		status = 504;
		snprintf(detail, sizeof(detail), "the route's deadline of "
			 "%.3f s passed; unfinished jobs go on",
			 (double)c->route->timeout_ns / 1e9);
		body = jobs_problem(c, snaps, status, detail);
	} else if (c->route->wait == RUN_WAIT_ALL) {
		body = answer_all(c, snaps, &status);
	} else if (c->route->wait == RUN_WAIT_NONE) {
		body = answer_accepted(c, &status);
	} else {
		body = answer_one(c, snaps, (size_t)c->winner, &status);
	}
	if (status == 503)
		server_add_header(req, "Retry-After", "1");
	api_respond_json(req, status, body);
	call_unref(c);			/* the builder's reference */
}

/*
 * The run's callback: the wait is over.  Runs once, on the thread that met
 * the policy (often the timer's, for thousands of requests at once): it
 * only wakes the connection, and the HTTP threads build the answers.
 */
static void
on_run_done(struct run *r, bool expired, int winner, void *arg)
{
	struct call *c = arg;

	(void)r;
	c->expired = expired;
	c->winner = winner;
	/*
	 * The run's own bookkeeping first, the answer last: a client that
	 * reads /healthz right after its answer must not find this call's
	 * deadline still armed (test_healthz saw timers = 2 under load).
	 * `answered` goes before the cancel: api_call_route() reads it after
	 * arming.
	 */
	atomic_store(&c->answered, true);
	if (!expired && timer_cancel(c->daemon->timer, &c->deadline))
		call_unref(c);		/* the deadline's reference */
	/*
	 * The builder gets a reference of its own: it may run and let go on
	 * the HTTP thread before server_respond_later() returns, and the
	 * call holds the request that the hand-over still touches.
	 */
	atomic_fetch_add(&c->refs, 1);
	server_respond_later(c->req, build_answer, c);
	call_unref(c);			/* the run callback's reference */
}

static void
on_deadline(struct timer_entry *e, bool fired)
{
	struct call *c = (struct call *)((char *)e -
					 offsetof(struct call, deadline));

	(void)fired;	/* at shutdown the runs are answered anyway */
	run_expire(c->run);
	call_unref(c);
}

/* Cancels the first n instances (those not done yet). */
static void
cancel_jobs(struct call *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		job_cancel(c->jobs[i]);
}

/*
 * The server's word on the request's client: with `gone`, it closed the
 * connection while waiting, and the route says whether its jobs go on.
 * Runs once, on the request's HTTP thread; drops the reference it held.
 */
static void
on_client_gone(struct server_request *req, void *arg, bool gone)
{
	struct call *c = arg;

	(void)req;
	if (gone && c->route->on_disconnect == ROUTE_DISCONNECT_CANCEL)
		cancel_jobs(c, c->njobs);
	call_unref(c);
}

/* A new call for route, with the creator's reference; NULL if no memory. */
static struct call *
call_new(struct daemon *d, struct server_request *req, struct config *cfg,
	 const struct route *route)
{
	struct call *c = calloc(1, sizeof(*c) +
				route->njobs * sizeof(c->jobs[0]));

	if (c == NULL)
		return NULL;
	atomic_init(&c->refs, 1);
	c->daemon = d;
	c->cfg = config_ref(cfg);
	c->route = route;
	c->req = server_request_ref(req);
	timer_entry_init(&c->deadline, on_deadline);
	return c;
}

/*
 * Creates, registers and starts one instance per job of the route, each
 * with its params[i] (stolen, all of them whatever happens).  Returns 0,
 * or answers 503 (cancelling what started) and returns -1.
 */
static int
start_jobs(struct call *c, struct server_request *req,
	   struct future **futures, json_t **params)
{
	const struct route *route = c->route;
	struct daemon *d = c->daemon;
	const char *why = NULL;
	size_t i;

	for (i = 0; i < route->njobs && why == NULL; i++) {
		struct job_instance *inst = job_new(&d->env, c->cfg,
						    route->jobs[i], params[i]);

		params[i] = NULL;	/* job_new() took it */
		if (inst == NULL || registry_add(d->registry, inst) != 0) {
			/* ESHUTDOWN: the registry is closed for the stop. */
			why = inst != NULL && errno == ESHUTDOWN ?
			      "the daemon is stopping" :
			      "too many jobs in flight; try again later";
			job_unref(inst);
			break;
		}
		c->jobs[c->njobs++] = inst;
		futures[i] = inst->future;
		if (job_run(inst) != 0)
			why = "no room to run the job now; try again later";
	}
	if (why == NULL)
		return 0;
	for (i = 0; i < route->njobs; i++)
		json_decref(params[i]);	/* those not handed to a job */
	cancel_jobs(c, c->njobs);
	server_add_header(req, "Retry-After", "1");
	api_respond_problem(req, 503, why);
	return -1;
}

/*
 * Waits for the run with the route's deadline.  The call has two more
 * holders from here: the run callback and the deadline (the caller keeps
 * its own reference).  The deadline is armed after run_wait(), since
 * run_expire() needs the callback.  A run that is over by then (zero-
 * length jobs, wait = none) must not leave its call armed for the whole
 * timeout, so `answered` is checked before and after arming: if the
 * callback's own timer_cancel() came before the arming, ours after it
 * wins.  timer_cancel() succeeds once, so exactly one side drops the
 * deadline's reference (or on_deadline() does, if it fired).
 */
static void
wait_with_deadline(struct call *c)
{
	struct daemon *d = c->daemon;

	atomic_fetch_add(&c->refs, 2);
	run_wait(c->run, on_run_done, c);
	if (atomic_load(&c->answered)) {
		call_unref(c);
	} else if (timer_add(d->timer, &c->deadline, c->route->timeout_ns)) {
		/* Only out of memory: the jobs still end the wait. */
		log_warn("route %s: no deadline for this request",
			 c->route->path);
		call_unref(c);
	} else if (atomic_load(&c->answered) &&
		   timer_cancel(d->timer, &c->deadline)) {
		call_unref(c);
	}
}

enum server_handled
api_call_route(struct daemon *d, struct server_request *req,
	    struct config *cfg, const struct route *route)
{
	struct future *futures[CONFIG_ROUTE_JOBS_MAX];
	json_t *params[CONFIG_ROUTE_JOBS_MAX];
	struct call *c;
	size_t i;

	/* Before anything starts: a refused parameter starts no job. */
	if (api_params_read(req, route, params) != 0)
		return SERVER_DONE;
	if ((c = call_new(d, req, cfg, route)) == NULL) {
		for (i = 0; i < route->njobs; i++)
			json_decref(params[i]);
		return api_respond_problem(req, 503, "out of memory");
	}
	if (start_jobs(c, req, futures, params) != 0) {
		call_unref(c);
		return SERVER_DONE;
	}
	c->run = run_new(route->wait, futures, route->njobs);
	if (c->run == NULL) {
		cancel_jobs(c, c->njobs);
		call_unref(c);
		return api_respond_problem(req, 503, "out of memory");
	}
	/* Before the wait: the run may be answered within it. */
	atomic_fetch_add(&c->refs, 1);
	server_request_on_gone(req, on_client_gone, c);
	wait_with_deadline(c);
	call_unref(c);		/* this function's own */
	return SERVER_LATER;
}
