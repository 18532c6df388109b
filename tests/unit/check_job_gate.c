/*
 * check_job_gate.c - the gate of jobs with max_concurrent and coalesce
 * (job_gate.c): what it holds of an instance while it hands it to its
 * kind, and which live instance a new one joins.
 *
 * The instances are real (job_new() on a loaded config); the kind's start
 * is the test's own function, passed to job_gate_run() as job_run() passes
 * start_kind(), so that a test can act at the very point where the gate
 * has let go of its lock and the kind has not looked at the instance yet.
 * No thread of the test's: everything below runs on the test's thread, in
 * the order the test forces (the timer is there for the sleep kind's
 * cancel, which finds nothing armed).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "future.h"
#include "job.h"
#include "job_gate.h"
#include "timer.h"

static char dir[] = "/tmp/check_job_gate.XXXXXX";
static char path[sizeof(dir) + 16];
static struct config *cfg;
static struct timer *timer;
static struct job_env env;

static const char jobs_text[] =
	"[job one_at_a_time]\nkind = sleep\nduration = 1s\n"
	"max_concurrent = 1\n"
	"[job shared]\nkind = sleep\nduration = 1s\ncoalesce = yes\n";

static void
setup(void)
{
	struct config_error err;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/gate.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(jobs_text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	cfg = config_load(path, &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	/* No kind's start runs: the start below is the test's. */
	job_env_init(&env, "t", timer, NULL);
	atomic_store(&env.log_jobs, false);
}

static void
teardown(void)
{
	job_env_clear(&env);
	timer_free(timer);
	config_unref(cfg);
	unlink(path);
	rmdir(dir);
	strcpy(dir + sizeof(dir) - 7, "XXXXXX");
}

static struct job_instance *
new_instance_of(const char *name)
{
	const struct job_def *def = config_find_job(cfg, name);
	struct job_instance *inst;

	ck_assert_ptr_nonnull(def);
	inst = job_new(&env, cfg, def, NULL);
	ck_assert_ptr_nonnull(inst);
	return inst;
}

static struct job_instance *
new_instance(void)
{
	return new_instance_of("one_at_a_time");
}

/* ---- a cancel between the gate's admission and the kind's start -------- */

static struct job_instance *first;	/* runs; its end admits the second */
static unsigned refs_seen;		/* the second's, as its start saw */
static int starts;

/*
 * The kind's start as the gate calls it.  The second instance is
 * cancelled first thing: that is a cancel (DELETE, the stop) that landed
 * just after the gate released its lock, while the instance was still
 * QUEUED, so that its own completion ran the gate's waiter, which gave up
 * the waiter's reference.  A real kind then reads the instance (sleep,
 * exec, http and plugin all do, starting with its future): someone must
 * still hold it.
 */
static void
start_probe(struct job_instance *inst)
{
	starts++;
	if (inst == first) {
		ck_assert(future_start(inst->future));
		return;
	}
	ck_assert(job_cancel(inst));
	refs_seen = atomic_load(&inst->refs);
	ck_assert(!future_start(inst->future));	/* the kind's first read */
}

START_TEST(test_an_admitted_instance_is_held_until_its_kind_has_it)
{
	struct job_instance *second;

	first = new_instance();
	second = new_instance();
	ck_assert_int_eq(job_gate_run(first, start_probe), 0);
	ck_assert_int_eq(job_gate_run(second, start_probe), 0);
	ck_assert_int_eq(starts, 1);	/* the limit holds the second */
	ck_assert_int_eq(future_state(second->future), FUTURE_QUEUED);

	/* The first ends: the gate admits the second and hands it over. */
	ck_assert(future_complete(first->future, FUTURE_SUCCEEDED,
				  strdup("done"), NULL));
	ck_assert_int_eq(starts, 2);
	/*
	 * The test's own reference, and the gate's for the handing over:
	 * with the test's alone, a caller that had let go (an answered
	 * request, an expired record) leaves the kind a freed instance.
	 */
	ck_assert_uint_eq(refs_seen, 2);
	ck_assert_int_eq(future_state(second->future), FUTURE_CANCELLED);
	job_unref(second);
	job_unref(first);
}
END_TEST

/* ---- coalescing -------------------------------------------------------- */

/* The kind's start: the instance runs until the test completes it. */
static void
start_running(struct job_instance *inst)
{
	starts++;
	ck_assert(future_start(inst->future));
}

/*
 * A live instance whose cancel was asked for is on its way out (an exec
 * child in its kill_grace, an http transfer until the thread's next
 * turn, a plugin until it polls): its end is CANCELLED already.  A new
 * request with the same parameters must not join it, or it would end
 * cancelled though nobody cancelled it.
 */
START_TEST(test_a_new_request_does_not_join_a_cancelled_twin)
{
	struct job_instance *dying = new_instance_of("shared");
	struct job_instance *fresh = new_instance_of("shared");

	ck_assert_int_eq(job_gate_run(dying, start_running), 0);
	ck_assert(!job_cancel(dying));	/* the kind ends it later */
	ck_assert_int_eq(job_gate_run(fresh, start_running), 0);
	ck_assert_ptr_null(job_joined(fresh));
	ck_assert_int_eq(starts, 2);	/* it runs on its own */

	/* The first ends as its kind ends it; the second goes on. */
	ck_assert(future_complete(dying->future, FUTURE_CANCELLED, NULL, NULL));
	ck_assert_int_eq(future_state(fresh->future), FUTURE_RUNNING);
	ck_assert(future_complete(fresh->future, FUTURE_SUCCEEDED,
				  strdup(""), NULL));
	job_unref(fresh);
	job_unref(dying);
}
END_TEST

static Suite *
gate_suite(void)
{
	Suite *s = suite_create("job_gate");
	TCase *tc = tcase_create("admission");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_an_admitted_instance_is_held_until_its_kind_has_it);
	suite_add_tcase(s, tc);
	tc = tcase_create("coalesce");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_new_request_does_not_join_a_cancelled_twin);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(gate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
