/*
 * store.h - durable records of jobs and runs, behind the in-memory
 * registry (registry.h) and runs table (api_run_table.h), which stay the
 * hot path.
 *
 * Backends ([store] backend): `memory` keeps nothing (every lookup misses,
 * as before the store existed); `sqlite` keeps the records of one host in
 * a file (WAL) across restarts; `postgresql` shares them between every
 * instance on one database, and adds a shared queue for work that no
 * client waits for.
 *
 * Writes are behind: store_job_changed() and store_run_changed() copy the
 * record onto a list and return at once; one writer thread commits the
 * list in batches (group commit: every STORE_BATCH_NS or STORE_BATCH_MAX
 * changes, whichever comes first), so a request never waits on a disk or
 * a database to be answered.  Reads (store_job_get(), store_job_list(),
 * store_run_get()) go to the backend and block their caller, bounded by
 * STORE_TIMEOUT_NS: they serve ids that the memory no longer (or never)
 * held.  A read sees every change made before store_sync() returned.
 *
 * The calls that requests make (reads, store_enqueue(), store_cancel())
 * share a breaker: once one timed out, they fail at once (EIO) for
 * STORE_BREAKER_NS, then one of them tries the backend again while the
 * others go on failing at once, so that a database that hangs costs an
 * HTTP thread one timeout a second, not one per request.
 *
 * The store is below the registry and the API: it knows records, not job
 * instances, futures or requests.  It knows no config either: the daemon
 * passes it what it needs (struct store_options).
 *
 * Thread safety: every function may be called from any thread at once,
 * except store_open() and store_close().
 */
#ifndef TASKPOOLD_STORE_H
#define TASKPOOLD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BATCH_NS 10000000		/* 10 ms */
#define STORE_BATCH_MAX 1000
#define STORE_TIMEOUT_NS 2000000000	/* a read, a sync, an enqueue */
#define STORE_BREAKER_NS 1000000000	/* fail fast after a timeout */
#define STORE_ID_MAX 128		/* a job's or a run's id, with NUL */
#define STORE_NAME_MAX 65		/* a job's name, with NUL */

enum store_backend {
	STORE_MEMORY,
	STORE_SQLITE,
	STORE_POSTGRESQL,
};

/* The states of a job record: future.h's enum future_state, by value. */
enum store_state {
	STORE_QUEUED,
	STORE_RUNNING,
	STORE_SUCCEEDED,
	STORE_FAILED,
	STORE_CANCELLED,
	STORE_TIMED_OUT,
};

struct store_options {
	enum store_backend backend;
	const char *path;	/* sqlite: the database file */
	const char *url;	/* postgresql: a libpq conninfo or URI */
	const char *instance;	/* this daemon's [server] instance */
	int64_t lease_ns;	/* postgresql: a claim's lease */
	unsigned max_attempts;	/* postgresql: claims of one queued job */
	int64_t retain_ns;	/* finished records are kept this long */
};

/*
 * A job's record: what GET /jobs/{id} shows.  Strings are owned by the
 * record (store_job_clear() frees them); NULL where there is none.
 * Times are CLOCK_REALTIME nanoseconds, 0 for not yet.
 */
struct store_job {
	char id[STORE_ID_MAX];
	char job[STORE_NAME_MAX];
	enum store_state state;
	char *result;		/* as the future holds it */
	bool result_json;	/* result is JSON text (FUTURE_RESULT_JSON) */
	bool truncated;		/* FUTURE_RESULT_TRUNCATED */
	char *error;
	char *params;		/* JSON object text, secrets already "***" */
	char *joined;		/* the id of the twin it joined (coalesce) */
	int64_t created, started, finished;
	unsigned attempt;	/* postgresql queue: claims so far; else 0 */
	/* Set by reads: the position in the store's listing order. */
	uint64_t cursor;
};

/*
 * A run's record: what GET /runs/{id} shows.  answer is the JSON text
 * its client got (or would have), once done.
 */
struct store_run {
	char id[STORE_ID_MAX];
	char *route;		/* the route's label ("GET /tasks") */
	char *wait;		/* run_policy_name() */
	bool done;
	unsigned status;	/* once done */
	char *answer;
	size_t njobs;
	char (*jobs)[STORE_ID_MAX];	/* its jobs' ids, njobs of them */
	char *idempotency_key;	/* NULL: none */
	uint64_t fingerprint;
	int64_t created;
};

/*
 * Opens the backend (creating or migrating its schema, which carries a
 * schema_version) and starts the writer thread.  Records that an earlier
 * life of this instance left queued or running are marked failed with
 * the error "daemon restarted" (postgresql: those it ran itself and that
 * are not in the shared queue; those are claimed again after their
 * lease).  Returns the store, or NULL with a reason in err.
 */
struct store *store_open(const struct store_options *o, char *err,
			 size_t errsize);

/* Which backend s is. */
enum store_backend store_backend(const struct store *s);

/* A new retain (on reload), from the writer's next expiry on. */
void store_set_retain(struct store *s, int64_t retain_ns);

/*
 * Queues a copy of rec for the writer thread: a new record, or a newer
 * state of one written before (the last write of an id wins).  Never
 * blocks on the backend.  Returns 0, or -1 (ENOMEM) when the copy failed:
 * the change is lost (counted, and logged at most once a second).
 */
int store_job_changed(struct store *s, const struct store_job *rec);
int store_run_changed(struct store *s, const struct store_run *rec);

/*
 * Waits until every change queued before the call is committed.  Returns
 * 0, or -1 with errno ETIMEDOUT (STORE_TIMEOUT_NS passed) or EIO (the
 * backend failed: unreachable database, full disk).
 */
int store_sync(struct store *s);

/*
 * The record of one id, into out (then store_job_clear() it).  Returns 0
 * when found, 1 when the store has no such id, -1 when the backend could
 * not answer (errno ETIMEDOUT or EIO: the API answers 503).
 */
int store_job_get(struct store *s, const char *id, struct store_job *out);
int store_run_get(struct store *s, const char *id, struct store_run *out);

/* A listing's filter: as registry_filter, with bits 1u << STORE_*. */
struct store_filter {
	const char *job;	/* NULL: any */
	unsigned states;	/* 0: any */
};

/*
 * Records newest first, those before `before` in the store's order (0:
 * from the newest) that match f, at most limit of them, into out.
 * Returns how many (0 or more), or -1 as store_job_get().  *next is the
 * cursor of the next page (out[n-1].cursor), 0 when there is none.
 */
int store_job_list(struct store *s, const struct store_filter *f,
		   uint64_t before, size_t limit, struct store_job *out,
		   uint64_t *next);

/* Frees what a record owns and zeroes it.  NULL-safe. */
void store_job_clear(struct store_job *rec);
void store_run_clear(struct store_run *rec);

/*
 * The shared queue (postgresql; the others have none: store_has_queue()
 * is false and the calls fail with ENOTSUP).
 *
 * store_enqueue() commits rec (state queued, with its id, job and params)
 * to the queue before it returns: once it returns 0 the job is accepted
 * and will run on some instance, up to max_attempts times.  -1: not
 * queued (errno ETIMEDOUT, EIO: answer 503).
 *
 * store_claim() takes up to max queued jobs (and jobs whose lease
 * lapsed) for this instance, under a lease of lease_ns, attempt + 1 each;
 * a job past max_attempts is marked failed instead.  The caller runs
 * them and calls store_finish() with the attempt it claimed; a late
 * finish of an older attempt is refused (returns 1).  store_renew()
 * extends the leases of the n jobs ids that this instance holds, and no
 * others: a row it claimed but does not run (an earlier life's, a claim
 * it could not start) must lapse, to be claimed again.
 *
 * store_cancel() asks whichever instance holds a job to cancel it (a
 * queued one is cancelled in the store at once).  Returns 0, 1 when the
 * id is unknown or already finished, -1 as above.
 *
 * Events arrive through the handler given to store_set_events(), called
 * on the store's listening thread (it must not block): work was queued
 * (claim now), a job this instance runs is to be cancelled, a job
 * finished on some instance (for a client waiting on it here).
 */
bool store_has_queue(const struct store *s);
int store_enqueue(struct store *s, const struct store_job *rec);
int store_claim(struct store *s, size_t max, struct store_job *out);
int store_renew(struct store *s, const char (*ids)[STORE_ID_MAX], size_t n);
int store_finish(struct store *s, const struct store_job *rec);
int store_cancel(struct store *s, const char *id);

enum store_event {
	STORE_EVENT_QUEUED,
	STORE_EVENT_CANCEL,
	STORE_EVENT_FINISHED,
};
void store_set_events(struct store *s,
		      void (*fn)(enum store_event ev, const char *id,
				 void *arg),
		      void *arg);

/*
 * What the store did, for /metrics: changes committed, batches, changes
 * lost, and whether the backend is reachable now.
 */
struct store_stats {
	uint64_t committed;
	uint64_t batches;
	uint64_t lost;
	uint64_t queued_now;	/* changes waiting for the writer */
	bool available;
};
struct store_stats store_stats(struct store *s);

/*
 * Commits what is queued (within STORE_TIMEOUT_NS), stops the writer
 * thread and closes the backend.  NULL is ok.
 */
void store_close(struct store *s);

#endif
