/*
 * check_work_queue.c - the shared queue's runner (work_queue.c) against a
 * backend of the test's own: a claim that is under way when the daemon's
 * stop begins must start nothing, since the stop goes on to free the pool
 * and the timer while the runner's thread still lives.  And a database
 * that does not answer costs the runner one timeout a pass, not one per
 * job: the stop waits for that pass.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "job.h"
#include "registry.h"
#include "store/backend.h"
#include "store/store.h"
#include "timer.h"
#include "work_queue.h"

static struct fake {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool in_claim;		/* the runner waits in claim() */
	bool let_go;		/* the test lets that claim return */
	unsigned claims;
	bool three;		/* the claim: three quick jobs, at once */
	bool twice;		/* the claim: one id at attempts 1 and 2 */
	void (*events)(enum store_event, const char *, void *);
	void *events_arg;
	unsigned finishes;	/* finish() calls, each one failed */
} fake;

static char dir[] = "/tmp/check_work_queue.XXXXXX";
static char path[sizeof(dir) + 16];
static struct config *cfg;
static struct timer *timer;
static struct job_env env;

static void *
fake_open(const struct store_options *o, char *err, size_t errsize)
{
	(void)o;
	(void)err;
	(void)errsize;
	return &fake;
}

static int
fake_write_batch(void *b, const struct store_change *c, size_t n)
{
	(void)b;
	(void)c;
	(void)n;
	return 0;
}

static int
fake_get(void *b, const char *id, struct store_job *out)
{
	(void)b;
	(void)id;
	(void)out;
	return 1;
}

static int
fake_run_get(void *b, const char *id, struct store_run *out)
{
	(void)b;
	(void)id;
	(void)out;
	return 1;
}

static int
fake_list(void *b, const struct store_filter *f, uint64_t before,
	  size_t limit, struct store_job *out, uint64_t *next)
{
	(void)b;
	(void)f;
	(void)before;
	(void)limit;
	(void)out;
	*next = 0;
	return 0;
}

static int
fake_expire(void *b, int64_t before_ns)
{
	(void)b;
	(void)before_ns;
	return 0;
}

static int
fake_enqueue(void *b, const struct store_job *rec)
{
	(void)b;
	(void)rec;
	return 0;
}

/* The first claim waits for the test, then hands over one job. */
static int
fake_claim(void *b, size_t max, struct store_job *out)
{
	struct fake *f = b;
	int n = 0;

	ck_assert_uint_ge(max, 1);
	pthread_mutex_lock(&f->lock);
	if (f->twice && f->claims++ == 0) {
		for (n = 0; n < 2; n++) {
			memset(&out[n], 0, sizeof(out[n]));
			snprintf(out[n].id, sizeof(out[n].id),
				 "there-0badc0de-1");
			snprintf(out[n].job, sizeof(out[n].job), "long");
			out[n].state = STORE_RUNNING;
			out[n].attempt = (unsigned)n + 1;
			out[n].params = strdup("{}");
			ck_assert_ptr_nonnull(out[n].params);
		}
	} else if (f->twice) {
		/* nothing more */
	} else if (f->three && f->claims++ == 0) {
		for (n = 0; n < 3; n++) {
			memset(&out[n], 0, sizeof(out[n]));
			snprintf(out[n].id, sizeof(out[n].id),
				 "there-0badc0de-%d", n + 1);
			snprintf(out[n].job, sizeof(out[n].job), "quick");
			out[n].state = STORE_RUNNING;
			out[n].attempt = 1;
			out[n].params = strdup("{}");
			ck_assert_ptr_nonnull(out[n].params);
		}
	} else if (!f->three && f->claims++ == 0) {
		f->in_claim = true;
		pthread_cond_broadcast(&f->changed);
		while (!f->let_go)
			pthread_cond_wait(&f->changed, &f->lock);
		f->in_claim = false;
		memset(&out[0], 0, sizeof(out[0]));
		snprintf(out[0].id, sizeof(out[0].id), "there-0badc0de-1");
		snprintf(out[0].job, sizeof(out[0].job), "nap");
		out[0].state = STORE_RUNNING;
		out[0].attempt = 1;
		out[0].params = strdup("{}");
		ck_assert_ptr_nonnull(out[0].params);
		n = 1;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

static int
fake_renew(void *b, const char (*ids)[STORE_ID_MAX], size_t n)
{
	(void)b;
	(void)ids;
	(void)n;
	return 0;
}

/* The database does not answer (each call a timeout, in real life). */
static int
fake_finish(void *b, const struct store_job *rec)
{
	struct fake *f = b;

	(void)rec;
	pthread_mutex_lock(&f->lock);
	f->finishes++;
	pthread_mutex_unlock(&f->lock);
	errno = ETIMEDOUT;
	return -1;
}

static int
fake_cancel(void *b, const char *id)
{
	(void)b;
	(void)id;
	return 1;
}

static void
fake_set_events(void *b, void (*fn)(enum store_event, const char *, void *),
		void *arg)
{
	struct fake *f = b;

	pthread_mutex_lock(&f->lock);
	f->events = fn;
	f->events_arg = arg;
	pthread_mutex_unlock(&f->lock);
}

static void
fake_close(void *b)
{
	(void)b;
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.write_batch = fake_write_batch,
	.job_get = fake_get,
	.run_get = fake_run_get,
	.job_list = fake_list,
	.expire = fake_expire,
	.enqueue = fake_enqueue,
	.claim = fake_claim,
	.renew = fake_renew,
	.finish = fake_finish,
	.cancel = fake_cancel,
	.set_events = fake_set_events,
	.close = fake_close,
};

static const struct store_options options = {
	.backend = STORE_MEMORY,	/* no writer thread: not needed here */
	.instance = "here",
};

static struct config *
current_config(void *arg)
{
	return config_ref(arg);
}

static void
setup(void)
{
	struct config_error err;
	FILE *fp;

	pthread_mutex_init(&fake.lock, NULL);
	pthread_cond_init(&fake.changed, NULL);
	fake.in_claim = fake.let_go = false;
	fake.claims = fake.finishes = 0;
	fake.three = fake.twice = false;
	fake.events = NULL;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/wq.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs("[job nap]\nkind = sleep\nduration = 1s\n"
			       "[job quick]\nkind = sleep\nduration = 10ms\n"
			       "[job long]\nkind = sleep\nduration = 60s\n",
			       fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	cfg = config_load(path, &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
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
	pthread_cond_destroy(&fake.changed);
	pthread_mutex_destroy(&fake.lock);
}

START_TEST(test_a_claim_under_way_at_the_stop_starts_nothing)
{
	struct work_queue_options o;
	struct registry *reg = registry_new(100, INT64_C(60000000000));
	struct job_instance *inst;
	struct work_queue *q;
	struct store *s;
	char err[256] = "";

	ck_assert_ptr_nonnull(reg);
	s = store_open_with(&fake_ops, &options, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open_with: %s", err);
	memset(&o, 0, sizeof(o));
	o.store = s;
	o.env = &env;
	o.registry = reg;
	o.config = current_config;
	o.config_arg = cfg;
	o.capacity = 4;
	o.lease_ns = INT64_C(30000000000);
	q = work_queue_start(&o);
	ck_assert_ptr_nonnull(q);

	/* The runner's first look at the queue: it waits in the claim. */
	pthread_mutex_lock(&fake.lock);
	while (!fake.in_claim)
		pthread_cond_wait(&fake.changed, &fake.lock);
	pthread_mutex_unlock(&fake.lock);
	/* The stop begins; then the database answers. */
	work_queue_stop_claiming(q);
	pthread_mutex_lock(&fake.lock);
	fake.let_go = true;
	pthread_cond_broadcast(&fake.changed);
	pthread_mutex_unlock(&fake.lock);
	work_queue_stop(q);	/* joins the runner: it has done its part */

	ck_assert_uint_eq(work_queue_claimed(q), 0);
	inst = registry_find(reg, "there-0badc0de-1");
	ck_assert_msg(inst == NULL, "a job was started after the stop began");
	work_queue_free(q);
	store_close(s);
	registry_free(reg);
}
END_TEST

START_TEST(test_a_database_away_costs_one_call_a_pass)
{
	struct work_queue_options o;
	struct registry *reg = registry_new(100, INT64_C(60000000000));
	struct timespec pause = { 0, 1000000 };
	struct work_queue *q;
	struct store *s;
	char err[256] = "";
	int i;

	fake.three = true;
	ck_assert_ptr_nonnull(reg);
	s = store_open_with(&fake_ops, &options, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open_with: %s", err);
	memset(&o, 0, sizeof(o));
	o.store = s;
	o.env = &env;
	o.registry = reg;
	o.config = current_config;
	o.config_arg = cfg;
	o.capacity = 4;
	o.lease_ns = INT64_C(30000000000);	/* no tick in the test */
	q = work_queue_start(&o);
	ck_assert_ptr_nonnull(q);
	/* Until the three have run (the stop needs them completed). */
	for (i = 0; i < 5000 && registry_counts(reg).finished < 3; i++)
		nanosleep(&pause, NULL);
	ck_assert_uint_eq(registry_counts(reg).finished, 3);
	work_queue_stop(q);
	/*
	 * At most one pass per completion and the stop's, one call each;
	 * a call per job would be 3 in the stop's pass alone, 6 at least.
	 */
	pthread_mutex_lock(&fake.lock);
	ck_assert_uint_ge(fake.finishes, 1);
	ck_assert_uint_le(fake.finishes, 4);
	pthread_mutex_unlock(&fake.lock);
	work_queue_free(q);
	store_close(s);
	registry_free(reg);
}
END_TEST

/*
 * A lease that lapsed while this instance still ran the job (renewals
 * failed) can bring the same id back here at the next attempt: a cancel
 * stops both runs, not the first it finds.
 */
START_TEST(test_a_cancel_stops_every_run_of_its_id)
{
	struct work_queue_options o;
	struct registry *reg = registry_new(100, INT64_C(60000000000));
	struct timespec pause = { 0, 1000000 };
	struct work_queue *q;
	struct store *s;
	char err[256] = "";
	int i;

	fake.twice = true;
	ck_assert_ptr_nonnull(reg);
	s = store_open_with(&fake_ops, &options, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open_with: %s", err);
	memset(&o, 0, sizeof(o));
	o.store = s;
	o.env = &env;
	o.registry = reg;
	o.config = current_config;
	o.config_arg = cfg;
	o.capacity = 4;
	o.lease_ns = INT64_C(30000000000);
	q = work_queue_start(&o);
	ck_assert_ptr_nonnull(q);
	for (i = 0; i < 5000 && work_queue_claimed(q) < 2; i++)
		nanosleep(&pause, NULL);
	ck_assert_uint_eq(work_queue_claimed(q), 2);
	ck_assert_ptr_nonnull(fake.events);
	fake.events(STORE_EVENT_CANCEL, "there-0badc0de-1", fake.events_arg);
	/* Both end at once; a run left alone would take its 60 s. */
	for (i = 0; i < 5000 && registry_counts(reg).finished < 2; i++)
		nanosleep(&pause, NULL);
	ck_assert_uint_eq(registry_counts(reg).finished, 2);
	work_queue_stop(q);
	work_queue_free(q);
	store_close(s);
	registry_free(reg);
}
END_TEST

static Suite *
work_queue_suite(void)
{
	Suite *s = suite_create("work_queue");
	TCase *tc = tcase_create("stop");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_a_claim_under_way_at_the_stop_starts_nothing);
	tcase_add_test(tc, test_a_database_away_costs_one_call_a_pass);
	tcase_add_test(tc, test_a_cancel_stops_every_run_of_its_id);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(work_queue_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
