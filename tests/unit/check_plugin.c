/*
 * check_plugin.c - the plugin kind: what its config accepts and refuses
 * (the library and its interface), and instances run through the kind
 * with a real pool of one worker and a real timer: success, errors,
 * timeouts, cancels queued and running, the daemon's close, and the
 * library kept open while a job of it runs.
 *
 * The plugins are the examples and tests/plugins/testjobs.c, built for the
 * tests against the header of this tree (TEST_PLUGINDIR).  A function that
 * is to be seen running gets a pipe's descriptor as its `fd` parameter and
 * writes a byte there when it starts: tests wait for events, not times.
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "future.h"
#include "job.h"
#include "kinds/kinds.h"
#include "pool.h"
#include "timer.h"

#define PLUGINS TEST_PLUGINDIR
#define NS_PER_MS INT64_C(1000000)

/* ---- fixtures and helpers ------------------------------------------------ */

static char dir[] = "/tmp/check_plugin.XXXXXX";
static struct config *cfg;
static struct timer *timer;
static struct pool *pool;
static struct job_env env;
static bool kinds_closed;
static int started[2];		/* the pipe functions write to */

/* Writes text to DIR/name; returns the path (static, one at a time). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[sizeof(dir) + 64];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

/* A [job NAME] of kind plugin running FUNCTION of LIBRARY (in PLUGINS). */
#define JOB(name, library, function, extra) \
	"[job " name "]\nkind = plugin\nlibrary = " PLUGINS "/" library \
	"\nfunction = " function "\n" extra

static const char jobs_text[] =
	JOB("echo", "testjobs.so", "echo", "")
	JOB("fail", "testjobs.so", "fail", "")
	JOB("fail_silently", "testjobs.so", "fail_silently", "")
	JOB("fail_badly", "testjobs.so", "fail_badly", "")
	JOB("wait_cancel", "testjobs.so", "wait_cancel", "")
	JOB("wait_short", "testjobs.so", "wait_cancel", "timeout = 100ms\n")
	JOB("stubborn_short", "testjobs.so", "stubborn", "timeout = 100ms\n")
	JOB("greet", "greet.so", "greet", "")
	JOB("count_primes", "count_primes.so", "count_primes", "");

static void
setup(void)
{
	struct config_error err;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	cfg = config_load(write_file("plugin.conf", jobs_text), &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	pool = pool_new(1, 4);
	ck_assert_ptr_nonnull(pool);
	job_env_init(&env, "t", timer, pool);
	atomic_store(&env.log_jobs, false);
	ck_assert_int_eq(kinds_open(&env), 0);
	kinds_closed = false;
	ck_assert_int_eq(pipe(started), 0);
}

static void
teardown(void)
{
	if (!kinds_closed)
		kinds_close(&env);
	pool_free(pool);
	timer_free(timer);
	config_unref(cfg);
	close(started[0]);
	close(started[1]);
	unlink(write_file("plugin.conf", ""));
	rmdir(dir);
	strcpy(dir + sizeof(dir) - 7, "XXXXXX");
}

/* Starts an instance of job name with params (stolen); a new reference. */
static struct job_instance *
start_job(const char *name, json_t *params)
{
	const struct job_def *def = config_find_job(cfg, name);
	struct job_instance *inst;

	ck_assert_ptr_nonnull(def);
	inst = job_new(&env, cfg, def, params);
	ck_assert_ptr_nonnull(inst);
	ck_assert_int_eq(job_run(inst), 0);
	return inst;
}

/* Params that make a testjobs function say when it starts. */
static json_t *
with_fd(void)
{
	return json_pack("{s:i}", "fd", started[1]);
}

/* Waits for a function to write its start byte (Check's timeout bounds it). */
static void
wait_started(void)
{
	char c;

	ck_assert_int_eq(read(started[0], &c, 1), 1);
}

struct done {
	struct future_waiter waiter;
	sem_t sem;
};

static void
on_done(struct future *f, void *arg)
{
	(void)f;
	sem_post(&((struct done *)arg)->sem);
}

/* Waits (10 s at most) until inst's future completes; its snapshot. */
static struct future_snapshot
wait_done(struct job_instance *inst)
{
	struct done d;
	struct timespec ts;

	sem_init(&d.sem, 0, 0);
	future_on_done(inst->future, &d.waiter, on_done, &d);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	ck_assert_int_eq(sem_timedwait(&d.sem, &ts), 0);
	sem_destroy(&d.sem);
	return future_snapshot(inst->future);
}

/* Waits (10 s at most) until the pool's worker has let go of its item. */
static void
wait_worker_free(void)
{
	struct timespec tick = { 0, NS_PER_MS };
	int i;

	for (i = 0; i < 10000 && pool_busy(pool) > 0; i++)
		nanosleep(&tick, NULL);
	ck_assert_uint_eq(pool_busy(pool), 0);
}

/* Asserts that a snapshot's result is the JSON text expected. */
static void
assert_json_result(const struct future_snapshot *s, const char *expected)
{
	json_t *got, *want;

	ck_assert_int_eq(s->state, FUTURE_SUCCEEDED);
	ck_assert_uint_eq(s->result_flags, FUTURE_RESULT_JSON);
	got = json_loads(s->result, 0, NULL);
	want = json_loads(expected, 0, NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(want);
	ck_assert_msg(json_equal(got, want), "%s != %s", s->result, expected);
	json_decref(got);
	json_decref(want);
}

/* Runs job name with params to its end; asserts it FAILED with error. */
static void
assert_fails_with(const char *name, json_t *params, const char *error)
{
	struct job_instance *inst = start_job(name, params);
	struct future_snapshot s = wait_done(inst);

	ck_assert_int_eq(s.state, FUTURE_FAILED);
	ck_assert_ptr_null(s.result);
	ck_assert_str_eq(s.error, error);
	job_unref(inst);
}

/* ---- running ------------------------------------------------------------- */

START_TEST(test_function_gets_the_params_job_and_id_and_its_value_is_the_result)
{
	struct job_instance *inst = start_job("echo",
					      json_pack("{s:i}", "a", 1));
	struct future_snapshot s = wait_done(inst);
	char expected[256];

	snprintf(expected, sizeof(expected), "{\"params\": {\"a\": 1}, "
		 "\"job\": \"echo\", \"id\": \"%s\", \"size_ok\": true}",
		 inst->id);
	assert_json_result(&s, expected);
	ck_assert_ptr_null(s.error);
	job_unref(inst);
}
END_TEST

START_TEST(test_greet_greets_the_name_given)
{
	struct job_instance *inst = start_job("greet",
					      json_pack("{s:s}", "name", "Ada"));
	struct future_snapshot s = wait_done(inst);

	assert_json_result(&s, "{\"greeting\": \"Hello, Ada\"}");
	job_unref(inst);
}
END_TEST

START_TEST(test_greet_without_a_name_greets_the_world)
{
	struct job_instance *inst = start_job("greet", NULL);
	struct future_snapshot s = wait_done(inst);

	assert_json_result(&s, "{\"greeting\": \"Hello, world\"}");
	job_unref(inst);
}
END_TEST

START_TEST(test_count_primes_counts_the_primes_up_to_n)
{
	static const struct { int n, primes; } cases[] = {
		{ 1, 0 }, { 2, 1 }, { 100, 25 }, { 32768, 3512 },
		{ 32769, 3512 }, { 1000000, 78498 },
	};
	char expected[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct job_instance *inst = start_job("count_primes",
			json_pack("{s:i}", "n", cases[i].n));
		struct future_snapshot s = wait_done(inst);

		snprintf(expected, sizeof(expected),
			 "{\"n\": %d, \"primes\": %d}", cases[i].n,
			 cases[i].primes);
		assert_json_result(&s, expected);
		job_unref(inst);
	}
}
END_TEST

START_TEST(test_an_error_of_the_function_fails_the_job_with_it)
{
	assert_fails_with("fail", NULL, "no such thing: fail");
}
END_TEST

START_TEST(test_count_primes_refuses_an_n_out_of_range)
{
	assert_fails_with("count_primes", json_pack("{s:i}", "n", 0),
			  "n must be an integer from 1 to 100000000");
}
END_TEST

START_TEST(test_no_result_and_no_error_fails_the_job)
{
	assert_fails_with("fail_silently", NULL,
			  "the plugin returned no result and no error");
}
END_TEST

START_TEST(test_an_error_that_is_not_utf8_is_replaced)
{
	assert_fails_with("fail_badly", NULL,
			  "the plugin's error is not valid UTF-8");
}
END_TEST

/* ---- timeouts ------------------------------------------------------------ */

START_TEST(test_timeout_ends_the_job_and_the_function_sees_its_flag)
{
	struct job_instance *inst = start_job("wait_short", with_fd());
	struct future_snapshot s;

	wait_started();
	s = wait_done(inst);
	ck_assert_int_eq(s.state, FUTURE_TIMED_OUT);
	ck_assert_str_eq(s.error, "timed out");
	/* wait_cancel returns only once it saw the flag. */
	wait_worker_free();
	ck_assert_int_eq(future_state(inst->future), FUTURE_TIMED_OUT);
	job_unref(inst);
}
END_TEST

START_TEST(test_timeout_does_not_wait_for_a_function_that_never_polls)
{
	json_t *params = json_pack("{s:i,s:i}", "fd", started[1], "ms", 2000);
	struct job_instance *inst = start_job("stubborn_short", params);
	struct future_snapshot s;

	wait_started();
	s = wait_done(inst);
	ck_assert_int_eq(s.state, FUTURE_TIMED_OUT);
	ck_assert_int_lt(future_runtime_ns(inst->future), 1000 * NS_PER_MS);
	/* Its worker is still its own; its late result is ignored. */
	ck_assert_uint_eq(pool_busy(pool), 1);
	wait_worker_free();
	s = future_snapshot(inst->future);
	ck_assert_int_eq(s.state, FUTURE_TIMED_OUT);
	ck_assert_ptr_null(s.result);
	job_unref(inst);
}
END_TEST

/* ---- cancels ------------------------------------------------------------- */

START_TEST(test_cancel_of_a_running_job_raises_its_flag_and_ends_it_cancelled)
{
	struct job_instance *inst = start_job("wait_cancel", with_fd());
	struct future_snapshot s;

	wait_started();
	/* The worker ends it, once the function has returned. */
	ck_assert(!job_cancel(inst));
	s = wait_done(inst);
	ck_assert_int_eq(s.state, FUTURE_CANCELLED);
	ck_assert_ptr_null(s.result);
	ck_assert_ptr_null(s.error);
	wait_worker_free();
	job_unref(inst);
}
END_TEST

START_TEST(test_cancel_of_a_queued_job_drops_it_at_once)
{
	struct job_instance *busy = start_job("wait_cancel", with_fd());
	struct job_instance *queued;
	char c;

	wait_started();
	queued = start_job("echo", with_fd());
	ck_assert_uint_eq(pool_queued(pool), 1);
	ck_assert(job_cancel(queued));
	ck_assert_int_eq(future_state(queued->future), FUTURE_CANCELLED);
	ck_assert_uint_eq(pool_queued(pool), 0);
	job_cancel(busy);
	ck_assert_int_eq(wait_done(busy).state, FUTURE_CANCELLED);
	wait_worker_free();
	/* The echo never ran: it would have written its byte. */
	ck_assert_int_eq(write(started[1], "x", 1), 1);
	ck_assert_int_eq(read(started[0], &c, 1), 1);
	ck_assert_int_eq(c, 'x');
	job_unref(queued);
	job_unref(busy);
}
END_TEST

static void
cancel_now(struct job_instance *inst)
{
	ck_assert(!job_cancel(inst));	/* nothing submitted yet */
}

START_TEST(test_cancel_between_start_and_submit_wins)
{
	struct job_instance *inst;
	char c;

	env.test_after_start = cancel_now;
	inst = start_job("echo", with_fd());
	env.test_after_start = NULL;
	ck_assert_int_eq(wait_done(inst).state, FUTURE_CANCELLED);
	wait_worker_free();
	ck_assert_int_eq(write(started[1], "x", 1), 1);
	ck_assert_int_eq(read(started[0], &c, 1), 1);
	ck_assert_int_eq(c, 'x');
	job_unref(inst);
}
END_TEST

START_TEST(test_close_ends_the_running_and_the_queued_jobs)
{
	struct job_instance *running = start_job("wait_cancel", with_fd());
	struct job_instance *queued;
	struct future_snapshot s;

	wait_started();
	queued = start_job("echo", NULL);
	kinds_close(&env);
	kinds_closed = true;
	ck_assert_int_eq(future_state(running->future), FUTURE_CANCELLED);
	s = future_snapshot(queued->future);
	ck_assert_int_eq(s.state, FUTURE_CANCELLED);
	job_unref(queued);
	job_unref(running);
}
END_TEST

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	ck_assert(!ferror(in));
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

START_TEST(test_the_library_stays_open_while_a_job_of_a_freed_config_runs)
{
	char path[sizeof(dir) + 64];
	struct job_instance *inst;
	struct config_error err;
	struct config *old;
	char text[512];
	void *h;

	/* A copy: the fixture's config holds the original open. */
	snprintf(path, sizeof(path), "%s/copy.so", dir);
	copy_file(PLUGINS "/testjobs.so", path);
	snprintf(text, sizeof(text), "[job w]\nkind = plugin\nlibrary = %s\n"
		 "function = wait_cancel\n", path);
	old = config_load(write_file("old.conf", text), &err);
	ck_assert_msg(old != NULL, "line %d: %s", err.line, err.text);
	inst = job_new(&env, old, config_find_job(old, "w"), with_fd());
	ck_assert_int_eq(job_run(inst), 0);
	config_unref(old);	/* as a reload does: only the job holds it */
	wait_started();
	h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	ck_assert_ptr_nonnull(h);
	dlclose(h);
	job_cancel(inst);
	ck_assert_int_eq(wait_done(inst).state, FUTURE_CANCELLED);
	job_unref(inst);
	wait_worker_free();
	ck_assert_ptr_null(dlopen(path, RTLD_NOW | RTLD_NOLOAD));
	unlink(path);
	unlink(write_file("old.conf", ""));
}
END_TEST

/* ---- the config ---------------------------------------------------------- */

/* Loads a one-job config of text; asserts it is refused at line 1. */
static void
assert_refused(const char *text, const char *why)
{
	struct config_error err;

	ck_assert_ptr_null(config_load(write_file("bad.conf", text), &err));
	ck_assert_int_eq(err.line, 1);
	ck_assert_msg(strstr(err.text, why) != NULL, "'%s' lacks '%s'",
		      err.text, why);
	unlink(write_file("bad.conf", ""));
}

START_TEST(test_a_plugin_built_for_another_abi_is_refused)
{
	assert_refused(JOB("x", "abi_other.so", "echo", ""),
		       "abi_other.so was built for plugin ABI 2, this "
		       "taskpoold has ABI 1 (rebuild it against its "
		       "taskpoold/job.h)");
}
END_TEST

START_TEST(test_a_library_without_the_abi_symbol_is_refused)
{
	assert_refused(JOB("x", "abi_none.so", "echo", ""),
		       "abi_none.so does not export taskpoold_abi_version: "
		       "not a taskpoold plugin");
}
END_TEST

START_TEST(test_a_missing_function_is_refused)
{
	assert_refused(JOB("x", "testjobs.so", "nope", ""),
		       "testjobs.so has no function 'nope'");
}
END_TEST

START_TEST(test_a_missing_library_is_refused)
{
	assert_refused(JOB("x", "none.so", "echo", ""),
		       "cannot load library: " PLUGINS "/none.so: cannot "
		       "open shared object file");
}
END_TEST

START_TEST(test_a_relative_library_path_is_refused)
{
	struct config_error err;

	ck_assert_ptr_null(config_load(write_file("bad.conf",
		"[job x]\nkind = plugin\nlibrary = x.so\nfunction = f\n"),
		&err));
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "bad value 'x.so' for library (expected "
			 "an absolute path)");
	unlink(write_file("bad.conf", ""));
}
END_TEST

START_TEST(test_a_job_without_function_is_refused)
{
	assert_refused("[job x]\nkind = plugin\nlibrary = " PLUGINS
		       "/testjobs.so\n",
		       "job 'x': a plugin job needs library and function");
}
END_TEST

static Suite *
plugin_suite(void)
{
	Suite *s = suite_create("plugin");
	TCase *tc;

	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_function_gets_the_params_job_and_id_and_its_value_is_the_result);
	tcase_add_test(tc, test_greet_greets_the_name_given);
	tcase_add_test(tc, test_greet_without_a_name_greets_the_world);
	tcase_add_test(tc, test_count_primes_counts_the_primes_up_to_n);
	tcase_add_test(tc, test_an_error_of_the_function_fails_the_job_with_it);
	tcase_add_test(tc, test_count_primes_refuses_an_n_out_of_range);
	tcase_add_test(tc, test_no_result_and_no_error_fails_the_job);
	tcase_add_test(tc, test_an_error_that_is_not_utf8_is_replaced);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeout");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_timeout_ends_the_job_and_the_function_sees_its_flag);
	tcase_add_test(tc, test_timeout_does_not_wait_for_a_function_that_never_polls);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_cancel_of_a_running_job_raises_its_flag_and_ends_it_cancelled);
	tcase_add_test(tc, test_cancel_of_a_queued_job_drops_it_at_once);
	tcase_add_test(tc, test_cancel_between_start_and_submit_wins);
	tcase_add_test(tc, test_close_ends_the_running_and_the_queued_jobs);
	tcase_add_test(tc, test_the_library_stays_open_while_a_job_of_a_freed_config_runs);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_plugin_built_for_another_abi_is_refused);
	tcase_add_test(tc, test_a_library_without_the_abi_symbol_is_refused);
	tcase_add_test(tc, test_a_missing_function_is_refused);
	tcase_add_test(tc, test_a_missing_library_is_refused);
	tcase_add_test(tc, test_a_relative_library_path_is_refused);
	tcase_add_test(tc, test_a_job_without_function_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(plugin_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
