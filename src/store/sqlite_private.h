/*
 * sqlite_private.h - what sqlite.c (open, schema, the writer, close) and
 * sqlite_read.c (the readers' connections, gets, listing, expiry) share,
 * with sqlite_conn.c's connection helpers below both.
 * Private to those three files.
 *
 * Connections: one for the writer thread (write_batch), opened by open()
 * and used by nothing else after it returns; and a pool of reader
 * connections for every other call, each used by one thread at a time
 * (SQLITE_OPEN_NOMUTEX).  WAL lets the readers run beside the writer,
 * each on the snapshot of its statement.
 *
 * Lock: readers_lock guards the pool's list of idle connections and
 * nothing else.  It is a leaf: nothing is called under it but list
 * operations (a connection is opened and closed outside it).
 */
#ifndef TASKPOOLD_STORE_SQLITE_PRIVATE_H
#define TASKPOOLD_STORE_SQLITE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/backend.h"

#define SQLITE_SCHEMA_VERSION 1
#define SQLITE_READERS_IDLE 8		/* reader connections kept open */
#define SQLITE_BUSY_MS ((int)(STORE_TIMEOUT_NS / 1000000))

/* The listing's four shapes: by job name or not, by states or not. */
enum {
	LIST_BY_JOB = 1,
	LIST_BY_STATES = 2,
	LIST_SHAPES = 4,
};

/* A reader connection and its statements, prepared once. */
struct sqlite_reader {
	sqlite3 *db;
	sqlite3_stmt *job_get;
	sqlite3_stmt *run_get;
	sqlite3_stmt *list[LIST_SHAPES];
	sqlite3_stmt *expire_jobs;
	sqlite3_stmt *expire_runs;
	struct sqlite_reader *next;	/* in the idle list */
};

struct sqlite_backend {
	char *path;
	/*
	 * PATH-lock, flock()ed for the backend's life: one daemon per file.
	 * A second one would take the first's live jobs for a dead life's
	 * and mark them failed ("daemon restarted").  A file of its own,
	 * since closing any descriptor of the database itself would drop
	 * SQLite's POSIX locks on it.
	 */
	int lock_fd;
	/* The writer's connection and statements (writer thread only). */
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *put_job, *put_run;
	/* Idle reader connections, at most SQLITE_READERS_IDLE. */
	pthread_mutex_t readers_lock;
	struct sqlite_reader *idle;
	unsigned nidle;
	/* When a failure was last logged (realtime ns): once a second. */
	_Atomic int64_t logged_ns;
};

/*
 * Opens a connection to b->path with the settings every connection of
 * ours has (busy timeout, synchronous, defensive).  Returns it, or NULL
 * with a reason in err.  The caller sqlite3_close()s it.
 */
sqlite3 *sqlite_connect(const struct sqlite_backend *b, int flags, char *err,
			size_t errsize);

/*
 * A reason in err for a failure of db to open b's file: "PATH: WHAT:
 * why", or that the file is no store of ours.
 */
void sqlite_open_error(const struct sqlite_backend *b, sqlite3 *db,
		       const char *what, char *err, size_t errsize);

/* errno for an SQLite result code: ETIMEDOUT for busy/locked, else EIO. */
int sqlite_errno(int rc);

/*
 * Logs a failure at most once a second: "sqlite: PATH: WHAT: why", with
 * db's reason, or "sqlite: PATH: WHAT" when db is NULL.
 */
void sqlite_log_failure(struct sqlite_backend *b, sqlite3 *db,
			const char *what);

/* Reader pool (sqlite_read.c); closes every idle reader. */
void sqlite_readers_close(struct sqlite_backend *b);

int sqlite_job_get(void *b, const char *id, struct store_job *out);
int sqlite_run_get(void *b, const char *id, struct store_run *out);
int sqlite_job_list(void *b, const struct store_filter *f, uint64_t before,
		    size_t limit, struct store_job *out, uint64_t *next);
int sqlite_expire(void *b, int64_t before_ns);

#endif
