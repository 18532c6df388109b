/*
 * backend.h - what store.c asks of a backend (memory.c, sqlite.c,
 * postgresql.c).  Private to src/store/.
 *
 * store.c owns the writer thread and the batching; a backend owns its
 * connections.  write_batch is called on the writer thread only; every
 * other operation may be called from any thread at once, so a backend
 * keeps a connection for the writer and its own for readers (a small
 * pool, or one per call).  Every call is bounded by STORE_TIMEOUT_NS:
 * libpq's connect_timeout and statement_timeout, SQLite's busy timeout.
 * A backend that lost its database reconnects on its next call.
 */
#ifndef TASKPOOLD_STORE_BACKEND_H
#define TASKPOOLD_STORE_BACKEND_H

#include "store.h"

/* One change for write_batch: a job's record or a run's. */
struct store_change {
	bool is_run;
	union {
		struct store_job job;
		struct store_run run;
	} u;
};

struct store_ops {
	const char *name;	/* "memory", "sqlite", "postgresql" */
	/*
	 * Connects, creates or migrates the schema, marks what an earlier
	 * life left queued or running (store.h, store_open()).  Returns the
	 * backend's state, or NULL with a reason in err.
	 */
	void *(*open)(const struct store_options *o, char *err,
		      size_t errsize);
	/* Commits the n changes in one transaction: 0, or -1 (retried). */
	int (*write_batch)(void *b, const struct store_change *c, size_t n);
	/* As store_job_get(), store_run_get(), store_job_list(). */
	int (*job_get)(void *b, const char *id, struct store_job *out);
	int (*run_get)(void *b, const char *id, struct store_run *out);
	int (*job_list)(void *b, const struct store_filter *f,
			uint64_t before, size_t limit, struct store_job *out,
			uint64_t *next);
	/* Deletes finished records older than before_ns (realtime). */
	int (*expire)(void *b, int64_t before_ns);
	/* The queue; NULL in a backend without one. */
	int (*enqueue)(void *b, const struct store_job *rec);
	int (*claim)(void *b, size_t max, struct store_job *out);
	int (*renew)(void *b, const char (*ids)[STORE_ID_MAX], size_t n);
	int (*finish)(void *b, const struct store_job *rec);
	int (*cancel)(void *b, const char *id);
	void (*set_events)(void *b,
			   void (*fn)(enum store_event, const char *, void *),
			   void *arg);
	void (*close)(void *b);
};

/*
 * store_open() with the operations given: the daemon's store_open() picks
 * them by o->backend; tests pass a backend of their own.
 */
struct store *store_open_with(const struct store_ops *ops,
			      const struct store_options *o, char *err,
			      size_t errsize);

extern const struct store_ops store_memory_ops;
extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_postgresql_ops;

#endif
