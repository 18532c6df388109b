/*
 * check_store_sqlite_files.c - the SQLite backend's file across lives
 * and against damage (check_store_sqlite.c has the records and the
 * listing): records survive a close, and what a crashed life left
 * queued or running is failed at the next open; readers on two threads
 * beside the writer never fail; a missing directory, a file that is not
 * a database, a newer schema are refused, naming the file; damaged
 * records are refused by a get and skipped by a listing; and the
 * backend through store.h (store_open() with STORE_SQLITE).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store_sqlite_fixture.h"

/* ---- restarts and crashes ------------------------------------------------ */

START_TEST(test_reopen_after_a_crash_fails_what_was_unfinished)
{
	struct store_job got;
	struct store_run run;
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
		struct store_change c[4] = { { 0 } };
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
		c[3].is_run = true;
		snprintf(c[3].u.run.id, sizeof(c[3].u.run.id), "waiting");
		c[3].u.run.route = "GET /tasks";
		_exit(store_sqlite_ops.write_batch(cb, c, 4) == 0 ? 0 : 3);
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
	/* A run is left as it was: not done, no answer. */
	ck_assert_int_eq(OPS.run_get(b, "waiting", &run), 0);
	ck_assert(!run.done);
	ck_assert_uint_eq(run.status, 0);
	ck_assert_ptr_null(run.answer);
	run_free(&run);
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

/* A second daemon on the same file is refused until the first closes. */
START_TEST(test_a_file_in_use_is_refused)
{
	void *b = open_at(path);

	write_nine(b);
	open_fails(path, "in use by another taskpoold");
	/* The refused one changed nothing: j9 still runs. */
	ck_assert_int_eq(state_of(b, "j9"), STORE_RUNNING);
	OPS.close(b);
	b = open_at(path);
	ck_assert_int_eq(state_of(b, "j9"), STORE_FAILED);
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

/* ---- through store.h ------------------------------------------------------ */

static struct store *
store_at(const char *p)
{
	struct store_options o = { .backend = STORE_SQLITE, .path = p,
				   .retain_ns = 3600 * NS_PER_S };
	char err[512] = "";
	struct store *s = store_open(&o, err, sizeof(err));

	ck_assert_msg(s != NULL, "store_open: %s", err);
	ck_assert_int_eq(store_backend(s), STORE_SQLITE);
	return s;
}

START_TEST(test_store_h_writes_behind_and_reads_back_after_sync)
{
	struct store *s = store_at(path);
	struct store_job j = job_rec("api-1", "greet", STORE_QUEUED, 0), got;
	struct store_filter f = { .job = "greet" };
	char jobs[1][STORE_ID_MAX] = { "api-1" };
	struct store_run r = { .route = "GET /tasks", .wait = "all",
			       .njobs = 1, .jobs = jobs, .created = 7 };
	struct store_run rgot;
	struct timespec ts;
	uint64_t next;
	int64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec * NS_PER_S + ts.tv_nsec;
	j.created = now;
	snprintf(r.id, sizeof(r.id), "run-1");
	ck_assert_int_eq(store_job_changed(s, &j), 0);
	ck_assert_int_eq(store_run_changed(s, &r), 0);
	j.state = STORE_SUCCEEDED;
	j.result = "Hello, world";
	j.started = now + 1;
	j.finished = now + 2;
	ck_assert_int_eq(store_job_changed(s, &j), 0);
	ck_assert_int_eq(store_sync(s), 0);

	ck_assert_int_eq(store_job_get(s, "api-1", &got), 0);
	job_eq(&got, &j);
	store_job_clear(&got);
	ck_assert_int_eq(store_run_get(s, "run-1", &rgot), 0);
	ck_assert_str_eq(rgot.route, "GET /tasks");
	ck_assert_uint_eq(rgot.njobs, 1);
	ck_assert_str_eq(rgot.jobs[0], "api-1");
	store_run_clear(&rgot);
	ck_assert_int_eq(store_job_list(s, &f, 0, 1, &got, &next), 1);
	ck_assert_str_eq(got.id, "api-1");
	ck_assert_uint_eq(next, 0);
	store_job_clear(&got);
	ck_assert_int_eq(store_job_get(s, "api-2", &got), 1);
	store_close(s);

	/* Kept across a close, and the store opens the file again. */
	s = store_at(path);
	ck_assert_int_eq(store_job_get(s, "api-1", &got), 0);
	ck_assert_int_eq(got.state, STORE_SUCCEEDED);
	ck_assert_str_eq(got.result, "Hello, world");
	store_job_clear(&got);
	store_close(s);
}
END_TEST

START_TEST(test_store_open_refuses_what_the_backend_refuses)
{
	struct store_options o = { .backend = STORE_SQLITE };
	char p[256], err[512] = "";

	snprintf(p, sizeof(p), "%s/nowhere/store.db", dir);
	o.path = p;
	ck_assert_ptr_null(store_open(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "nowhere: does not exist") != NULL, "%s",
		      err);
}
END_TEST


void
store_sqlite_files_add_tests(TCase *tc)
{
	tcase_add_test(tc, test_reopen_after_a_crash_fails_what_was_unfinished);
	tcase_add_test(tc, test_records_survive_close_and_reopen);
	tcase_add_test(tc, test_a_file_in_use_is_refused);
	tcase_add_test(tc,
		test_readers_on_two_threads_beside_the_writer_never_fail);
	tcase_add_test(tc,
		test_a_path_in_a_missing_directory_is_refused_naming_it);
	tcase_add_test(tc, test_a_file_that_is_not_a_database_is_refused);
	tcase_add_test(tc, test_a_newer_schema_is_refused);
	tcase_add_test(tc,
		test_damaged_records_are_refused_by_get_and_skipped_by_list);
	tcase_add_test(tc,
		test_store_h_writes_behind_and_reads_back_after_sync);
	tcase_add_test(tc, test_store_open_refuses_what_the_backend_refuses);
}
