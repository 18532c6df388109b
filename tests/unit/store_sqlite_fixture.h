/*
 * store_sqlite_fixture.h - what the tests of the SQLite backend share
 * (check_store_sqlite.c, check_store_sqlite_files.c): a directory of its
 * own for each test, opening and refusing, records to write and compare,
 * and the file itself through libsqlite3.
 */
#ifndef TASKPOOLD_STORE_SQLITE_FIXTURE_H
#define TASKPOOLD_STORE_SQLITE_FIXTURE_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/store.h"

#define OPS store_sqlite_ops
#define NS_PER_S INT64_C(1000000000)

/* The test's directory (mkdtemp) and the file in it, store.db. */
extern char dir[64];
extern char path[128];

/* Checked fixture: makes dir; removes it and what is in it. */
void setup(void);
void teardown(void);

/* The backend opened on p (the test fails if it cannot be). */
void *open_at(const char *p);
/* Opening p fails with a reason that holds want (and the path). */
void open_fails(const char *p, const char *want);
/* Runs sql on path with libsqlite3 itself. */
void raw_exec(const char *sql);

/* A record with its strings NULL, created at 1000. */
struct store_job job_rec(const char *id, const char *name,
			 enum store_state state, int64_t finished);
/* One write_batch of the n records (the test fails if it fails). */
void write_jobs(void *b, const struct store_job *jobs, size_t n);
void write_job(void *b, struct store_job j);
/* j1 .. j9, newest last: job x for odd, y for even; states vary. */
void write_nine(void *b);

/* Frees what a record read back owns. */
void job_free(struct store_job *j);
void run_free(struct store_run *r);
/* Every field of got but the cursor is want's. */
void job_eq(const struct store_job *got, const struct store_job *want);
/* The state of id, or -1 when it is absent. */
int state_of(void *b, const char *id);
/*
 * Lists into ids, joined by spaces, checking the order and that *next
 * is the last record's cursor; returns *next.
 */
uint64_t list(void *b, const char *job, unsigned states, uint64_t before,
	      size_t limit, char *ids, size_t size);

/* check_store_sqlite_files.c */
void store_sqlite_files_add_tests(TCase *tc);

#endif
