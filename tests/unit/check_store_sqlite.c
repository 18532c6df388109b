/*
 * check_store_sqlite.c - the store's SQLite backend through its ops
 * (store_sqlite_ops): records come back as written, every field; the
 * last write of an id wins and keeps its first cursor; the listing's
 * order, pages and filters; expiry; what a crashed life left unfinished
 * is failed at the next open; readers beside the writer; and the files
 * it refuses (missing directory, not a database, newer schema, damaged
 * records).
 *
 * Each test works in a directory of its own from mkdtemp(), removed by
 * the fixture.  The file is also read and written with libsqlite3
 * directly, to check what is on disk and to damage it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/backend.h"

#define OPS store_sqlite_ops
#define NS_PER_S INT64_C(1000000000)

static char dir[64];
static char path[128];

static void
setup(void)
{
	strcpy(dir, "/tmp/check_store_sqlite.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
}

static void
teardown(void)
{
	char p[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static void *
open_at(const char *p)
{
	struct store_options o = { .backend = STORE_SQLITE, .path = p };
	char err[512] = "";
	void *b = OPS.open(&o, err, sizeof(err));

	ck_assert_msg(b != NULL, "open: %s", err);
	return b;
}

/* Opening p fails with a reason that holds want (and the path). */
static void
open_fails(const char *p, const char *want)
{
	struct store_options o = { .backend = STORE_SQLITE, .path = p };
	char err[512] = "";

	ck_assert_ptr_null(OPS.open(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, want) != NULL, "err \"%s\" lacks \"%s\"",
		      err, want);
	ck_assert_msg(strstr(err, p) != NULL, "err \"%s\" lacks the path",
		      err);
}

/* Runs sql on the file with libsqlite3 itself. */
static void
raw_exec(const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
		      "%s: %s", sql, msg);
	sqlite3_close(db);
}

static struct store_job
job_rec(const char *id, const char *name, enum store_state state,
	int64_t finished)
{
	struct store_job j = { .state = state, .created = 1000,
			       .finished = finished };

	snprintf(j.id, sizeof(j.id), "%s", id);
	snprintf(j.job, sizeof(j.job), "%s", name);
	return j;
}

static void
write_jobs(void *b, const struct store_job *jobs, size_t n)
{
	struct store_change *c = calloc(n, sizeof(*c));
	size_t i;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < n; i++)
		c[i].u.job = jobs[i];
	ck_assert_int_eq(OPS.write_batch(b, c, n), 0);
	free(c);
}

static void
write_job(void *b, struct store_job j)
{
	write_jobs(b, &j, 1);
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

static void
str_eq(const char *got, const char *want)
{
	if (want == NULL)
		ck_assert_ptr_null(got);
	else
		ck_assert_str_eq(got, want);
}

/* Every field of got but the cursor is want's. */
static void
job_eq(const struct store_job *got, const struct store_job *want)
{
	ck_assert_str_eq(got->id, want->id);
	ck_assert_str_eq(got->job, want->job);
	ck_assert_int_eq(got->state, want->state);
	str_eq(got->result, want->result);
	ck_assert_int_eq(got->result_json, want->result_json);
	ck_assert_int_eq(got->truncated, want->truncated);
	str_eq(got->error, want->error);
	str_eq(got->params, want->params);
	str_eq(got->joined, want->joined);
	ck_assert_int_eq(got->created, want->created);
	ck_assert_int_eq(got->started, want->started);
	ck_assert_int_eq(got->finished, want->finished);
	ck_assert_uint_eq(got->attempt, want->attempt);
	ck_assert_uint_gt(got->cursor, 0);
}

/* The state of id, or -1 when it is absent. */
static int
state_of(void *b, const char *id)
{
	struct store_job got;
	int rc = OPS.job_get(b, id, &got), state;

	ck_assert_int_ge(rc, 0);
	if (rc == 1)
		return -1;
	state = (int)got.state;
	job_free(&got);
	return state;
}

/* ---- records --------------------------------------------------------------- */

START_TEST(test_open_creates_the_file_in_wal_mode)
{
	void *b = open_at(path);
	sqlite3 *db;
	sqlite3_stmt *st;

	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
					    &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT version FROM"
					    " schema_version", -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	OPS.close(b);
}
END_TEST

START_TEST(test_a_batch_comes_back_as_written_every_field)
{
	void *b = open_at(path);
	struct store_job j[3], got;
	char *big = malloc(1 << 20);
	size_t i;

	ck_assert_ptr_nonnull(big);
	for (i = 0; i < (1 << 20) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[i] = '\0';
	/* Every field set, a JSON result. */
	j[0] = job_rec("full-1", "greet", STORE_SUCCEEDED, 5000);
	j[0].result = "{\"hello\": \"w\\u00f6rld\"}";
	j[0].result_json = true;
	j[0].error = "an error too";
	j[0].params = "{\"name\":\"***\"}";
	j[0].joined = "twin-7";
	j[0].started = 2000;
	j[0].attempt = 3;
	/* Every string NULL, nothing started. */
	j[1] = job_rec("bare-2", "sleep", STORE_QUEUED, 0);
	j[1].created = 0;
	/* A long result, truncated; and one of unicode text. */
	j[2] = job_rec("long-3", "exec", STORE_TIMED_OUT, 9000);
	j[2].result = big;
	j[2].truncated = true;
	j[2].error = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5"
		     "\xe6\x9c\xac \xf0\x9f\x8e\x89";
	write_jobs(b, j, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(OPS.job_get(b, j[i].id, &got), 0);
		job_eq(&got, &j[i]);
		job_free(&got);
	}
	free(big);
	OPS.close(b);
}
END_TEST

START_TEST(test_an_absent_id_is_1_and_a_too_long_id_too)
{
	void *b = open_at(path);
	struct store_job got;
	struct store_run run;
	char id[STORE_ID_MAX + 10];

	write_job(b, job_rec("here", "x", STORE_RUNNING, 0));
	ck_assert_int_eq(OPS.job_get(b, "not-here", &got), 1);
	ck_assert_int_eq(OPS.run_get(b, "not-here", &run), 1);
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ck_assert_int_eq(OPS.job_get(b, id, &got), 1);
	OPS.close(b);
}
END_TEST

START_TEST(test_a_run_comes_back_as_written)
{
	void *b = open_at(path);
	struct store_change c[2] = { { .is_run = true }, { .is_run = true } };
	char jobs[3][STORE_ID_MAX] = { "a-1", "quote\"back\\slash",
				       "ctl\x01\ttab" };
	struct store_run *r = &c[0].u.run, got;
	size_t i;

	snprintf(r->id, sizeof(r->id), "run-1");
	r->route = "GET /tasks";
	r->wait = "all";
	r->done = true;
	r->status = 200;
	r->answer = "{\"results\":[]}";
	r->njobs = 3;
	r->jobs = jobs;
	r->idempotency_key = "key-\xc3\xa9";
	r->fingerprint = UINT64_MAX - 5;
	r->created = 123456789;
	snprintf(c[1].u.run.id, sizeof(c[1].u.run.id), "run-2");
	ck_assert_int_eq(OPS.write_batch(b, c, 2), 0);

	ck_assert_int_eq(OPS.run_get(b, "run-1", &got), 0);
	ck_assert_str_eq(got.id, "run-1");
	ck_assert_str_eq(got.route, r->route);
	ck_assert_str_eq(got.wait, r->wait);
	ck_assert(got.done);
	ck_assert_uint_eq(got.status, 200);
	ck_assert_str_eq(got.answer, r->answer);
	ck_assert_uint_eq(got.njobs, 3);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(got.jobs[i], jobs[i]);
	ck_assert_str_eq(got.idempotency_key, r->idempotency_key);
	ck_assert(got.fingerprint == UINT64_MAX - 5);
	ck_assert_int_eq(got.created, 123456789);
	run_free(&got);

	/* All NULL and none. */
	ck_assert_int_eq(OPS.run_get(b, "run-2", &got), 0);
	ck_assert_ptr_null(got.route);
	ck_assert_ptr_null(got.wait);
	ck_assert(!got.done);
	ck_assert_ptr_null(got.answer);
	ck_assert_uint_eq(got.njobs, 0);
	ck_assert_ptr_null(got.jobs);
	ck_assert_ptr_null(got.idempotency_key);
	run_free(&got);
	OPS.close(b);
}
END_TEST

START_TEST(test_the_last_write_wins_and_keeps_the_first_cursor)
{
	void *b = open_at(path);
	struct store_job j[3], got;
	uint64_t first;

	j[0] = job_rec("a", "x", STORE_QUEUED, 0);
	j[1] = job_rec("b", "x", STORE_QUEUED, 0);
	j[2] = job_rec("a", "x", STORE_RUNNING, 0);
	j[2].started = 1500;
	write_jobs(b, j, 3);	/* a, b, a again: in one batch */
	ck_assert_int_eq(OPS.job_get(b, "a", &got), 0);
	job_eq(&got, &j[2]);
	first = got.cursor;
	job_free(&got);
	ck_assert_int_eq(OPS.job_get(b, "b", &got), 0);
	ck_assert_uint_gt(got.cursor, first);
	job_free(&got);

	j[0] = job_rec("a", "x", STORE_SUCCEEDED, 3000);
	j[0].result = "done";
	write_job(b, j[0]);	/* and in a later batch */
	ck_assert_int_eq(OPS.job_get(b, "a", &got), 0);
	job_eq(&got, &j[0]);
	ck_assert_uint_eq(got.cursor, first);
	job_free(&got);
	OPS.close(b);
}
END_TEST

/* ---- listing and expiry -------------------------------------------------- */

/* Lists into ids (joined by spaces); returns *next. */
static uint64_t
list(void *b, const char *job, unsigned states, uint64_t before,
     size_t limit, char *ids, size_t size)
{
	struct store_filter f = { .job = job, .states = states };
	struct store_job out[16];
	uint64_t next = 12345, prev = UINT64_MAX;
	int n, i;

	ck_assert_uint_le(limit, 16);
	n = OPS.job_list(b, &f, before, limit, out, &next);
	ck_assert_int_ge(n, 0);
	ids[0] = '\0';
	for (i = 0; i < n; i++) {
		ck_assert_uint_lt(out[i].cursor, prev);
		prev = out[i].cursor;
		snprintf(ids + strlen(ids), size - strlen(ids), "%s%s",
			 i > 0 ? " " : "", out[i].id);
		job_free(&out[i]);
	}
	if (n > 0 && next != 0)
		ck_assert_uint_eq(next, prev);
	return next;
}

/* j1 .. j9, newest last: job x for odd, y for even; states vary. */
static void
write_nine(void *b)
{
	static const enum store_state st[9] = {
		STORE_SUCCEEDED, STORE_FAILED, STORE_QUEUED, STORE_RUNNING,
		STORE_CANCELLED, STORE_TIMED_OUT, STORE_SUCCEEDED,
		STORE_FAILED, STORE_RUNNING,
	};
	struct store_job j[9];
	char id[8];
	int i;

	for (i = 0; i < 9; i++) {
		snprintf(id, sizeof(id), "j%d", i + 1);
		j[i] = job_rec(id, i % 2 == 0 ? "x" : "y", st[i],
			       st[i] >= STORE_SUCCEEDED ? 100 * (i + 1) : 0);
	}
	write_jobs(b, j, 9);
}

START_TEST(test_list_is_newest_first_in_pages_by_cursor)
{
	void *b = open_at(path);
	char ids[256];
	uint64_t next;

	write_nine(b);
	next = list(b, NULL, 0, 0, 4, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j8 j7 j6");
	next = list(b, NULL, 0, next, 4, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j5 j4 j3 j2");
	ck_assert_uint_ne(next, 0);
	next = list(b, NULL, 0, next, 4, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j1");
	ck_assert_uint_eq(next, 0);
	/* Exactly a page: no next. */
	next = list(b, NULL, 0, 0, 9, ids, sizeof(ids));
	ck_assert_uint_eq(next, 0);
	next = list(b, NULL, 0, 0, 0, ids, sizeof(ids));
	ck_assert_str_eq(ids, "");
	ck_assert_uint_eq(next, 0);
	OPS.close(b);
}
END_TEST

START_TEST(test_list_filters_by_job_and_by_a_set_of_states)
{
	void *b = open_at(path);
	char ids[256];
	uint64_t next;

	write_nine(b);
	list(b, "x", 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j7 j5 j3 j1");
	list(b, NULL, 1u << STORE_SUCCEEDED, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j7 j1");
	next = list(b, NULL, 1u << STORE_SUCCEEDED | 1u << STORE_FAILED, 0,
		    2, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j8 j7");
	next = list(b, NULL, 1u << STORE_SUCCEEDED | 1u << STORE_FAILED,
		    next, 2, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j2 j1");
	ck_assert_uint_eq(next, 0);
	list(b, NULL, 1u << STORE_QUEUED | 1u << STORE_RUNNING |
	     1u << STORE_TIMED_OUT, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j6 j4 j3");
	next = list(b, "y", 1u << STORE_FAILED | 1u << STORE_RUNNING, 0, 1,
		    ids, sizeof(ids));
	ck_assert_str_eq(ids, "j8");
	next = list(b, "y", 1u << STORE_FAILED | 1u << STORE_RUNNING, next,
		    16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j4 j2");
	ck_assert_uint_eq(next, 0);
	list(b, "z", 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "");
	list(b, NULL, 1u << 20, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "");
	OPS.close(b);
}
END_TEST

START_TEST(test_expire_deletes_only_finished_records_older_than_its_bound)
{
	void *b = open_at(path);
	struct store_change c = { .is_run = true };
	char ids[256];

	write_nine(b);	/* finished at 100 * n, n = 1, 2, 5, 6, 7, 8 */
	snprintf(c.u.run.id, sizeof(c.u.run.id), "old-done");
	c.u.run.done = true;
	c.u.run.created = 10;
	ck_assert_int_eq(OPS.write_batch(b, &c, 1), 0);
	snprintf(c.u.run.id, sizeof(c.u.run.id), "old-waiting");
	c.u.run.done = false;
	ck_assert_int_eq(OPS.write_batch(b, &c, 1), 0);

	ck_assert_int_eq(OPS.expire(b, 600), 0);
	list(b, NULL, 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j8 j7 j6 j4 j3");
	ck_assert_int_eq(OPS.expire(b, INT64_MAX), 0);
	list(b, NULL, 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j4 j3");

	struct store_run got;
	ck_assert_int_eq(OPS.run_get(b, "old-done", &got), 1);
	ck_assert_int_eq(OPS.run_get(b, "old-waiting", &got), 0);
	run_free(&got);
	OPS.close(b);
}
END_TEST

START_TEST(test_expire_goes_through_more_than_one_chunk)
{
	void *b = open_at(path);
	struct store_job *j = calloc(2500, sizeof(*j));
	char id[16], ids[256];
	int i;

	ck_assert_ptr_nonnull(j);
	for (i = 0; i < 2500; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		j[i] = job_rec(id, "x", STORE_SUCCEEDED, 100);
	}
	write_jobs(b, j, 2500);
	write_job(b, job_rec("keep", "x", STORE_SUCCEEDED, 1000));
	ck_assert_int_eq(OPS.expire(b, 500), 0);
	list(b, NULL, 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "keep");
	free(j);
	OPS.close(b);
}
END_TEST

/* ---- restarts and crashes ------------------------------------------------ */

START_TEST(test_reopen_after_a_crash_fails_what_was_unfinished)
{
	struct store_job got;
	int64_t before = 0;
	struct timespec ts;
	pid_t pid;
	int status;
	void *b;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		struct store_options o = { .path = path };
		struct store_job j[3];
		struct store_change c[3] = { { 0 } };
		char err[256];
		void *cb = store_sqlite_ops.open(&o, err, sizeof(err));
		int i;

		if (cb == NULL)
			_exit(2);
		j[0] = job_rec("q", "x", STORE_QUEUED, 0);
		j[1] = job_rec("r", "x", STORE_RUNNING, 0);
		j[1].started = 1500;
		j[2] = job_rec("s", "x", STORE_SUCCEEDED, 2000);
		j[2].result = "kept";
		for (i = 0; i < 3; i++)
			c[i].u.job = j[i];
		_exit(store_sqlite_ops.write_batch(cb, c, 3) == 0 ? 0 : 3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	clock_gettime(CLOCK_REALTIME, &ts);
	before = ts.tv_sec * NS_PER_S + ts.tv_nsec;
	b = open_at(path);
	ck_assert_int_eq(OPS.job_get(b, "q", &got), 0);
	ck_assert_int_eq(got.state, STORE_FAILED);
	ck_assert_str_eq(got.error, "daemon restarted");
	ck_assert_int_ge(got.finished, before);
	job_free(&got);
	ck_assert_int_eq(OPS.job_get(b, "r", &got), 0);
	ck_assert_int_eq(got.state, STORE_FAILED);
	ck_assert_str_eq(got.error, "daemon restarted");
	ck_assert_int_eq(got.started, 1500);
	ck_assert_int_ge(got.finished, before);
	job_free(&got);
	ck_assert_int_eq(OPS.job_get(b, "s", &got), 0);
	ck_assert_int_eq(got.state, STORE_SUCCEEDED);
	ck_assert_str_eq(got.result, "kept");
	ck_assert_ptr_null(got.error);
	ck_assert_int_eq(got.finished, 2000);
	job_free(&got);
	OPS.close(b);
}
END_TEST

START_TEST(test_records_survive_close_and_reopen)
{
	void *b = open_at(path);
	char ids[256];

	write_nine(b);
	OPS.close(b);
	b = open_at(path);
	list(b, NULL, 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j9 j8 j7 j6 j5 j4 j3 j2 j1");
	ck_assert_int_eq(state_of(b, "j9"), STORE_FAILED);	/* was running */
	ck_assert_int_eq(state_of(b, "j7"), STORE_SUCCEEDED);
	OPS.close(b);
}
END_TEST

/* ---- readers beside the writer ------------------------------------------- */

#define READ_BATCHES 100
#define READ_BATCH 100

struct reader_arg {
	void *b;
	atomic_bool *stop;
	atomic_int *started;
	unsigned reads, failures;
};

static void *
reader_main(void *p)
{
	struct reader_arg *a = p;
	struct store_job got, out[10];
	uint64_t next;
	int n;

	atomic_fetch_add(a->started, 1);
	while (!atomic_load(a->stop)) {
		if (OPS.job_get(a->b, "w0-0", &got) == 0)
			job_free(&got);
		else
			a->failures++;
		n = OPS.job_list(a->b, NULL, 0, 10, out, &next);
		if (n < 0)
			a->failures++;
		while (n > 0)
			job_free(&out[--n]);
		a->reads++;
	}
	return NULL;
}

START_TEST(test_readers_on_two_threads_beside_the_writer_never_fail)
{
	void *b = open_at(path);
	static struct store_job j[READ_BATCH];
	struct reader_arg ra[2];
	pthread_t t[2];
	atomic_bool stop = false;
	atomic_int started = 0;
	char id[32];
	int i, k;
	time_t deadline;

	write_job(b, job_rec("w0-0", "x", STORE_SUCCEEDED, 1));
	for (i = 0; i < 2; i++) {
		ra[i] = (struct reader_arg){ .b = b, .stop = &stop,
					     .started = &started };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main,
						&ra[i]), 0);
	}
	deadline = time(NULL) + 10;
	while (atomic_load(&started) < 2 && time(NULL) < deadline)
		sched_yield();
	ck_assert_int_eq(atomic_load(&started), 2);
	for (k = 1; k <= READ_BATCHES; k++) {
		for (i = 0; i < READ_BATCH; i++) {
			snprintf(id, sizeof(id), "w%d-%d", k, i);
			j[i] = job_rec(id, "x", STORE_SUCCEEDED, k);
			j[i].result = "a result of some length, to be read";
		}
		write_jobs(b, j, READ_BATCH);
	}
	atomic_store(&stop, true);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_uint_eq(ra[i].failures, 0);
		ck_assert_uint_gt(ra[i].reads, 0);
	}
	ck_assert_int_eq(state_of(b, "w100-99"), STORE_SUCCEEDED);
	OPS.close(b);
}
END_TEST

/* ---- files it refuses ---------------------------------------------------- */

START_TEST(test_a_path_in_a_missing_directory_is_refused_naming_it)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/nowhere/store.db", dir);
	open_fails(p, "nowhere: does not exist");
	ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

START_TEST(test_a_file_that_is_not_a_database_is_refused)
{
	FILE *f = fopen(path, "w");
	int i;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < 512; i++)
		fputs("this is no database; ", f);
	fclose(f);
	open_fails(path, "not a taskpoold store");
}
END_TEST

START_TEST(test_a_newer_schema_is_refused)
{
	OPS.close(open_at(path));
	raw_exec("UPDATE schema_version SET version = 2");
	open_fails(path, "schema version 2 is newer than this taskpoold's (1)");
	raw_exec("INSERT INTO schema_version VALUES (1)");
	open_fails(path, "not a taskpoold store");
}
END_TEST

START_TEST(test_damaged_records_are_refused_by_get_and_skipped_by_list)
{
	void *b = open_at(path);
	struct store_job got;
	char ids[256], sql[512];
	uint64_t next;

	write_nine(b);
	raw_exec("UPDATE jobs SET state = 9 WHERE id = 'j9';"
		 "UPDATE jobs SET state = 'queued' WHERE id = 'j8';"
		 "UPDATE jobs SET result = 'a' || char(0) || 'b'"
		 " WHERE id = 'j6'");
	snprintf(sql, sizeof(sql), "UPDATE jobs SET job = '%0*d'"
		 " WHERE id = 'j7'", STORE_NAME_MAX, 0);
	raw_exec(sql);
	snprintf(sql, sizeof(sql), "INSERT INTO jobs (id, job, state)"
		 " VALUES ('%0*d', 'x', 2)", STORE_ID_MAX, 0);
	raw_exec(sql);
	raw_exec("INSERT INTO runs (id, jobs) VALUES ('r1', '[\"a\", 7]');"
		 "INSERT INTO runs (id, jobs) VALUES ('r2', '{]')");

	errno = 0;
	ck_assert_int_eq(OPS.job_get(b, "j9", &got), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(OPS.job_get(b, "j7", &got), -1);
	ck_assert_int_eq(OPS.job_get(b, "j6", &got), -1);
	struct store_run run;
	ck_assert_int_eq(OPS.run_get(b, "r1", &run), -1);
	ck_assert_int_eq(OPS.run_get(b, "r2", &run), -1);

	/* Five damaged at the top: a page of 3 is empty, with a next. */
	next = list(b, NULL, 0, 0, 3, ids, sizeof(ids));
	ck_assert_str_eq(ids, "");
	ck_assert_uint_ne(next, 0);
	next = list(b, NULL, 0, next, 3, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j5 j4 j3");
	ck_assert_uint_ne(next, 0);
	list(b, NULL, 0, 0, 16, ids, sizeof(ids));
	ck_assert_str_eq(ids, "j5 j4 j3 j2 j1");
	OPS.close(b);
}
END_TEST

static Suite *
store_sqlite_suite(void)
{
	Suite *s = suite_create("store_sqlite");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_creates_the_file_in_wal_mode);
	tcase_add_test(tc, test_a_batch_comes_back_as_written_every_field);
	tcase_add_test(tc, test_an_absent_id_is_1_and_a_too_long_id_too);
	tcase_add_test(tc, test_a_run_comes_back_as_written);
	tcase_add_test(tc, test_the_last_write_wins_and_keeps_the_first_cursor);
	tcase_add_test(tc, test_list_is_newest_first_in_pages_by_cursor);
	tcase_add_test(tc, test_list_filters_by_job_and_by_a_set_of_states);
	tcase_add_test(tc,
		test_expire_deletes_only_finished_records_older_than_its_bound);
	tcase_add_test(tc, test_expire_goes_through_more_than_one_chunk);
	tcase_add_test(tc, test_reopen_after_a_crash_fails_what_was_unfinished);
	tcase_add_test(tc, test_records_survive_close_and_reopen);
	tcase_add_test(tc,
		test_readers_on_two_threads_beside_the_writer_never_fail);
	tcase_add_test(tc,
		test_a_path_in_a_missing_directory_is_refused_naming_it);
	tcase_add_test(tc, test_a_file_that_is_not_a_database_is_refused);
	tcase_add_test(tc, test_a_newer_schema_is_refused);
	tcase_add_test(tc,
		test_damaged_records_are_refused_by_get_and_skipped_by_list);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_sqlite_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
