/*
 * store_sqlite_fixture.c - see store_sqlite_fixture.h.
 */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_sqlite_fixture.h"

char dir[64];
char path[128];

void
setup(void)
{
	strcpy(dir, "/tmp/check_store_sqlite.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
}

void
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

void *
open_at(const char *p)
{
	struct store_options o = { .backend = STORE_SQLITE, .path = p };
	char err[512] = "";
	void *b = OPS.open(&o, err, sizeof(err));

	ck_assert_msg(b != NULL, "open: %s", err);
	return b;
}

/* Opening p fails with a reason that holds want (and the path). */
void
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
void
raw_exec(const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
		      "%s: %s", sql, msg);
	sqlite3_close(db);
}

struct store_job
job_rec(const char *id, const char *name, enum store_state state,
	int64_t finished)
{
	struct store_job j = { .state = state, .created = 1000,
			       .finished = finished };

	snprintf(j.id, sizeof(j.id), "%s", id);
	snprintf(j.job, sizeof(j.job), "%s", name);
	return j;
}

void
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

void
write_job(void *b, struct store_job j)
{
	write_jobs(b, &j, 1);
}

void
job_free(struct store_job *j)
{
	free(j->result);
	free(j->error);
	free(j->params);
	free(j->joined);
	memset(j, 0, sizeof(*j));
}

void
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
void
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
int
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

/* Lists into ids (joined by spaces); returns *next. */
uint64_t
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
void
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
