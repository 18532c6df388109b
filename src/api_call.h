/*
 * api_call.h - a run as the API sees it, a `call`: the job instances
 * started for one request (a configured route, or POST /jobs), the policy
 * and deadline that say when it has waited long enough, the answer once it
 * has, and how that answer reaches the client:
 *
 *   plain    the connection waits, suspended, and gets the answer;
 *   async    `Prefer: respond-async, wait=N`: the answer if it comes
 *            within N seconds, else 202 with Location: /runs/{id};
 *   stream   `Accept: application/x-ndjson` or `text/event-stream`: one
 *            line (or event) per job as it finishes, then a summary.
 *
 * Every call is a resource, /runs/{id}, kept in the runs table
 * (api_runs.h) until `retain` after it is done.  Its answer is fixed once:
 * the first to need it after the policy is met (or the deadline passed)
 * builds it from the jobs' states, and later readers (GET /runs/{id}, an
 * idempotent repeat) get the same bytes.
 *
 * This header is the call as an object, which the runs table, the streams
 * and idempotent repeats share; api_start.h starts one and answers its
 * client.
 *
 * Ownership: a call is refcounted; the run callback, each armed timer
 * entry, the answer's builder, the hang-up watch and the runs table hold
 * references.  Locking: `lock` is taken after the runs table's lock is
 * released, never with it; under it only futures' locks and the server's
 * stream lock are taken (see docs/THREADS.md).
 */
#ifndef TASKPOOLD_API_CALL_H
#define TASKPOOLD_API_CALL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "run.h"
#include "server.h"
#include "timer.h"

struct daemon;

enum call_delivery {
	CALL_PLAIN,
	CALL_ASYNC,
	CALL_NDJSON,
	CALL_SSE,
};

#define CALL_ID_MAX JOB_ID_MAX

struct call {
	atomic_uint refs;
	struct daemon *daemon;		/* borrowed */
	struct config *cfg;		/* a reference: keeps jobs, label */
	const char *label;
	enum run_policy wait;
	int64_t timeout_ns;
	enum route_losers losers;
	enum route_on_disconnect on_disconnect;
	enum call_delivery delivery;
	int64_t async_wait_ns;		/* CALL_ASYNC: Prefer's wait=N */
	struct run *run;		/* a reference */
	struct timer_entry deadline;
	struct timer_entry async_timer;
	atomic_bool answered;		/* the run callback has run */
	int64_t created_ns;		/* CLOCK_REALTIME */

	/* Set by the runs table when it takes the call; then constant. */
	char id[CALL_ID_MAX];
	uint64_t seq;
	char *idempotency_key;		/* owned, NULL when none */
	uint64_t fingerprint;		/* of the request, with the key */

	pthread_mutex_t lock;		/* guards what follows */
	struct server_request *req;	/* the client still to answer, a
					 * reference; NULL once handed over */
	bool done;			/* policy met or deadline passed */
	bool expired;			/* the deadline ended it */
	int winner;			/* index that met the policy, or -1 */
	unsigned status;		/* the answer, once built: */
	char *answer;			/* owned, NUL-terminated */
	size_t answer_len;
	unsigned char *streamed;	/* CALL_NDJSON/SSE: a line sent, per
					 * job; owned */
	struct future_waiter *stream_waiters;	/* owned, njobs */
	int64_t done_mono_ns;		/* the runs table's: when done */

	/* The runs table's links, guarded by its lock. */
	struct call *hash_next, *key_next, *prev, *next;
	struct call *done_prev, *done_next;
	bool listed, on_done_list;

	size_t njobs;
	struct job_instance *jobs[];	/* references */
};

struct call *call_ref(struct call *c);
void call_unref(struct call *c);

/*
 * The call's answer, once done: *status and a new copy of the body
 * (the caller frees it; NULL when out of memory).  Returns false, setting
 * nothing, while the call is still waiting.
 */
bool call_answer(struct call *c, unsigned *status, char **body,
		 size_t *len);

/* Adds the Link header that names c's /runs/{id} to req's answer. */
void call_add_link(struct server_request *req, const struct call *c);

/* call_answer()'s status alone, without a copy of the body. */
bool call_status(struct call *c, unsigned *status);

/*
 * {"id", "href", "state", "jobs": [links]}: where the run can be read.
 * state is borrowed.  A new value, or NULL when out of memory.
 */
json_t *api_call_pointer(const struct call *c, const char *state);

/*
 * Builds and keeps the answer, once: under c->lock, with c done.  An
 * answer that cannot be rendered (out of memory, a result that is not
 * UTF-8) leaves the fixed 500 of http_answer_fallback(), or, without
 * memory even for that, no answer (then the next reader tries again).
 */
void call_fix_answer_locked(struct call *c);

/*
 * Whether the call is still starting its jobs: listed in the runs table
 * (its idempotency key taken) with none of them started yet.  It may yet
 * fail to start, and leave the table.
 */
bool call_starting(struct call *c);

/* Whether the call is done (its answer fixed, or about to be). */
bool call_done(struct call *c);

#endif
