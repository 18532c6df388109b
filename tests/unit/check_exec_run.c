/*
 * check_exec_run.c - kind exec's instances, run through the kind with its
 * thread open and a real timer: how the cancel protocol of job.h holds at
 * the edges of a start (tests/system/test_exec.py runs the daemon).
 *
 * A cancel is forced into the window between the future's start and the
 * spawn through the env's test_after_start seam: no sleeps.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "future.h"
#include "job.h"
#include "kinds/kinds.h"
#include "timer.h"

static char dir[] = "/tmp/check_exec_run.XXXXXX";
static char conf[sizeof(dir) + 16], prog[sizeof(dir) + 16];
static struct config *cfg;
static struct timer *timer;
static struct job_env env;

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void
setup(void)
{
	struct config_error err;
	char text[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/exec.conf", dir);
	snprintf(prog, sizeof(prog), "%s/prog", dir);
	write_file(prog, "#!/bin/sh\nexit 0\n", 0755);
	snprintf(text, sizeof(text), "[job vanishing]\nkind = exec\n"
		 "command = %s\n", prog);
	write_file(conf, text, 0644);
	cfg = config_load(conf, &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	job_env_init(&env, "t", timer, NULL);
	atomic_store(&env.log_jobs, false);
	ck_assert_int_eq(kinds_open(&env), 0);
}

static void
teardown(void)
{
	kinds_close(&env);
	timer_free(timer);
	job_env_clear(&env);
	config_unref(cfg);
	unlink(prog);
	unlink(conf);
	rmdir(dir);
	strcpy(dir + sizeof(dir) - 7, "XXXXXX");
}

/* The seam: a DELETE that lands once the future is RUNNING. */
static void
cancel_now(struct job_instance *inst)
{
	/* Nothing is spawned yet: the kind must see the mark later. */
	ck_assert(!job_cancel(inst));
}

START_TEST(test_a_cancel_before_a_failed_spawn_still_wins)
{
	const struct job_def *def = config_find_job(cfg, "vanishing");
	struct job_instance *inst;

	/* Loaded while it was there; gone when the job runs. */
	ck_assert_int_eq(unlink(prog), 0);
	inst = job_new(&env, cfg, def, NULL);
	ck_assert_ptr_nonnull(inst);
	env.test_after_start = cancel_now;
	ck_assert_int_eq(job_run(inst), 0);
	/* The failed spawn completes it on this thread: nothing to wait for. */
	ck_assert_str_eq(future_state_name(future_state(inst->future)),
			 future_state_name(FUTURE_CANCELLED));
	job_unref(inst);
}
END_TEST

static Suite *
exec_run_suite(void)
{
	Suite *s = suite_create("exec_run");
	TCase *tc = tcase_create("cancel");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_cancel_before_a_failed_spawn_still_wins);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(exec_run_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
