/*
 * pg.h - the PostgreSQL backend's private state, shared by its files:
 * pg_conn.c (connections, the pool, bounded queries), postgresql.c (the
 * schema), pg_batch.c (the writer's batches), pg_records.c (reads,
 * expiry), pg_row.c (rows into records), pg_queue.c (the
 * shared queue) and pg_listen.c (LISTEN/NOTIFY).  Private to src/store/.
 *
 * Connections: one for the writer thread (write_batch, never shared: no
 * lock), a pool of PG_POOL_SIZE for every other call from any thread, and
 * one on the listening thread of the backend's own.  A query never blocks
 * past its deadline: pg_exec() sends it and polls the socket, and a
 * connection that timed out or failed is dropped (PQfinish) and made
 * again by the next call that needs it.
 *
 * Locks (leaves both, never held across a libpq call or a callback):
 *   pool_lock   the slots' busy flags (a slot's connection belongs to the
 *               thread that took the slot until it gives it back)
 *   events_lock the event handler and its argument
 */
#ifndef TASKPOOLD_STORE_PG_H
#define TASKPOOLD_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#define PG_POOL_SIZE 4
#define PG_SCHEMA_VERSION 1
/* The advisory lock key of the schema's creation and migration. */
#define PG_SCHEMA_LOCK INT64_C(0x7461736b706f6f6c)	/* "taskpool" */
/* A value read back is refused past this (untrusted database). */
#define PG_VALUE_MAX (64u << 20)
#define PG_INSTANCE_MAX 256

struct pg_slot {
	PGconn *conn;		/* NULL: to be made on the next take */
	bool busy;
};

struct pg {
	char *url;		/* as given: may hold a password, never logged */
	char where[256];	/* "host/dbname", what the log may say */
	char instance[PG_INSTANCE_MAX];
	int64_t lease_ns;
	unsigned max_attempts;

	PGconn *writer;		/* the writer thread's own */
	/* pg_warn()'s last line (monotonic ns), and those it held back. */
	_Atomic int64_t warned_ns;
	_Atomic uint64_t unwarned;
	/* When a claim last retired lapsed rows (monotonic ns). */
	_Atomic int64_t retired_ns;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_free;	/* CLOCK_MONOTONIC */
	struct pg_slot slots[PG_POOL_SIZE];

	pthread_mutex_t events_lock;
	void (*events_fn)(enum store_event, const char *, void *);
	void *events_arg;
	bool events_missed;	/* one came while no handler was set */

	pthread_t listener;
	bool listener_started;
	int stop_fd;		/* eventfd: the listener is to stop */
	int wake_fd;		/* eventfd: a handler came; tell it again */
};

/* pg_conn.c */

/* A new connection with the session settings, or NULL (logged). */
PGconn *pg_connect(struct pg *pg);
/* Whether an idle connection is still good (reads what is pending). */
bool pg_alive(PGconn *conn);
/*
 * Takes a pool slot (waiting at most until deadline, CLOCK_MONOTONIC ns)
 * with a live connection.  Returns the slot, or NULL with errno
 * ETIMEDOUT (no slot free in time) or EIO (could not connect).
 */
struct pg_slot *pg_take(struct pg *pg, int64_t deadline);
/* Gives a slot back; broken: its connection is dropped first. */
void pg_give(struct pg *pg, struct pg_slot *slot, bool broken);
/*
 * Runs one statement with text parameters (NULL: SQL NULL) and waits for
 * its result until deadline.  Returns the result (PQclear it) when its
 * status is want, or NULL with errno ETIMEDOUT, EIO, or EINVAL (the
 * values' fault: not UTF-8, a unique key taken); *broken is set when
 * the connection must be dropped (timeout, connection failure).
 */
PGresult *pg_exec(struct pg *pg, PGconn *conn, const char *sql, int n,
		  const char *const *values, ExecStatusType want,
		  int64_t deadline, bool *broken);
/*
 * A warning in the log, at most one a second (a count of the rest).
 * Leaves errno as it found it: callers set it, warn, then return.
 */
void pg_warn(struct pg *pg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A libpq message on one line, into buf: returns buf. */
const char *pg_message(const char *msg, char *buf, size_t size);
/*
 * Waits until conn has a whole result to give (PQgetResult() would not
 * block), or deadline.  0, or -1 with errno ETIMEDOUT or EIO.
 */
int pg_wait(PGconn *conn, int64_t deadline);
/* CLOCK_MONOTONIC ns from now to STORE_TIMEOUT_NS later. */
int64_t pg_deadline(void);
/* The realtime clock in ns, as a decimal string into buf (>= 24 bytes). */
void pg_now_text(char *buf, size_t size);

/* pg_row.c */

/* The columns pg_row_job() reads, in its order, for a SELECT list. */
#define PG_JOB_COLUMNS \
	"id, job, state, result, result_json, truncated, error, params, " \
	"joined, created, started, finished, attempt, seq"
/* Row r of res into out (cleared first).  -1 (EIO): a value is invalid. */
int pg_row_job(const PGresult *res, int r, struct store_job *out);
#define PG_RUN_COLUMNS \
	"id, route, wait, done, status, answer, jobs, idempotency_key, " \
	"fingerprint, created"
int pg_row_run(const PGresult *res, int r, struct store_run *out);
/* The jobs of a run as a JSON array text (new), or NULL (ENOMEM). */
char *pg_jobs_json(const struct store_run *rec);

/* postgresql.c */
int pg_schema(struct pg *pg, PGconn *conn, char *err, size_t errsize);

/* pg_batch.c: the writer's */
int pg_write_batch(void *b, const struct store_change *c, size_t n);

/* pg_records.c: the reads of records (backend.h) */
int pg_job_get(void *b, const char *id, struct store_job *out);
int pg_run_get(void *b, const char *id, struct store_run *out);
int pg_job_list(void *b, const struct store_filter *f, uint64_t before,
		size_t limit, struct store_job *out, uint64_t *next);
int pg_expire(void *b, int64_t before_ns);

/* pg_queue.c */
int pg_enqueue(void *b, const struct store_job *rec);
int pg_claim(void *b, size_t max, struct store_job *out);
int pg_renew(void *b, const char (*ids)[STORE_ID_MAX], size_t n);
int pg_finish(void *b, const struct store_job *rec);
int pg_cancel(void *b, const char *id);

/* pg_listen.c */
int pg_listen_start(struct pg *pg);
void pg_listen_stop(struct pg *pg);
void pg_set_events(void *b,
		   void (*fn)(enum store_event, const char *, void *),
		   void *arg);

#endif
