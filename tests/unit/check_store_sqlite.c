/*
 * check_store_sqlite.c - the store's SQLite backend through its ops
 * (store_sqlite_ops): the file it makes; records come back as written,
 * every field; the last write of an id wins and keeps its first cursor;
 * the listing's order, pages and filters; expiry.  The rest, in
 * check_store_sqlite_files.c: restarts and crashes, readers beside the
 * writer, the files it refuses, and the backend through store.h.
 *
 * Each test works in a directory of its own from mkdtemp(), removed by
 * the fixture (store_sqlite_fixture.h).  The file is also read and
 * written with libsqlite3 directly, to check what is on disk.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_sqlite_fixture.h"

/* ---- records --------------------------------------------------------------- */

START_TEST(test_open_creates_the_file_for_its_owner_alone_in_wal_mode)
{
	void *b = open_at(path);
	struct stat st_file;
	sqlite3 *db;
	sqlite3_stmt *st;
	char wal[160];

	ck_assert_int_eq(stat(path, &st_file), 0);
	ck_assert_uint_eq(st_file.st_mode & 0777, 0600);
	write_job(b, job_rec("a", "x", STORE_QUEUED, 0));
	snprintf(wal, sizeof(wal), "%s-wal", path);
	ck_assert_int_eq(stat(wal, &st_file), 0);
	ck_assert_uint_eq(st_file.st_mode & 0777, 0600);
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

static Suite *
store_sqlite_suite(void)
{
	Suite *s = suite_create("store_sqlite");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
		test_open_creates_the_file_for_its_owner_alone_in_wal_mode);
	tcase_add_test(tc, test_a_batch_comes_back_as_written_every_field);
	tcase_add_test(tc, test_an_absent_id_is_1_and_a_too_long_id_too);
	tcase_add_test(tc, test_a_run_comes_back_as_written);
	tcase_add_test(tc, test_the_last_write_wins_and_keeps_the_first_cursor);
	tcase_add_test(tc, test_list_is_newest_first_in_pages_by_cursor);
	tcase_add_test(tc, test_list_filters_by_job_and_by_a_set_of_states);
	tcase_add_test(tc,
		test_expire_deletes_only_finished_records_older_than_its_bound);
	tcase_add_test(tc, test_expire_goes_through_more_than_one_chunk);
	store_sqlite_files_add_tests(tc);
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

