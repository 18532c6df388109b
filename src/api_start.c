/*
 * api_start.c - see api_start.h.
 *
 * A request becomes a call: it is listed in the runs table (so that an
 * idempotency key is taken before any job starts), its jobs are created,
 * registered and started, a run watches their futures with the policy,
 * and the deadline is armed on the timer.  The handler returns
 * SERVER_LATER.  Whichever thread meets the policy (or fires the deadline)
 * runs on_run_done(): the call is done, losers are cancelled if asked,
 * and the answer goes to whoever still waits for it:
 *
 *   plain   the connection is woken with server_respond_later() and its
 *           HTTP thread builds the answer (build_answer());
 *   async   the same, unless the async timer handed the client a 202
 *           first: then the answer is only kept, for GET /runs/{id};
 *   stream  the summary ends the stream (api_stream.c).
 *
 * Whoever takes c->req (under c->lock) answers it; the others find NULL.
 * The answer itself is built once (call_fix_answer_locked(), in
 * api_call.c), so that every reader of a run sees the same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_answer.h"
#include "api_call.h"
#include "api_auth.h"
#include "api_idempotency.h"
#include "api_json.h"
#include "api_params.h"
#include "api_queue.h"
#include "api_run_table.h"
#include "api_start.h"
#include "api_stored.h"
#include "api_stream.h"
#include "daemon.h"
#include "http.h"
#include "log.h"

/* ---- a new call ------------------------------------------------------------- */

static void on_deadline(struct timer_entry *e, bool fired);
static void on_async_timer(struct timer_entry *e, bool fired);

/* A new call for spec, with the creator's reference; NULL if no memory. */
static struct call *
call_new(struct daemon *d, struct server_request *req, struct config *cfg,
	 const struct call_spec *spec)
{
	struct call *c = calloc(1, sizeof(*c) +
				spec->njobs * sizeof(c->jobs[0]));
	struct timespec now;

	if (c == NULL)
		return NULL;
	atomic_init(&c->refs, 1);
	atomic_init(&c->answered, false);
	pthread_mutex_init(&c->lock, NULL);
	c->daemon = d;
	c->cfg = config_ref(cfg);
	c->label = spec->label;
	c->wait = spec->wait;
	c->timeout_ns = spec->timeout_ns;
	c->losers = spec->losers;
	c->on_disconnect = spec->on_disconnect;
	c->req = server_request_ref(req);
	c->winner = -1;
	clock_gettime(CLOCK_REALTIME, &now);
	c->created_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	timer_entry_init(&c->deadline, on_deadline);
	timer_entry_init(&c->async_timer, on_async_timer);
	return c;
}

/* Takes the client still to answer, if any (a reference), under lock. */
static struct server_request *
take_req_locked(struct call *c)
{
	struct server_request *req = c->req;

	c->req = NULL;
	return req;
}

/* Cancels every job of c not done yet. */
static void
cancel_jobs(struct call *c)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (!future_state_is_done(future_state(c->jobs[i]->future)))
			job_cancel(c->jobs[i]);
}

/* ---- answers to the client ------------------------------------------------ */

/*
 * The answer, on the request's HTTP thread (server_respond_later()), or
 * where it is dropped.  Releases the builder's reference on c.
 */
static void
build_answer(struct server_request *req, void *arg, bool wanted)
{
	struct call *c = arg;
	unsigned status = 500;
	size_t len = 0;
	char *body = NULL;

	if (wanted) {
		call_answer(c, &status, &body, &len);
		/* Recorded with the answer just taken: no second copy. */
		if (c->daemon->store_durable)
			api_stored_run_answer(c->daemon, c, status, body, len);
		call_add_link(req, c);
		if (status == 503) {
			server_request_set_reason(req, "jobs_cancelled");
			server_add_header(req, "Retry-After", "1");
		}
		if (status == 202) {
			char where[CALL_ID_MAX + 8];

			snprintf(where, sizeof(where), "/runs/%s", c->id);
			server_add_header(req, "Location", where);
		}
		server_respond(req, status, status >= 400 ?
			       HTTP_PROBLEM_JSON : HTTP_JSON, body, len);
	} else if (c->daemon->store_durable) {
		api_stored_run_changed(c->daemon, c);	/* client gone */
	}
	call_unref(c);
}

/* 202 to /runs/{id}: the async fallback, on the request's HTTP thread. */
static void
build_accepted(struct server_request *req, void *arg, bool wanted)
{
	struct call *c = arg;
	char where[CALL_ID_MAX + 8];

	if (wanted) {
		snprintf(where, sizeof(where), "/runs/%s", c->id);
		server_add_header(req, "Location", where);
		server_add_header(req, "Preference-Applied", "respond-async");
		api_respond_json(req, 202, api_call_pointer(c, "running"));
	}
	call_unref(c);
}

/* Hands req (a reference, dropped here) to its HTTP thread to build. */
static void
answer_later(struct call *c, struct server_request *req, server_build_fn fn)
{
	server_respond_later(req, fn, call_ref(c));
	server_request_unref(req);
}

/*
 * The run's callback: the wait is over.  Runs once, on the thread that met
 * the policy (often the timer's, for thousands of requests at once): it
 * settles the call and wakes the connection; the HTTP threads build the
 * answers.
 */
static void
on_run_done(struct run *r, bool expired, int winner, void *arg)
{
	struct call *c = arg;
	struct daemon *d = c->daemon;
	struct server_request *req = NULL;
	bool losers;

	(void)r;
	/*
	 * The run's own bookkeeping first, the answer last: a client that
	 * reads /healthz right after its answer must not find this call's
	 * deadline still armed (test_healthz saw timers = 2 under load).
	 * `answered` goes before the cancel: wait_with_deadline() reads it
	 * after arming.
	 */
	atomic_store(&c->answered, true);
	if (!expired && timer_cancel(d->timer, &c->deadline))
		call_unref(c);		/* the deadline's reference */
	if (c->delivery == CALL_ASYNC &&
	    timer_cancel(d->timer, &c->async_timer))
		call_unref(c);		/* the async timer's reference */
	pthread_mutex_lock(&c->lock);
	c->done = true;
	c->expired = expired;
	c->winner = winner;
	/*
	 * The answer is built here, on the thread that ended the wait (often
	 * the timer's), only where no HTTP thread will build it: the client
	 * has its 202 already, or left; or the deadline's answer must show
	 * what was still going before losers = cancel cancels it below.
	 */
	if (c->req == NULL || (expired && c->losers == ROUTE_LOSERS_CANCEL))
		call_fix_answer_locked(c);
	if (c->delivery == CALL_NDJSON || c->delivery == CALL_SSE)
		api_stream_finish_locked(c);
	else
		req = take_req_locked(c);
	pthread_mutex_unlock(&c->lock);
	api_run_table_done(d->runs, c, timer_now_ns());
	losers = expired || c->wait == RUN_WAIT_FIRST ||
		 c->wait == RUN_WAIT_ANY;
	if (losers && c->losers == ROUTE_LOSERS_CANCEL)
		cancel_jobs(c);
	/*
	 * Done: its record in the store, with its answer.  A client still
	 * waiting gets it built on its HTTP thread (build_answer() records
	 * it there); else it is fixed by now, or here.
	 */
	if (req == NULL && d->store_durable)
		api_stored_run_changed(d, c);
	if (req != NULL)
		answer_later(c, req, build_answer);
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

/* Prefer's wait=N passed with the run still going: 202 to /runs/{id}. */
static void
on_async_timer(struct timer_entry *e, bool fired)
{
	struct call *c = (struct call *)((char *)e -
					 offsetof(struct call, async_timer));
	struct server_request *req = NULL;

	pthread_mutex_lock(&c->lock);
	if (fired && !c->done)
		req = take_req_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (req != NULL)
		answer_later(c, req, build_accepted);
	call_unref(c);
}

/*
 * The server's word on the request's client: with `gone`, it closed the
 * connection while waiting, and the call says whether its jobs go on.
 * Only while the run waits: once it is done (a stream's client leaving
 * before it has read the summary, or a plain client leaving between the
 * run's end and the claim of its answer), what is left are its losers,
 * and `losers` alone says what becomes of them.
 * Runs once, on the request's HTTP thread; drops the reference it held.
 */
static void
on_client_gone(struct server_request *req, void *arg, bool gone)
{
	struct call *c = arg;
	struct server_request *mine = NULL;
	bool done;

	(void)req;
	if (gone) {
		pthread_mutex_lock(&c->lock);
		mine = take_req_locked(c);
		done = c->done;
		pthread_mutex_unlock(&c->lock);
		server_request_unref(mine);
		if (!done && c->on_disconnect == ROUTE_DISCONNECT_CANCEL)
			cancel_jobs(c);
	}
	call_unref(c);
}

/* ---- starting ---------------------------------------------------------------- */

/*
 * Creates, registers and starts one instance per job of spec, each with
 * its params (stolen, all of them whatever happens).  Returns 0, or -1
 * with *why (for the client) and *reason (for the metrics) set, having
 * cancelled what started.
 */
static int
start_jobs(struct call *c, struct call_spec *spec, struct future **futures,
	   const char **why, const char **reason)
{
	struct daemon *d = c->daemon;
	size_t i, n = 0;

	*why = NULL;
	*reason = "out_of_memory";
	for (i = 0; i < spec->njobs && *why == NULL; i++) {
		struct job_instance *inst = job_new(&d->env, c->cfg,
						    spec->jobs[i],
						    spec->params[i]);

		spec->params[i] = NULL;	/* job_new() took it */
		if (inst == NULL || registry_add(d->registry, inst) != 0) {
			/* ESHUTDOWN: the registry is closed for the stop. */
			if (inst == NULL || errno == ENOMEM) {
				*why = "out of memory";
				*reason = "out_of_memory";
			} else if (errno == ESHUTDOWN) {
				*why = "the daemon is stopping";
				*reason = "stopping";
			} else {
				*why = "too many jobs in flight; try again "
				       "later";
				*reason = "registry_full";
			}
			job_unref(inst);
			break;
		}
		c->jobs[n++] = inst;
		futures[i] = inst->future;
		if (job_run(inst) != 0) {
			*why = "no room to run the job now; try again later";
			*reason = "queue_full";
		}
	}
	for (i = 0; i < spec->njobs; i++) {
		json_decref(spec->params[i]);	/* those not handed over */
		spec->params[i] = NULL;
	}
	pthread_mutex_lock(&c->lock);
	c->njobs = n;			/* readers of the table see them */
	pthread_mutex_unlock(&c->lock);
	if (*why == NULL)
		return 0;
	cancel_jobs(c);
	return -1;
}

/*
 * Waits for the run with its deadline.  The call has two more holders
 * from here: the run callback and the deadline (the caller keeps its own
 * reference).  The deadline is armed after run_wait(), since run_expire()
 * needs the callback.  A run that is over by then (zero-length jobs,
 * wait = none) must not leave its call armed for the whole timeout, so
 * `answered` is checked before and after arming: if the callback's own
 * timer_cancel() came before the arming, ours after it wins.
 * timer_cancel() succeeds once, so exactly one side drops the deadline's
 * reference (or on_deadline() does, if it fired).  The async timer is
 * armed the same way.
 */
static void
arm(struct call *c, struct timer_entry *e, int64_t delay_ns)
{
	struct timer *timer = c->daemon->timer;

	call_ref(c);
	if (atomic_load(&c->answered)) {
		call_unref(c);
	} else if (timer_add(timer, e, delay_ns)) {
		/* Only out of memory or stopping: the jobs still end it. */
		log_warn("%s: no timer for this request", c->label);
		call_unref(c);
	} else if (atomic_load(&c->answered) && timer_cancel(timer, e)) {
		call_unref(c);
	}
}

static void
wait_with_deadline(struct call *c)
{
	call_ref(c);			/* the run callback's */
	run_wait(c->run, on_run_done, c);
	arm(c, &c->deadline, c->timeout_ns);
	if (c->delivery == CALL_ASYNC)
		arm(c, &c->async_timer, c->async_wait_ns);
}

/*
 * Prefer's wait=N: delta-seconds (RFC 7240), taken with a fraction too,
 * capped at an hour.  Returns 0 with *ns, or -1 for a malformed value.
 */
static int
parse_wait(const char *s, size_t n, int64_t *ns)
{
	int64_t whole = 0, frac = 0, scale = 1000000000;
	size_t i = 0;

	if (n == 0 || s[0] < '0' || s[0] > '9')
		return -1;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		if ((whole = whole * 10 + (s[i] - '0')) > 3600)
			whole = 3600;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			if (scale > 1)
				frac += (s[i] - '0') * (scale /= 10);
	if (i != n)
		return -1;
	*ns = whole >= 3600 ? 3600 * INT64_C(1000000000) :
	      whole * INT64_C(1000000000) + frac;
	return 0;
}

/*
 * `Prefer: respond-async, wait=N` (RFC 7240): returns true with *wait_ns
 * (0 without a valid wait=) when the client prefers an asynchronous
 * answer.  Other preferences are ignored, as the RFC asks.
 */
static bool
prefers_async(struct server_request *req, int64_t *wait_ns)
{
	const char *p = server_request_header(req, "Prefer");
	bool async = false;

	*wait_ns = 0;
	while (p != NULL && *p != '\0') {
		size_t n;

		p += strspn(p, " \t,;");
		n = strcspn(p, ",;");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 13 && !strncasecmp(p, "respond-async", 13))
			async = true;
		else if (n > 5 && !strncasecmp(p, "wait=", 5) &&
			 parse_wait(p + 5, n - 5, wait_ns) != 0)
			*wait_ns = 0;
		p += strcspn(p, ",;");
	}
	return async;
}

/*
 * Whether a media range's parameters (from just after its type to the
 * next ',') hold q=0, which refuses it (RFC 9110, 12.4.2): "q=0",
 * "q=0.", "q=0.000".
 */
static bool
refused_by_q(const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		p += strspn(p, " \t;");
		if (end - p >= 3 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' &&
		    p[2] == '0') {
			p += 3;
			if (p < end && *p == '.')
				for (p++; p < end && *p == '0'; p++)
					;
			p += strspn(p, " \t");
			return p >= end || *p == ';';
		}
		p += strcspn(p, ";");
		if (p > end)
			break;
	}
	return false;
}

/* Whether Accept header p (NULL: none) takes media type `type`, not q=0. */
static bool
accepts(const char *p, const char *type)
{
	size_t n = strlen(type), range;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		range = strcspn(p, ",");
		if (range >= n && !strncasecmp(p, type, n) &&
		    strchr(",; \t", p[n]) != NULL)
			return !refused_by_q(p + n, range - n);
		p += range;
	}
	return false;
}

/* How req wants its answer. */
static enum call_delivery
delivery_of(struct server_request *req, int64_t *async_wait_ns)
{
	const char *accept = server_request_header(req, "Accept");

	if (accepts(accept, "application/x-ndjson"))
		return CALL_NDJSON;
	if (accepts(accept, "text/event-stream"))
		return CALL_SSE;
	if (prefers_async(req, async_wait_ns))
		return CALL_ASYNC;
	return CALL_PLAIN;
}

static void
drop_params(struct call_spec *spec)
{
	size_t i;

	for (i = 0; i < spec->njobs; i++) {
		json_decref(spec->params[i]);
		spec->params[i] = NULL;
	}
}

/*
 * 503 for a run that could not start; Retry-After says when to retry.
 * reason names it in the metrics' rejections.
 */
static enum server_handled
refuse(struct server_request *req, const char *why, const char *reason)
{
	server_request_set_reason(req, reason);
	server_add_header(req, "Retry-After", "1");
	return api_respond_problem(req, 503, why);
}

enum server_handled
api_start_call(struct daemon *d, struct server_request *req,
	       struct config *cfg, struct call_spec *spec)
{
	struct future *futures[CONFIG_ROUTE_JOBS_MAX];
	struct api_idempotency idem;
	struct call *c, *existing;
	const char *why = NULL, *reason = "out_of_memory";
	int rc;

	if (api_idempotency_read(req, spec->who != NULL ? spec->who->name :
				 NULL, &idem) != 0) {
		drop_params(spec);
		return SERVER_DONE;	/* answered: a bad key */
	}
	if (idem.key != NULL &&
	    (existing = api_run_table_find_key(d->runs, idem.key)) != NULL) {
		drop_params(spec);
		return api_idempotency_repeat(req, existing, &idem);
	}
	if ((c = call_new(d, req, cfg, spec)) == NULL) {
		free(idem.key);
		drop_params(spec);
		return refuse(req, "out of memory", reason);
	}
	c->delivery = delivery_of(req, &c->async_wait_ns);
	c->idempotency_key = idem.key;	/* the call's now */
	c->fingerprint = idem.fingerprint;
	idem.key = NULL;
	/* Listed first: a repeat of its key finds it before a job starts. */
	rc = api_run_table_add(d->runs, c, &existing);
	if (rc != 0) {
		drop_params(spec);
		call_unref(c);
		if (rc > 0)
			return api_idempotency_repeat(req, existing, &idem);
		return refuse(req, "out of memory", reason);
	}
	/* Work no client waits for goes to the shared queue, if any. */
	if (api_queue_fits(d->store, spec, c->delivery))
		rc = api_queue_jobs(d->store, c, spec, futures, &why, &reason);
	else
		rc = start_jobs(c, spec, futures, &why, &reason);
	if (rc != 0 || (c->run = run_new(c->wait, futures, c->njobs)) == NULL) {
		cancel_jobs(c);
		api_run_table_remove(d->runs, c);
		call_unref(c);
		return refuse(req, why != NULL ? why : "out of memory",
			      reason);
	}
	if ((c->delivery == CALL_NDJSON || c->delivery == CALL_SSE) &&
	    api_stream_begin(c, req) != 0) {
		cancel_jobs(c);
		api_run_table_remove(d->runs, c);
		call_unref(c);
		return refuse(req, "out of memory", reason);
	}
	/* Its jobs started: recorded before it can be done. */
	if (d->store_durable)
		api_stored_run_changed(d, c);
	/* Before the wait: the run may be answered within it. */
	server_request_on_gone(req, on_client_gone, call_ref(c));
	wait_with_deadline(c);
	call_unref(c);		/* this function's own */
	return SERVER_LATER;
}

enum server_handled
api_start_route(struct daemon *d, struct server_request *req,
	       struct config *cfg, const struct route *route,
	       const struct auth_token *who)
{
	struct call_spec spec;
	size_t i;

	/* Before anything starts: a refused parameter starts no job. */
	if (api_auth_jobs(req, who, route->jobs, route->njobs) != 0 ||
	    api_params_read(req, route, spec.params) != 0)
		return SERVER_DONE;
	spec.who = who;
	spec.label = route->path;
	spec.wait = route->wait;
	spec.timeout_ns = route->timeout_ns;
	spec.losers = route->losers;
	spec.on_disconnect = route->on_disconnect;
	spec.njobs = route->njobs;
	for (i = 0; i < route->njobs; i++)
		spec.jobs[i] = route->jobs[i];
	return api_start_call(d, req, cfg, &spec);
}
