/*
 * check_job.c - job instances with an id of their own (job.c): those the
 * shared queue hands over keep the id another instance gave them, carry
 * their attempt, and still take a local seq for the registry's order; an
 * id from the database is checked before it is used.  Each finished
 * instance's duration counts in the series of its job's name and final
 * state, across configs.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "metrics.h"
#include "timer.h"

static char dir[] = "/tmp/check_job.XXXXXX";
static char path[sizeof(dir) + 16];
static struct config *cfg;
static struct timer *timer;
static struct job_env env;
static const struct job_def *def;

static void
setup(void)
{
	struct config_error err;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/job.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs("[job nap]\nkind = sleep\nduration = 1s\n",
			       fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	cfg = config_load(path, &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
	def = config_find_job(cfg, "nap");
	ck_assert_ptr_nonnull(def);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	job_env_init(&env, "here", timer, NULL);
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

START_TEST(test_a_claimed_instance_keeps_its_id_and_attempt)
{
	struct job_instance *own = job_new(&env, cfg, def, NULL);
	struct job_instance *claimed = job_new_claimed(&env, cfg, def, NULL,
		"there-0badc0de-42", 2);

	ck_assert_ptr_nonnull(own);
	ck_assert_ptr_nonnull(claimed);
	ck_assert_str_eq(claimed->id, "there-0badc0de-42");
	ck_assert_uint_eq(claimed->attempt, 2);
	ck_assert_uint_eq(own->attempt, 0);
	ck_assert(!claimed->enqueued);
	/* A seq of this daemon's, after the one before it. */
	ck_assert_uint_eq(claimed->seq, own->seq + 1);
	ck_assert_int_eq(strncmp(own->id, "here-", 5), 0);
	ck_assert_int_eq(future_state(claimed->future), FUTURE_QUEUED);
	job_unref(claimed);
	job_unref(own);
}
END_TEST

START_TEST(test_an_id_from_the_database_is_checked)
{
	char longest[JOB_ID_MAX], too_long[JOB_ID_MAX + 1];
	json_t *params = json_object();

	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	ck_assert(job_id_valid("node1-0000abcd-1"));
	ck_assert(job_id_valid("a.b_c-D9"));
	ck_assert(job_id_valid(longest));
	ck_assert(!job_id_valid(too_long));
	ck_assert(!job_id_valid(""));
	ck_assert(!job_id_valid("../etc"));
	ck_assert(!job_id_valid("a b"));
	ck_assert(!job_id_valid("a\nb"));
	ck_assert(!job_id_valid("é"));
	/* Refused, with its params freed (ASan/valgrind see a leak if not). */
	errno = 0;
	ck_assert_ptr_null(job_new_claimed(&env, cfg, def, params, "x/y", 1));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/*
 * A job without parameters (job_new() with NULL) gets an empty object of
 * its own: not one shared between instances that HTTP threads make at
 * once, whose count jansson's json_incref() reads without an atomic load.
 */
START_TEST(test_instances_without_params_get_their_own_empty_object)
{
	struct job_instance *a = job_new(&env, cfg, def, NULL);
	struct job_instance *b = job_new(&env, cfg, def, NULL);
	json_t *mine = json_pack("{s:i}", "n", 1);
	struct job_instance *c = job_new(&env, cfg, def, mine);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(a->params, b->params);
	ck_assert(json_is_object(a->params));
	ck_assert_uint_eq(json_object_size(a->params), 0);
	ck_assert_uint_eq(a->params->refcount, 1);
	ck_assert_ptr_eq(c->params, mine);	/* given: taken as it is */
	job_unref(a);
	job_unref(b);
	job_unref(c);
}
END_TEST

/*
 * The instance lives in its future's block: a holder of the future alone
 * (a run) may go on using the future after the instance's last reference.
 */
START_TEST(test_the_future_outlives_its_instance)
{
	struct job_instance *inst = job_new(&env, cfg, def, NULL);
	struct future *f;

	ck_assert_ptr_nonnull(inst);
	f = future_ref(inst->future);
	/* Completed while the instance lives, as every kind does. */
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("ok"), NULL));
	job_unref(inst);
	ck_assert_int_eq(future_state(f), FUTURE_SUCCEEDED);
	ck_assert_str_eq(future_result(f), "ok");
	future_unref(f);
}
END_TEST

/* Ends inst as state (SUCCEEDED after a start) and drops it. */
static void
finish(struct job_instance *inst, enum future_state state)
{
	ck_assert_ptr_nonnull(inst);
	if (state == FUTURE_SUCCEEDED) {
		ck_assert(future_start(inst->future));
		future_complete(inst->future, state, strdup("r"), NULL);
	} else {
		future_complete(inst->future, state, NULL, strdup("e"));
	}
	job_unref(inst);
}

static double
durations(struct metrics_family *f, const char *job, const char *state)
{
	return metrics_value(metrics_series(f, (const char *[]){ job,
								  state }));
}

START_TEST(test_durations_count_by_job_name_and_state_across_configs)
{
	static const double bounds[] = { 1 };
	struct metrics_desc desc = {
		.type = METRICS_HISTOGRAM, .name = "t_job_seconds",
		.help = "J.", .labels = { "job", "outcome" }, .nlabels = 2,
		.max_series = 64, .bounds = bounds, .nbounds = 1,
	};
	struct metrics *m = metrics_new(4);
	struct config_error err;
	struct config *second;
	char path2[sizeof(path) + 1];
	FILE *fp;
	int i;

	ck_assert_ptr_nonnull(m);
	env.job_durations = metrics_family_new(m, &desc);
	ck_assert_ptr_nonnull(env.job_durations);
	for (i = 0; i < 3; i++)
		finish(job_new(&env, cfg, def, NULL), FUTURE_SUCCEEDED);
	for (i = 0; i < 2; i++)
		finish(job_new(&env, cfg, def, NULL), FUTURE_FAILED);
	/* A reload: another nap (its own name string), and a doze. */
	snprintf(path2, sizeof(path2), "%s2", path);
	fp = fopen(path2, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs("[job doze]\nkind = sleep\nduration = 1s\n"
			       "[job nap]\nkind = sleep\nduration = 1s\n",
			       fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	second = config_load(path2, &err);
	ck_assert_msg(second != NULL, "line %d: %s", err.line, err.text);
	finish(job_new(&env, second, config_find_job(second, "nap"), NULL),
	       FUTURE_SUCCEEDED);
	for (i = 0; i < 2; i++)
		finish(job_new(&env, second, config_find_job(second, "doze"),
			       NULL), FUTURE_SUCCEEDED);
	finish(job_new(&env, second, config_find_job(second, "doze"), NULL),
	       FUTURE_CANCELLED);
	ck_assert(durations(env.job_durations, "nap", "succeeded") == 4);
	ck_assert(durations(env.job_durations, "nap", "failed") == 2);
	ck_assert(durations(env.job_durations, "doze", "succeeded") == 2);
	ck_assert(durations(env.job_durations, "doze", "cancelled") == 1);
	ck_assert(durations(env.job_durations, "doze", "failed") == 0);
	config_unref(second);
	unlink(path2);
	job_env_clear(&env);	/* the slots go before the metrics */
	job_env_init(&env, "here", timer, NULL);
	metrics_free(m);
}
END_TEST

static Suite *
job_suite(void)
{
	Suite *s = suite_create("job");
	TCase *tc = tcase_create("claimed");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_claimed_instance_keeps_its_id_and_attempt);
	tcase_add_test(tc, test_an_id_from_the_database_is_checked);
	tcase_add_test(tc, test_instances_without_params_get_their_own_empty_object);
	tcase_add_test(tc, test_the_future_outlives_its_instance);
	tcase_add_test(tc,
		test_durations_count_by_job_name_and_state_across_configs);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(job_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
