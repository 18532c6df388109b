/*
 * sqlite.c - the store's SQLite backend: the records of one host in one
 * file, across restarts.  This file opens it (schema, migrations, the
 * recovery of what an earlier life left unfinished), writes batches and
 * closes it; sqlite_read.c serves the reads (sqlite_private.h).
 *
 * The file is in WAL mode with synchronous=NORMAL: a commit is one
 * append to the WAL, with no fsync (one at each checkpoint), so a batch
 * costs little; a power cut may lose the last batches but never corrupts
 * the file, and a crash of the process loses nothing committed.
 *
 * Schema (version 1): jobs, whose INTEGER PRIMARY KEY `cursor` is the
 * listing order (assigned at a record's first insert, kept by every later
 * update of the same id: the upsert updates in place; AUTOINCREMENT so
 * that a cursor is never reused, even after expiry emptied the table);
 * runs, whose `jobs` is a JSON array of ids.  schema_version holds one
 * row.  A newer version is refused: an older daemon must not write a
 * file it does not understand.
 *
 * One daemon per file: PATH-lock is flock()ed while the backend is open,
 * and a second daemon is refused.  Recovery at open: a job still queued
 * or running belonged to a process that died; it becomes failed, "daemon restarted", finished now.  Runs
 * are left as they are: one not done stays done = false (with status 0
 * and no answer), and its client learns its jobs' fate from the jobs'
 * records, which say failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "store/sqlite_private.h"

/* Schema version N is made from N - 1 by migrations[N - 1]. */
static const char *const migrations[SQLITE_SCHEMA_VERSION] = {
	"CREATE TABLE jobs ("
	" cursor INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" job TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" result TEXT,"
	" result_json INTEGER NOT NULL DEFAULT 0,"
	" truncated INTEGER NOT NULL DEFAULT 0,"
	" error TEXT,"
	" params TEXT,"
	" joined TEXT,"
	" created INTEGER NOT NULL DEFAULT 0,"
	" started INTEGER NOT NULL DEFAULT 0,"
	" finished INTEGER NOT NULL DEFAULT 0,"
	" attempt INTEGER NOT NULL DEFAULT 0);"
	/* Listing by name or by state, newest first, from a cursor. */
	"CREATE INDEX jobs_by_job ON jobs (job, cursor);"
	"CREATE INDEX jobs_by_state ON jobs (state, cursor);"
	/* Expiry; queued and running records have finished = 0. */
	"CREATE INDEX jobs_by_finished ON jobs (finished) WHERE finished > 0;"
	"CREATE TABLE runs ("
	" id TEXT NOT NULL UNIQUE,"
	" route TEXT,"
	" wait TEXT,"
	" done INTEGER NOT NULL DEFAULT 0,"
	" status INTEGER NOT NULL DEFAULT 0,"
	" answer TEXT,"
	" jobs TEXT NOT NULL DEFAULT '[]',"
	" idempotency_key TEXT,"
	" fingerprint INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_by_created ON runs (created) WHERE done != 0;",
};

static const char put_job_sql[] =
	"INSERT INTO jobs (id, job, state, result, result_json, truncated,"
	" error, params, joined, created, started, finished, attempt)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
	" ON CONFLICT (id) DO UPDATE SET job = excluded.job,"
	" state = excluded.state, result = excluded.result,"
	" result_json = excluded.result_json,"
	" truncated = excluded.truncated, error = excluded.error,"
	" params = excluded.params, joined = excluded.joined,"
	" created = excluded.created, started = excluded.started,"
	" finished = excluded.finished, attempt = excluded.attempt";

static const char put_run_sql[] =
	"INSERT INTO runs (id, route, wait, done, status, answer, jobs,"
	" idempotency_key, fingerprint, created)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	" ON CONFLICT (id) DO UPDATE SET route = excluded.route,"
	" wait = excluded.wait, done = excluded.done,"
	" status = excluded.status, answer = excluded.answer,"
	" jobs = excluded.jobs, idempotency_key = excluded.idempotency_key,"
	" fingerprint = excluded.fingerprint, created = excluded.created";

/*
 * SQLite would report a file in a missing directory as "unable to open
 * database file"; say which directory is missing instead.
 */
static int
check_directory(const char *path, char *err, size_t errsize)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;
	size_t len;

	if (slash == NULL)
		return 0;	/* the working directory */
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	memcpy(dir, path, len);
	dir[len] = '\0';
	if (stat(dir, &st) == -1) {
		snprintf(err, errsize, "%s: directory %s: %s", path, dir,
			 errno == ENOENT ? "does not exist" : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "%s: %s is not a directory", path, dir);
		return -1;
	}
	return 0;
}

/*
 * The schema's version in the file: 0 for a new file, -1 with a reason
 * in err for one that holds other than one sane row.
 */
static int
schema_version(struct sqlite_backend *b, char *err, size_t errsize)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	int rc, rows = 0;

	if (sqlite3_exec(b->db, "CREATE TABLE IF NOT EXISTS schema_version"
			 " (version INTEGER NOT NULL)", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(b->db, "SELECT version FROM schema_version",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite_open_error(b, b->db, "schema_version", err, errsize);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		rows++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		sqlite_open_error(b, b->db, "schema_version", err, errsize);
		return -1;
	}
	if (rows == 0)
		return 0;
	if (rows > 1 || v < 1) {
		snprintf(err, errsize, "%s: schema_version holds %d rows, the"
			 " first %lld: not a taskpoold store", b->path, rows,
			 (long long)v);
		return -1;
	}
	if (v > SQLITE_SCHEMA_VERSION) {
		snprintf(err, errsize, "%s: schema version %lld is newer than"
			 " this taskpoold's (%d): refusing to use it", b->path,
			 (long long)v, SQLITE_SCHEMA_VERSION);
		return -1;
	}
	return (int)v;
}

/*
 * Brings the schema to our version and fails what an earlier life left
 * queued or running, in one transaction: a second daemon opening the
 * same file waits for it (busy timeout) rather than see half a schema.
 */
static int
prepare_file(struct sqlite_backend *b, char *err, size_t errsize)
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int v;

	if (sqlite3_exec(b->db, "BEGIN IMMEDIATE", NULL, NULL,
			 NULL) != SQLITE_OK) {
		sqlite_open_error(b, b->db, "begin", err, errsize);
		return -1;
	}
	if ((v = schema_version(b, err, errsize)) < 0)
		goto fail;
	for (; v < SQLITE_SCHEMA_VERSION; v++) {
		snprintf(sql, sizeof(sql), "%s schema_version %s",
			 v == 0 ? "INSERT INTO" : "UPDATE",
			 v == 0 ? "VALUES (1)" : "SET version = version + 1");
		if (sqlite3_exec(b->db, migrations[v], NULL, NULL,
				 NULL) != SQLITE_OK ||
		    sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			sqlite_open_error(b, b->db, "creating the schema",
					  err, errsize);
			goto fail;
		}
	}
	if (sqlite3_prepare_v2(b->db, "UPDATE jobs SET state = ?1,"
			       " error = 'daemon restarted', finished = ?2"
			       " WHERE state IN (?3, ?4)", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail_sql;
	sqlite3_bind_int(st, 1, STORE_FAILED);
	sqlite3_bind_int64(st, 2, clock_now_ns(CLOCK_REALTIME));
	sqlite3_bind_int(st, 3, STORE_QUEUED);
	sqlite3_bind_int(st, 4, STORE_RUNNING);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail_sql;
	if (sqlite3_changes(b->db) > 0)
		log_info("sqlite: %s: %d jobs left unfinished by an earlier"
			 " life marked failed", b->path,
			 sqlite3_changes(b->db));
	sqlite3_finalize(st);
	if (sqlite3_exec(b->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite_open_error(b, b->db, "commit", err, errsize);
		goto fail;
	}
	return 0;
fail_sql:
	sqlite_open_error(b, b->db, "recovery", err, errsize);
	sqlite3_finalize(st);
fail:
	sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
prepare_writer(struct sqlite_backend *b, char *err, size_t errsize)
{
	const unsigned persistent = SQLITE_PREPARE_PERSISTENT;

	if (sqlite3_prepare_v3(b->db, "BEGIN IMMEDIATE", -1, persistent,
			       &b->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(b->db, "COMMIT", -1, persistent, &b->commit,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(b->db, "ROLLBACK", -1, persistent,
			       &b->rollback, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(b->db, put_job_sql, -1, persistent,
			       &b->put_job, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(b->db, put_run_sql, -1, persistent,
			       &b->put_run, NULL) != SQLITE_OK) {
		sqlite_open_error(b, b->db, "preparing statements", err,
				  errsize);
		return -1;
	}
	return 0;
}

/*
 * Creates a missing file readable by its owner alone: it holds results
 * and parameters, and SQLite gives its -wal and -shm files the mode of
 * the database file (with its own default, 0644 less the umask).
 */
static int
create_private(const char *path, char *err, size_t errsize)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd == -1) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Takes PATH-lock (created 0600), so that no other daemon uses the file
 * while b does.  Returns 0, or -1 with a reason in err.
 */
static int
lock_file(struct sqlite_backend *b, char *err, size_t errsize)
{
	char lock[4096];

	if ((size_t)snprintf(lock, sizeof(lock), "%s-lock", b->path) >=
	    sizeof(lock)) {
		snprintf(err, errsize, "%s: path too long", b->path);
		return -1;
	}
	b->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (b->lock_fd == -1) {
		snprintf(err, errsize, "%s: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(b->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errsize, "%s: in use by another "
				 "taskpoold (%s is locked)", b->path, lock);
		else
			snprintf(err, errsize, "%s: %s", lock,
				 strerror(errno));
		return -1;
	}
	return 0;
}

static void
sqlite_close(void *arg)
{
	struct sqlite_backend *b = arg;

	if (b == NULL)
		return;
	sqlite_readers_close(b);
	sqlite3_finalize(b->begin);
	sqlite3_finalize(b->commit);
	sqlite3_finalize(b->rollback);
	sqlite3_finalize(b->put_job);
	sqlite3_finalize(b->put_run);
	/* The last connection to close checkpoints the WAL into the file. */
	sqlite3_close(b->db);
	pthread_mutex_destroy(&b->readers_lock);
	if (b->lock_fd != -1)
		close(b->lock_fd);	/* the lock goes with it */
	free(b->path);
	free(b);
}

static void *
sqlite_open(const struct store_options *o, char *err, size_t errsize)
{
	struct sqlite_backend *b;
	sqlite3_stmt *st = NULL;
	const char *mode;

	if (o->path == NULL || o->path[0] == '\0') {
		snprintf(err, errsize, "sqlite: no database path");
		return NULL;
	}
	if (check_directory(o->path, err, errsize) == -1)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->path = strdup(o->path)) == NULL) {
		free(b);
		snprintf(err, errsize, "%s: out of memory", o->path);
		return NULL;
	}
	b->lock_fd = -1;
	pthread_mutex_init(&b->readers_lock, NULL);
	if (lock_file(b, err, errsize) == -1 ||
	    create_private(o->path, err, errsize) == -1)
		goto fail;
	b->db = sqlite_connect(b, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			       err, errsize);
	if (b->db == NULL)
		goto fail;
	if (sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite_open_error(b, b->db, "journal_mode", err, errsize);
		sqlite3_finalize(st);
		goto fail;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(err, errsize, "%s: cannot use WAL (journal mode %s)",
			 b->path, mode != NULL ? mode : "unknown");
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (prepare_file(b, err, errsize) == -1 ||
	    prepare_writer(b, err, errsize) == -1)
		goto fail;
	return b;
fail:
	sqlite_close(b);
	return NULL;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int
put_job(struct sqlite_backend *b, const struct store_job *j)
{
	sqlite3_stmt *st = b->put_job;
	int rc;

	bind_text(st, 1, j->id);
	bind_text(st, 2, j->job);
	sqlite3_bind_int(st, 3, (int)j->state);
	bind_text(st, 4, j->result);
	sqlite3_bind_int(st, 5, j->result_json);
	sqlite3_bind_int(st, 6, j->truncated);
	bind_text(st, 7, j->error);
	bind_text(st, 8, j->params);
	bind_text(st, 9, j->joined);
	sqlite3_bind_int64(st, 10, j->created);
	sqlite3_bind_int64(st, 11, j->started);
	sqlite3_bind_int64(st, 12, j->finished);
	sqlite3_bind_int64(st, 13, j->attempt);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : rc;
}

/*
 * The JSON array of a run's job ids, new (free() it), or NULL when out
 * of memory.  Escaped by hand: an id is bytes, and jansson refuses
 * those that are not UTF-8.
 */
static char *
jobs_json(const struct store_run *r)
{
	size_t i, len = 3, n = 0;
	const char *s;
	char *out;

	for (i = 0; i < r->njobs; i++)
		len += 3 + 6 * strnlen(r->jobs[i], STORE_ID_MAX - 1);
	if ((out = malloc(len)) == NULL)
		return NULL;
	out[n++] = '[';
	for (i = 0; i < r->njobs; i++) {
		if (i > 0)
			out[n++] = ',';
		out[n++] = '"';
		for (s = r->jobs[i]; s < r->jobs[i] + STORE_ID_MAX - 1 && *s;
		     s++) {
			if (*s == '"' || *s == '\\') {
				out[n++] = '\\';
				out[n++] = *s;
			} else if ((unsigned char)*s < 0x20) {
				n += (size_t)snprintf(out + n, 7, "\\u%04x",
						      (unsigned)*s);
			} else {
				out[n++] = *s;
			}
		}
		out[n++] = '"';
	}
	out[n++] = ']';
	out[n] = '\0';
	return out;
}

static int
put_run(struct sqlite_backend *b, const struct store_run *r)
{
	sqlite3_stmt *st = b->put_run;
	char *jobs;
	int rc;

	if ((jobs = jobs_json(r)) == NULL)
		return SQLITE_NOMEM;
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->route);
	bind_text(st, 3, r->wait);
	sqlite3_bind_int(st, 4, r->done);
	sqlite3_bind_int64(st, 5, r->status);
	bind_text(st, 6, r->answer);
	bind_text(st, 7, jobs);
	bind_text(st, 8, r->idempotency_key);
	sqlite3_bind_int64(st, 9, (int64_t)r->fingerprint);
	sqlite3_bind_int64(st, 10, r->created);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(jobs);
	return rc == SQLITE_DONE ? 0 : rc;
}

static int
sqlite_write_batch(void *arg, const struct store_change *c, size_t n)
{
	struct sqlite_backend *b = arg;
	const char *what = "begin";
	size_t i;
	int rc;

	rc = sqlite3_step(b->begin);
	sqlite3_reset(b->begin);
	if (rc != SQLITE_DONE)
		goto fail;
	what = "write";
	for (i = 0; i < n; i++) {
		rc = c[i].is_run ? put_run(b, &c[i].u.run) :
				   put_job(b, &c[i].u.job);
		if (rc != 0)
			goto rollback;
	}
	what = "commit";
	rc = sqlite3_step(b->commit);
	sqlite3_reset(b->commit);
	if (rc == SQLITE_DONE)
		return 0;
rollback:
	sqlite_log_failure(b, b->db, what);
	/* After a failed COMMIT the transaction may still be open. */
	if (!sqlite3_get_autocommit(b->db)) {
		sqlite3_step(b->rollback);
		sqlite3_reset(b->rollback);
	}
	errno = sqlite_errno(rc);
	return -1;
fail:
	sqlite_log_failure(b, b->db, what);
	errno = sqlite_errno(rc);
	return -1;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sqlite_open,
	.write_batch = sqlite_write_batch,
	.job_get = sqlite_job_get,
	.run_get = sqlite_run_get,
	.job_list = sqlite_job_list,
	.expire = sqlite_expire,
	.close = sqlite_close,
};
