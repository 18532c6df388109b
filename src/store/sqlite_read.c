/*
 * sqlite_read.c - the SQLite backend's reads (job_get, run_get,
 * job_list) and its expiry, callable from any thread at once
 * (sqlite_private.h).
 *
 * Each call borrows a reader connection from the pool, or opens one when
 * none is idle, so that concurrent calls never share a connection (nor
 * wait on one another's statements); a connection goes back to the pool
 * after the call, or is closed when the pool is full or the connection
 * failed (the next call opens a fresh one).
 *
 * Every value read from the file is untrusted: an id longer than
 * STORE_ID_MAX - 1, a name longer than STORE_NAME_MAX - 1, text with a
 * NUL in it, an integer where one is expected that is not one or is out
 * of its range, a run's jobs that are not a JSON array of ids: such a
 * record is refused (a get fails with EIO, a listing skips it).
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/sqlite_private.h"

#define JOB_COLUMNS "cursor, id, job, state, result, result_json," \
	" truncated, error, params, joined, created, started, finished," \
	" attempt"
#define EXPIRE_CHUNK 1000	/* rows deleted per transaction, */
#define EXPIRE_CHUNK_SQL "1000"	/* and in SQL */

static void
reader_close(struct sqlite_reader *r)
{
	int i;

	if (r == NULL)
		return;
	sqlite3_finalize(r->job_get);
	sqlite3_finalize(r->run_get);
	for (i = 0; i < LIST_SHAPES; i++)
		sqlite3_finalize(r->list[i]);
	sqlite3_finalize(r->expire_jobs);
	sqlite3_finalize(r->expire_runs);
	sqlite3_close(r->db);
	free(r);
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				  NULL) == SQLITE_OK ? 0 : -1;
}

/*
 * The listing by states alone: "state IN (...) ORDER BY cursor DESC"
 * would read every record of those states from the index and sort them
 * (all the succeeded ones, for a page of them); a merge of one bounded
 * walk of the index (state, cursor) per state reads at most limit + 1
 * records of each.  Parameters as the other shapes: ?3 + s is state s,
 * or -1.
 */
static void
list_by_states_sql(char *sql, size_t size)
{
	size_t n = 0;
	int s;

	for (s = STORE_QUEUED; s <= STORE_TIMED_OUT; s++)
		n += (size_t)snprintf(sql + n, size - n, "%sSELECT * FROM"
				      " (SELECT " JOB_COLUMNS " FROM jobs"
				      " WHERE state = ?%d AND cursor < ?1"
				      " ORDER BY cursor DESC LIMIT ?9)",
				      s > 0 ? " UNION ALL " : "", 3 + s);
	snprintf(sql + n, size - n, " ORDER BY cursor DESC LIMIT ?9");
}

/* A new reader connection, or NULL with errno set (and logged). */
static struct sqlite_reader *
reader_open(struct sqlite_backend *b)
{
	struct sqlite_reader *r;
	char sql[2048], err[512];
	int i;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		errno = EIO;
		return NULL;
	}
	r->db = sqlite_connect(b, SQLITE_OPEN_READWRITE, err, sizeof(err));
	if (r->db == NULL) {
		sqlite_log_failure(b, NULL, err);
		free(r);
		errno = EIO;
		return NULL;
	}
	if (prepare(r->db, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
		    &r->job_get) == -1 ||
	    prepare(r->db, "SELECT id, route, wait, done, status, answer,"
		    " jobs, idempotency_key, fingerprint, created FROM runs"
		    " WHERE id = ?1", &r->run_get) == -1 ||
	    prepare(r->db, "DELETE FROM jobs WHERE cursor IN (SELECT cursor"
		    " FROM jobs WHERE finished > 0 AND finished < ?1 LIMIT "
		    EXPIRE_CHUNK_SQL ")", &r->expire_jobs) == -1 ||
	    prepare(r->db, "DELETE FROM runs WHERE rowid IN (SELECT rowid"
		    " FROM runs WHERE done != 0 AND created < ?1 LIMIT "
		    EXPIRE_CHUNK_SQL ")",
		    &r->expire_runs) == -1)
		goto fail;
	for (i = 0; i < LIST_SHAPES; i++) {
		if (i == LIST_BY_STATES)
			list_by_states_sql(sql, sizeof(sql));
		else
			snprintf(sql, sizeof(sql), "SELECT " JOB_COLUMNS
				 " FROM jobs WHERE cursor < ?1%s%s"
				 " ORDER BY cursor DESC LIMIT ?9",
				 i & LIST_BY_JOB ? " AND job = ?2" : "",
				 i & LIST_BY_STATES ? " AND state IN"
				 " (?3, ?4, ?5, ?6, ?7, ?8)" : "");
		if (prepare(r->db, sql, &r->list[i]) == -1)
			goto fail;
	}
	return r;
fail:
	sqlite_log_failure(b, r->db, "preparing statements");
	errno = sqlite_errno(sqlite3_errcode(r->db));
	reader_close(r);
	return NULL;
}

static struct sqlite_reader *
reader_get(struct sqlite_backend *b)
{
	struct sqlite_reader *r;

	pthread_mutex_lock(&b->readers_lock);
	if ((r = b->idle) != NULL) {
		b->idle = r->next;
		b->nidle--;
	}
	pthread_mutex_unlock(&b->readers_lock);
	return r != NULL ? r : reader_open(b);
}

/*
 * Gives r back after a call whose last result code was rc: a connection
 * that failed otherwise than by waiting is closed, not kept.
 */
static void
reader_put(struct sqlite_backend *b, struct sqlite_reader *r, int rc)
{
	rc &= 0xff;
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ||
	    rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		pthread_mutex_lock(&b->readers_lock);
		if (b->nidle < SQLITE_READERS_IDLE) {
			r->next = b->idle;
			b->idle = r;
			b->nidle++;
			r = NULL;
		}
		pthread_mutex_unlock(&b->readers_lock);
	}
	reader_close(r);
}

void
sqlite_readers_close(struct sqlite_backend *b)
{
	struct sqlite_reader *r;

	while ((r = b->idle) != NULL) {
		b->idle = r->next;
		reader_close(r);
	}
	b->nidle = 0;
}

/*
 * Column i as a new string into *out (NULL for SQL NULL); with max, at
 * most max - 1 bytes.  Returns 0, or -1 when it is too long, holds a NUL
 * or the copy failed.
 */
static int
col_text(sqlite3_stmt *st, int i, size_t max, char **out)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);

	*out = NULL;
	if (s == NULL)
		return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : -1;
	if ((max != 0 && len >= max) || memchr(s, '\0', len) != NULL)
		return -1;
	if ((*out = malloc(len + 1)) == NULL)
		return -1;
	memcpy(*out, s, len + 1);
	return 0;
}

/* Column i, text (not NULL) of at most size - 1 bytes, into buf. */
static int
col_name(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);

	if (s == NULL || len >= size ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(buf, s, len + 1);
	return 0;
}

/* Column i, an integer in [min, max], into *v. */
static int
col_int(sqlite3_stmt *st, int i, int64_t min, int64_t max, int64_t *v)
{
	if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
		return -1;
	*v = sqlite3_column_int64(st, i);
	return *v >= min && *v <= max ? 0 : -1;
}

static void
job_free(struct store_job *j)
{
	free(j->result);
	free(j->error);
	free(j->params);
	free(j->joined);
	memset(j, 0, sizeof(*j));
}

/* The row of a JOB_COLUMNS select into out: 0, or -1 (out zeroed). */
static int
job_from_row(sqlite3_stmt *st, struct store_job *out)
{
	int64_t cursor, state, json, trunc, created, started, finished,
		attempt;

	memset(out, 0, sizeof(*out));
	if (col_int(st, 0, 1, INT64_MAX, &cursor) == -1 ||
	    col_name(st, 1, out->id, sizeof(out->id)) == -1 ||
	    col_name(st, 2, out->job, sizeof(out->job)) == -1 ||
	    col_int(st, 3, STORE_QUEUED, STORE_TIMED_OUT, &state) == -1 ||
	    col_text(st, 4, 0, &out->result) == -1 ||
	    col_int(st, 5, 0, 1, &json) == -1 ||
	    col_int(st, 6, 0, 1, &trunc) == -1 ||
	    col_text(st, 7, 0, &out->error) == -1 ||
	    col_text(st, 8, 0, &out->params) == -1 ||
	    col_text(st, 9, STORE_ID_MAX, &out->joined) == -1 ||
	    col_int(st, 10, 0, INT64_MAX, &created) == -1 ||
	    col_int(st, 11, 0, INT64_MAX, &started) == -1 ||
	    col_int(st, 12, 0, INT64_MAX, &finished) == -1 ||
	    col_int(st, 13, 0, UINT_MAX, &attempt) == -1) {
		job_free(out);
		return -1;
	}
	out->cursor = (uint64_t)cursor;
	out->state = (enum store_state)state;
	out->result_json = json != 0;
	out->truncated = trunc != 0;
	out->created = created;
	out->started = started;
	out->finished = finished;
	out->attempt = (unsigned)attempt;
	return 0;
}

/* A run's jobs, a JSON array of ids, into out: 0, or -1. */
static int
jobs_from_json(const char *text, size_t len, struct store_run *out)
{
	json_t *a, *v;
	size_t i, n;

	if (text == NULL || (a = json_loadb(text, len, 0, NULL)) == NULL)
		return -1;
	if (!json_is_array(a) || (n = json_array_size(a)) == 0) {
		int ret = json_is_array(a) ? 0 : -1;

		json_decref(a);
		return ret;
	}
	if ((out->jobs = calloc(n, STORE_ID_MAX)) == NULL) {
		json_decref(a);
		return -1;
	}
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		size_t slen = json_string_length(v);

		if (s == NULL || slen == 0 || slen >= STORE_ID_MAX ||
		    memchr(s, '\0', slen) != NULL) {
			json_decref(a);
			return -1;
		}
		memcpy(out->jobs[i], s, slen + 1);
	}
	out->njobs = n;
	json_decref(a);
	return 0;
}

static void
run_free(struct store_run *r)
{
	free(r->route);
	free(r->wait);
	free(r->answer);
	free(r->jobs);
	free(r->idempotency_key);
	memset(r, 0, sizeof(*r));
}

static int
run_from_row(sqlite3_stmt *st, struct store_run *out)
{
	int64_t done, status, fingerprint, created;

	memset(out, 0, sizeof(*out));
	if (col_name(st, 0, out->id, sizeof(out->id)) == -1 ||
	    col_text(st, 1, 0, &out->route) == -1 ||
	    col_text(st, 2, 0, &out->wait) == -1 ||
	    col_int(st, 3, 0, 1, &done) == -1 ||
	    col_int(st, 4, 0, 999, &status) == -1 ||
	    col_text(st, 5, 0, &out->answer) == -1 ||
	    jobs_from_json((const char *)sqlite3_column_text(st, 6),
			   (size_t)sqlite3_column_bytes(st, 6), out) == -1 ||
	    col_text(st, 7, 0, &out->idempotency_key) == -1 ||
	    col_int(st, 8, INT64_MIN, INT64_MAX, &fingerprint) == -1 ||
	    col_int(st, 9, 0, INT64_MAX, &created) == -1) {
		run_free(out);
		return -1;
	}
	out->done = done != 0;
	out->status = (unsigned)status;
	out->fingerprint = (uint64_t)fingerprint;
	out->created = created;
	return 0;
}

/*
 * The one row of st (bound to an id) through decode into out.  Returns
 * 0, 1 when there is none, -1 with errno; *rc is the last result code.
 */
static int
get_one(struct sqlite_backend *b, sqlite3 *db, sqlite3_stmt *st,
	int (*decode)(sqlite3_stmt *, void *), void *out, int *rc)
{
	int ret;

	*rc = sqlite3_step(st);
	if (*rc == SQLITE_ROW) {
		ret = decode(st, out);
		if (ret == -1) {
			sqlite_log_failure(b, NULL, "a damaged record refused");
			errno = EIO;
		}
	} else if (*rc == SQLITE_DONE) {
		ret = 1;
	} else {
		sqlite_log_failure(b, db, "read");
		errno = sqlite_errno(*rc);
		ret = -1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static int
decode_job(sqlite3_stmt *st, void *out)
{
	return job_from_row(st, out);
}

static int
decode_run(sqlite3_stmt *st, void *out)
{
	return run_from_row(st, out);
}

int
sqlite_job_get(void *arg, const char *id, struct store_job *out)
{
	struct sqlite_backend *b = arg;
	struct sqlite_reader *r;
	int ret, rc;

	memset(out, 0, sizeof(*out));
	if (strnlen(id, STORE_ID_MAX) >= STORE_ID_MAX)
		return 1;	/* no record has such an id */
	if ((r = reader_get(b)) == NULL)
		return -1;
	sqlite3_bind_text(r->job_get, 1, id, -1, SQLITE_STATIC);
	ret = get_one(b, r->db, r->job_get, decode_job, out, &rc);
	reader_put(b, r, rc);
	return ret;
}

int
sqlite_run_get(void *arg, const char *id, struct store_run *out)
{
	struct sqlite_backend *b = arg;
	struct sqlite_reader *r;
	int ret, rc;

	memset(out, 0, sizeof(*out));
	if (strnlen(id, STORE_ID_MAX) >= STORE_ID_MAX)
		return 1;
	if ((r = reader_get(b)) == NULL)
		return -1;
	sqlite3_bind_text(r->run_get, 1, id, -1, SQLITE_STATIC);
	ret = get_one(b, r->db, r->run_get, decode_run, out, &rc);
	reader_put(b, r, rc);
	return ret;
}

/*
 * A damaged record is skipped, not returned, and the listing goes on:
 * *next is then the cursor of the last row looked at, so that the next
 * page starts past it even when every row of this one was skipped.
 */
int
sqlite_job_list(void *arg, const struct store_filter *f, uint64_t before,
		size_t limit, struct store_job *out, uint64_t *next)
{
	struct sqlite_backend *b = arg;
	struct sqlite_reader *r;
	sqlite3_stmt *st;
	int64_t last = 0;
	size_t n = 0, stepped = 0;
	bool more = false;
	int shape = 0, s, rc;

	*next = 0;
	if (limit == 0)
		return 0;
	if (f != NULL && f->job != NULL)
		shape |= LIST_BY_JOB;
	if (f != NULL && f->states != 0)
		shape |= LIST_BY_STATES;
	if ((r = reader_get(b)) == NULL)
		return -1;
	st = r->list[shape];
	sqlite3_bind_int64(st, 1, before == 0 || before > INT64_MAX ?
			   INT64_MAX : (int64_t)before);
	if (shape & LIST_BY_JOB)
		sqlite3_bind_text(st, 2, f->job, -1, SQLITE_STATIC);
	/* A state not asked for is bound to -1, which no record has. */
	for (s = STORE_QUEUED; (shape & LIST_BY_STATES) &&
	     s <= STORE_TIMED_OUT; s++)
		sqlite3_bind_int(st, 3 + s, f->states & (1u << s) ? s : -1);
	/* One row more than asked for says whether there is a next page. */
	sqlite3_bind_int64(st, 9, limit >= INT64_MAX ? INT64_MAX :
			   (int64_t)limit + 1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			more = true;
			break;
		}
		stepped++;
		last = sqlite3_column_int64(st, 0);
		if (job_from_row(st, &out[n]) == 0)
			n++;
		else
			sqlite_log_failure(b, NULL, "a damaged record skipped");
	}
	/*
	 * Rows skipped made the page short although the LIMIT was reached:
	 * there may be more past the last row looked at.
	 */
	if (rc == SQLITE_DONE && stepped > limit)
		more = true;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite_log_failure(b, r->db, "list");
		reader_put(b, r, rc);
		while (n > 0)
			job_free(&out[--n]);
		errno = sqlite_errno(rc);
		return -1;
	}
	reader_put(b, r, rc);
	*next = more ? (uint64_t)last : 0;
	return (int)n;
}

int
sqlite_expire(void *arg, int64_t before_ns)
{
	struct sqlite_backend *b = arg;
	struct sqlite_reader *r;
	sqlite3_stmt *st[2];
	int i, rc = SQLITE_OK;

	if ((r = reader_get(b)) == NULL)
		return -1;
	st[0] = r->expire_jobs;
	st[1] = r->expire_runs;
	/* In chunks, each its own transaction: the writer gets in between. */
	for (i = 0; i < 2; i++) {
		do {
			sqlite3_bind_int64(st[i], 1, before_ns);
			rc = sqlite3_step(st[i]);
			sqlite3_reset(st[i]);
		} while (rc == SQLITE_DONE &&
			 sqlite3_changes(r->db) == EXPIRE_CHUNK);
		if (rc != SQLITE_DONE)
			break;
	}
	if (rc != SQLITE_DONE) {
		sqlite_log_failure(b, r->db, "expire");
		reader_put(b, r, rc);
		errno = sqlite_errno(rc);
		return -1;
	}
	reader_put(b, r, rc);
	return 0;
}
