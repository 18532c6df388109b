/*
 * check_registry.c - job instances by id: add and find, the move from live
 * to finished, the bound and its eviction order, expiry, the walk over
 * the live ones, and the listing (order, filters, cursor, bound).
 *
 * Instances come from job_new() on a one-job config; no job is run: each
 * test completes the futures itself with future_complete(), which is what
 * moves an instance to the finished list.  Every reference a test takes is
 * given back, so the sanitizer build's leak check covers the registry's own.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "future.h"
#include "job.h"
#include "kinds/kinds.h"
#include "registry.h"
#include "timer.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)
#define MAX_JOBS_MIN 16		/* the smallest max_jobs config allows */
#define HOUR_NS (3600 * NS_PER_S)

/* ---- fixtures and helpers ------------------------------------------------ */

static struct config *cfg;
static const struct job_def *def, *def_y;
static struct timer *timer;
static struct job_env env;

/* Loads a config with one sleep job, x, from a file in a temporary dir. */
static struct config *
load_config(void)
{
	static const char text[] = "[job x]\nkind = sleep\nduration = 1s\n"
				   "[job y]\nkind = sleep\nduration = 1s\n";
	char dir[] = "/tmp/check_registry.XXXXXX";
	char path[sizeof(dir) + 16];
	struct config_error err;
	struct config *c;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.conf", dir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	c = config_load(path, &err);
	unlink(path);
	rmdir(dir);
	ck_assert_msg(c != NULL, "line %d: %s", err.line, err.text);
	return c;
}

static void
setup(void)
{
	cfg = load_config();
	def = config_find_job(cfg, "x");
	ck_assert_ptr_nonnull(def);
	def_y = config_find_job(cfg, "y");
	ck_assert_ptr_nonnull(def_y);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	job_env_init(&env, "t", timer, NULL);
	/* Completions would log a line each. */
	atomic_store(&env.log_jobs, false);
}

static void
teardown(void)
{
	timer_free(timer);
	config_unref(cfg);
}

/* A new instance of job x (a new reference, future QUEUED). */
static struct job_instance *
new_job(void)
{
	struct job_instance *inst = job_new(&env, cfg, def, NULL);

	ck_assert_ptr_nonnull(inst);
	return inst;
}

/* Completes inst's future, as the job's kind would. */
static void
complete(struct job_instance *inst)
{
	ck_assert(future_complete(inst->future, FUTURE_SUCCEEDED,
				  strdup("done"), NULL));
}

/* n new jobs, each added to r. */
static void
add_jobs(struct registry *r, struct job_instance **insts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		insts[i] = new_job();
		ck_assert_int_eq(registry_add(r, insts[i]), 0);
	}
}

static unsigned
refs_of(struct job_instance *inst)
{
	return atomic_load(&inst->refs);
}

/* True if r finds id (the reference find returns is given back). */
static bool
found(struct registry *r, const char *id)
{
	struct job_instance *inst = registry_find(r, id);

	job_unref(inst);
	return inst != NULL;
}

/*
 * Ends a test: completes what is still live (registry_free wants none),
 * frees the registry, and drops the test's own references, which must then
 * be the last ones.
 */
static void
finish(struct registry *r, struct job_instance **insts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!future_state_is_done(future_state(insts[i]->future)))
			complete(insts[i]);
	registry_free(r);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(refs_of(insts[i]), 1);
		job_unref(insts[i]);
	}
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- a job's own life (kind sleep, duration 1s) ------------------------ */

START_TEST(test_job_cancelled_before_it_starts_arms_no_timer)
{
	struct job_instance *inst = new_job();

	/* A stop can cancel it between registry_add() and job_run(). */
	ck_assert(job_cancel(inst));
	ck_assert_int_eq(job_run(inst), 0);
	ck_assert_int_eq(future_state(inst->future), FUTURE_CANCELLED);
	ck_assert_uint_eq(timer_pending(timer), 0);
	ck_assert_uint_eq(refs_of(inst), 1);
	job_unref(inst);
}
END_TEST

static void *
run_job(void *arg)
{
	ck_assert_int_eq(job_run(arg), 0);
	return NULL;
}

/*
 * The window between a sleep job's future_start() and its timer_add(),
 * held open by the env's test seam: the starting thread says it is there
 * and waits until the test lets it go on.  Events, not sleeps.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool in_window;
	bool released;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };

static void
hold_in_window(struct job_instance *inst)
{
	ck_assert_int_eq(future_state(inst->future), FUTURE_RUNNING);
	pthread_mutex_lock(&gate.lock);
	gate.in_window = true;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.released)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

/* Starts inst on thread *t and returns once it is held in the window. */
static void
start_into_window(struct job_instance *inst, pthread_t *t)
{
	gate.in_window = gate.released = false;
	env.test_after_start = hold_in_window;
	ck_assert_int_eq(pthread_create(t, NULL, run_job, inst), 0);
	pthread_mutex_lock(&gate.lock);
	while (!gate.in_window)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

/* Lets the held thread arm its timer, and waits until job_run() returned. */
static void
release_window(pthread_t t)
{
	pthread_mutex_lock(&gate.lock);
	gate.released = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	env.test_after_start = NULL;
}

/*
 * A stop cancels a job whose future has just started but whose timer is
 * not armed yet: future_cancel() cannot (RUNNING) and timer_cancel() has
 * nothing to disarm, so job_cancel() cannot complete it itself.  The
 * cancel must still win: the job ends CANCELLED, not succeeded a second
 * later, with no timer left armed and no reference left over.
 */
START_TEST(test_cancel_between_start_and_arming_ends_cancelled)
{
	struct job_instance *inst = new_job();
	pthread_t t;

	start_into_window(inst, &t);
	ck_assert(!job_cancel(inst));	/* proof that it came in the window */
	release_window(t);
	ck_assert_int_eq(future_state(inst->future), FUTURE_CANCELLED);
	ck_assert_uint_eq(timer_pending(timer), 0);
	ck_assert_uint_eq(refs_of(inst), 1);
	job_unref(inst);
}
END_TEST

/*
 * The other end of a sleep: the timer thread has taken the entry off the
 * heap (timer_cancel() now returns false) but not yet called it, and a
 * cancel comes.  Done here by hand, as the timer thread does it, so that
 * the order is forced: the callback must then end the job CANCELLED.
 */
START_TEST(test_cancel_after_the_timer_took_the_entry_ends_cancelled)
{
	struct job_instance *inst = new_job();

	ck_assert_int_eq(job_run(inst), 0);
	ck_assert(timer_cancel(timer, &inst->timer));	/* "popped" */
	ck_assert(!job_cancel(inst));
	ck_assert_int_eq(future_state(inst->future), FUTURE_RUNNING);
	inst->timer.cb(&inst->timer, true);	/* the timer thread goes on */
	ck_assert_int_eq(future_state(inst->future), FUTURE_CANCELLED);
	ck_assert_uint_eq(refs_of(inst), 1);
	job_unref(inst);
}
END_TEST

START_TEST(test_kind_names_come_from_the_table)
{
	ck_assert_str_eq(job_kind_names(), "sleep, exec, http, plugin");
	ck_assert_ptr_eq(job_kind_find("sleep"), &job_kind_sleep);
	ck_assert_ptr_eq(job_kind_find("plugin"), &job_kind_plugin);
	ck_assert_ptr_null(job_kind_find("teleport"));
}
END_TEST

/* ---- add and find ---------------------------------------------------------- */

START_TEST(test_add_takes_its_own_reference)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();

	ck_assert_int_eq(registry_add(r, a), 0);
	ck_assert_uint_eq(refs_of(a), 2);
	finish(r, &a, 1);
}
END_TEST

/* What an observer heard, in order: 'a' added, 'f' finished. */
struct heard {
	struct registry *r;
	char events[8];
	struct job_instance *inst[8];
	size_t n;
	bool lock_free;		/* the registry's lock was free each time */
};

static void
observe(enum registry_event ev, struct job_instance *inst, void *arg)
{
	struct heard *h = arg;

	ck_assert_uint_lt(h->n, 8);
	h->events[h->n] = ev == REGISTRY_ADDED ? 'a' : 'f';
	h->inst[h->n++] = inst;
	/* Without the lock: a call from here into the registry is fine. */
	h->lock_free = h->lock_free && registry_counts(h->r).live < 100;
}

START_TEST(test_observer_hears_added_then_finished_without_the_lock)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job(), *b = new_job();
	struct heard h = { r, "", { NULL }, 0, true };

	registry_set_observer(r, observe, &h);
	ck_assert_int_eq(registry_add(r, a), 0);
	ck_assert_uint_eq(h.n, 1);
	complete(a);
	/* A job complete before it is added: added, then finished at once. */
	complete(b);
	ck_assert_int_eq(registry_add(r, b), 0);
	ck_assert_uint_eq(h.n, 4);
	h.events[h.n] = '\0';
	ck_assert_str_eq(h.events, "afaf");
	ck_assert_ptr_eq(h.inst[0], a);
	ck_assert_ptr_eq(h.inst[1], a);
	ck_assert_ptr_eq(h.inst[2], b);
	ck_assert_ptr_eq(h.inst[3], b);
	ck_assert(h.lock_free);
	/* Expiry drops a finished one: nothing more is heard. */
	ck_assert_uint_eq(registry_expire(r, INT64_MAX, 10), 2);
	ck_assert_uint_eq(h.n, 4);
	registry_free(r);
	job_unref(a);
	job_unref(b);
}
END_TEST

START_TEST(test_find_returns_a_new_reference_to_the_same_instance)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job(), *got;

	ck_assert_int_eq(registry_add(r, a), 0);
	got = registry_find(r, a->id);
	ck_assert_ptr_eq(got, a);
	ck_assert_str_eq(got->id, a->id);
	ck_assert_uint_eq(refs_of(a), 3);
	job_unref(got);
	ck_assert_uint_eq(refs_of(a), 2);
	finish(r, &a, 1);
}
END_TEST

START_TEST(test_find_tells_apart_several_instances)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[3], *got;
	size_t i;

	add_jobs(r, insts, 3);
	ck_assert_str_ne(insts[0]->id, insts[1]->id);
	for (i = 0; i < 3; i++) {
		got = registry_find(r, insts[i]->id);
		ck_assert_ptr_eq(got, insts[i]);
		job_unref(got);
	}
	finish(r, insts, 3);
}
END_TEST

START_TEST(test_find_of_unknown_id_returns_null)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();
	char longer[JOB_ID_MAX + 1], shorter[JOB_ID_MAX];

	ck_assert_ptr_null(registry_find(r, a->id));	/* not added yet */
	ck_assert_int_eq(registry_add(r, a), 0);
	snprintf(longer, sizeof(longer), "%s0", a->id);
	snprintf(shorter, sizeof(shorter), "%.*s", (int)strlen(a->id) - 1,
		 a->id);
	ck_assert_ptr_null(registry_find(r, longer));
	ck_assert_ptr_null(registry_find(r, shorter));
	ck_assert_ptr_null(registry_find(r, ""));
	ck_assert_ptr_null(registry_find(r, "t-zzzzzzzz-1"));
	ck_assert_uint_eq(refs_of(a), 2);
	finish(r, &a, 1);
}
END_TEST

START_TEST(test_finished_job_is_still_found)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job(), *got;

	ck_assert_int_eq(registry_add(r, a), 0);
	complete(a);
	got = registry_find(r, a->id);
	ck_assert_ptr_eq(got, a);
	ck_assert_str_eq(future_result(got->future), "done");
	job_unref(got);
	finish(r, &a, 1);
}
END_TEST

/* ---- live and finished ------------------------------------------------------ */

START_TEST(test_new_registry_counts_nothing)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct registry_counts n = registry_counts(r);

	ck_assert_uint_eq(n.live, 0);
	ck_assert_uint_eq(n.finished, 0);
	registry_free(r);
}
END_TEST

START_TEST(test_completing_a_job_moves_it_from_live_to_finished)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[2] = { new_job(), new_job() };
	struct registry_counts n;

	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	ck_assert_int_eq(registry_add(r, insts[1]), 0);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 2);
	ck_assert_uint_eq(n.finished, 0);
	complete(insts[1]);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 1);
	ck_assert_uint_eq(n.finished, 1);
	finish(r, insts, 2);
}
END_TEST

START_TEST(test_every_terminal_state_counts_as_finished)
{
	static const enum future_state states[] = {
		FUTURE_SUCCEEDED, FUTURE_FAILED, FUTURE_CANCELLED,
		FUTURE_TIMED_OUT,
	};
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[4];
	struct registry_counts n;
	size_t i;

	for (i = 0; i < 4; i++) {
		insts[i] = new_job();
		ck_assert_int_eq(registry_add(r, insts[i]), 0);
		ck_assert(future_complete(insts[i]->future, states[i], NULL,
					  NULL));
	}
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 0);
	ck_assert_uint_eq(n.finished, 4);
	finish(r, insts, 4);
}
END_TEST

START_TEST(test_job_completed_before_add_is_finished_at_once)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();
	struct registry_counts n;

	complete(a);
	ck_assert_int_eq(registry_add(r, a), 0);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 0);
	ck_assert_uint_eq(n.finished, 1);
	ck_assert(found(r, a->id));
	finish(r, &a, 1);
}
END_TEST

/* ---- the bound ------------------------------------------------------------- */

/* Adds MAX_JOBS_MIN new instances to r, all live, into insts. */
static void
fill(struct registry *r, struct job_instance **insts)
{
	add_jobs(r, insts, MAX_JOBS_MIN);
}

START_TEST(test_add_to_registry_full_of_live_jobs_fails_with_EAGAIN)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 1];
	struct registry_counts n;

	fill(r, insts);
	insts[MAX_JOBS_MIN] = new_job();
	errno = 0;
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN]), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* Refused means untouched: not held, not found, not counted. */
	ck_assert_uint_eq(refs_of(insts[MAX_JOBS_MIN]), 1);
	ck_assert(!found(r, insts[MAX_JOBS_MIN]->id));
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, MAX_JOBS_MIN);
	ck_assert_uint_eq(n.finished, 0);
	finish(r, insts, MAX_JOBS_MIN + 1);
}
END_TEST

START_TEST(test_add_to_full_registry_evicts_the_oldest_finished)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 1];
	struct registry_counts n;

	fill(r, insts);
	complete(insts[3]);
	complete(insts[7]);
	insts[MAX_JOBS_MIN] = new_job();
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN]), 0);
	ck_assert(!found(r, insts[3]->id));
	ck_assert_uint_eq(refs_of(insts[3]), 1);	/* the registry's is gone */
	ck_assert(found(r, insts[7]->id));
	ck_assert(found(r, insts[MAX_JOBS_MIN]->id));
	ck_assert(found(r, insts[0]->id));
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, MAX_JOBS_MIN - 1);
	ck_assert_uint_eq(n.finished, 1);
	finish(r, insts, MAX_JOBS_MIN + 1);
}
END_TEST

START_TEST(test_eviction_follows_finish_order_not_add_order)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 2];

	fill(r, insts);
	complete(insts[9]);	/* finished first, added later */
	complete(insts[2]);
	insts[MAX_JOBS_MIN] = new_job();
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN]), 0);
	ck_assert(!found(r, insts[9]->id));
	ck_assert(found(r, insts[2]->id));
	insts[MAX_JOBS_MIN + 1] = new_job();
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN + 1]), 0);
	ck_assert(!found(r, insts[2]->id));
	finish(r, insts, MAX_JOBS_MIN + 2);
}
END_TEST

START_TEST(test_add_fails_again_once_evictions_used_up_the_finished)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 2];
	struct registry_counts n;

	fill(r, insts);
	complete(insts[0]);
	insts[MAX_JOBS_MIN] = new_job();
	insts[MAX_JOBS_MIN + 1] = new_job();
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN]), 0);
	errno = 0;
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN + 1]), -1);
	ck_assert_int_eq(errno, EAGAIN);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, MAX_JOBS_MIN);
	ck_assert_uint_eq(n.finished, 0);
	finish(r, insts, MAX_JOBS_MIN + 2);
}
END_TEST

START_TEST(test_lowered_limit_applies_at_the_next_add)
{
	struct registry *r = registry_new(2 * MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 1];

	fill(r, insts);
	registry_set_limits(r, MAX_JOBS_MIN, HOUR_NS);
	insts[MAX_JOBS_MIN] = new_job();
	errno = 0;
	ck_assert_int_eq(registry_add(r, insts[MAX_JOBS_MIN]), -1);
	ck_assert_int_eq(errno, EAGAIN);
	finish(r, insts, MAX_JOBS_MIN + 1);
}
END_TEST

/*
 * A reload that lowers max_jobs takes effect at once: the finished jobs
 * over the new bound go, the oldest first, instead of one per later add.
 */
START_TEST(test_lowered_limit_evicts_the_oldest_finished_down_to_it_at_once)
{
	struct registry *r = registry_new(4 * MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[4 * MAX_JOBS_MIN];
	struct registry_counts n;
	size_t i;

	add_jobs(r, insts, 4 * MAX_JOBS_MIN);
	for (i = 0; i < 4 * MAX_JOBS_MIN; i++)
		complete(insts[i]);
	ck_assert_uint_eq(registry_set_limits(r, MAX_JOBS_MIN, HOUR_NS),
			  3 * MAX_JOBS_MIN);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 0);
	ck_assert_uint_eq(n.finished, MAX_JOBS_MIN);
	for (i = 0; i < 4 * MAX_JOBS_MIN; i++) {
		ck_assert(found(r, insts[i]->id) == (i >= 3 * MAX_JOBS_MIN));
		if (i < 3 * MAX_JOBS_MIN)	/* the registry's is gone */
			ck_assert_uint_eq(refs_of(insts[i]), 1);
	}
	finish(r, insts, 4 * MAX_JOBS_MIN);
}
END_TEST

START_TEST(test_lowered_limit_never_evicts_live_jobs)
{
	struct registry *r = registry_new(4 * MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[4 * MAX_JOBS_MIN];
	struct registry_counts n;
	size_t i;

	add_jobs(r, insts, 4 * MAX_JOBS_MIN);
	/* Three quarters finish: the live quarter alone exceeds the bound. */
	for (i = 0; i < 3 * MAX_JOBS_MIN; i++)
		complete(insts[i]);
	ck_assert_uint_eq(registry_set_limits(r, MAX_JOBS_MIN / 2, HOUR_NS),
			  3 * MAX_JOBS_MIN);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, MAX_JOBS_MIN);
	ck_assert_uint_eq(n.finished, 0);
	for (i = 3 * MAX_JOBS_MIN; i < 4 * MAX_JOBS_MIN; i++)
		ck_assert(found(r, insts[i]->id));
	finish(r, insts, 4 * MAX_JOBS_MIN);
}
END_TEST

/*
 * Jobs that were live when the bound was lowered finish over it; the next
 * add brings the registry back under the bound, not just one below where
 * it was.
 */
START_TEST(test_add_over_a_lowered_limit_evicts_down_to_it)
{
	struct registry *r = registry_new(4 * MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[2 * MAX_JOBS_MIN + 1];
	struct registry_counts n;
	size_t i;

	add_jobs(r, insts, 2 * MAX_JOBS_MIN);
	ck_assert_uint_eq(registry_set_limits(r, MAX_JOBS_MIN, HOUR_NS), 0);
	for (i = 0; i < 2 * MAX_JOBS_MIN; i++)
		complete(insts[i]);
	insts[2 * MAX_JOBS_MIN] = new_job();
	ck_assert_int_eq(registry_add(r, insts[2 * MAX_JOBS_MIN]), 0);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 1);
	ck_assert_uint_eq(n.finished, MAX_JOBS_MIN - 1);
	for (i = 0; i <= 2 * MAX_JOBS_MIN; i++)
		ck_assert(found(r, insts[i]->id) == (i > MAX_JOBS_MIN));
	finish(r, insts, 2 * MAX_JOBS_MIN + 1);
}
END_TEST

/* ---- expiry ------------------------------------------------------------------ */

START_TEST(test_expire_with_retain_0_drops_every_finished_job)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, 0);
	struct job_instance *insts[3];
	struct registry_counts n;

	add_jobs(r, insts, 3);
	complete(insts[0]);
	complete(insts[2]);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), SIZE_MAX), 2);
	ck_assert(!found(r, insts[0]->id));
	ck_assert(!found(r, insts[2]->id));
	ck_assert(found(r, insts[1]->id));
	ck_assert_uint_eq(refs_of(insts[0]), 1);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 1);
	ck_assert_uint_eq(n.finished, 0);
	finish(r, insts, 3);
}
END_TEST

START_TEST(test_expire_drops_at_most_max_the_oldest_first)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, 0);
	struct job_instance *insts[5];

	add_jobs(r, insts, 5);
	/* Finished in the order 3, 1, 4, 0, 2. */
	complete(insts[3]);
	complete(insts[1]);
	complete(insts[4]);
	complete(insts[0]);
	complete(insts[2]);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), 2), 2);
	ck_assert(!found(r, insts[3]->id));
	ck_assert(!found(r, insts[1]->id));
	ck_assert(found(r, insts[4]->id));
	ck_assert_uint_eq(registry_counts(r).finished, 3);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), 2), 2);
	ck_assert(!found(r, insts[4]->id));
	ck_assert(!found(r, insts[0]->id));
	ck_assert(found(r, insts[2]->id));
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), 2), 1);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), 2), 0);
	ck_assert_uint_eq(registry_counts(r).finished, 0);
	finish(r, insts, 5);
}
END_TEST

START_TEST(test_expire_keeps_jobs_finished_less_than_retain_ago)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();

	ck_assert_int_eq(registry_add(r, a), 0);
	complete(a);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), SIZE_MAX), 0);
	ck_assert(found(r, a->id));
	ck_assert_uint_eq(registry_counts(r).finished, 1);
	finish(r, &a, 1);
}
END_TEST

START_TEST(test_expire_drops_jobs_once_retain_has_passed)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();

	ck_assert_int_eq(registry_add(r, a), 0);
	complete(a);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns() + HOUR_NS,
					  SIZE_MAX), 1);
	ck_assert(!found(r, a->id));
	ck_assert_uint_eq(registry_counts(r).finished, 0);
	finish(r, &a, 1);
}
END_TEST

START_TEST(test_expire_drops_only_jobs_finished_more_than_retain_ago)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, NS_PER_S);
	struct job_instance *insts[2] = { new_job(), new_job() };
	int64_t between;

	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	ck_assert_int_eq(registry_add(r, insts[1]), 0);
	complete(insts[0]);
	sleep_ms(5);
	between = timer_now_ns();
	sleep_ms(5);
	complete(insts[1]);
	/* One second after `between`: the first is older than that. */
	ck_assert_uint_eq(registry_expire(r, between + NS_PER_S, SIZE_MAX), 1);
	ck_assert(!found(r, insts[0]->id));
	ck_assert(found(r, insts[1]->id));
	ck_assert_uint_eq(registry_counts(r).finished, 1);
	finish(r, insts, 2);
}
END_TEST

START_TEST(test_expire_never_drops_live_jobs)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, 0);
	struct job_instance *insts[2] = { new_job(), new_job() };
	struct registry_counts n;

	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	ck_assert_int_eq(registry_add(r, insts[1]), 0);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns() + 24 * HOUR_NS,
					  SIZE_MAX), 0);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, 2);
	ck_assert_uint_eq(n.finished, 0);
	ck_assert(found(r, insts[0]->id));
	finish(r, insts, 2);
}
END_TEST

START_TEST(test_raised_retain_applies_at_the_next_expire)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, 0);
	struct job_instance *a = new_job();

	ck_assert_int_eq(registry_add(r, a), 0);
	complete(a);
	registry_set_limits(r, MAX_JOBS_MIN, HOUR_NS);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), SIZE_MAX), 0);
	ck_assert(found(r, a->id));
	finish(r, &a, 1);
}
END_TEST

/* ---- the listing ------------------------------------------------------------ */

#define LIST_MAX 128

static struct registry_entry entries[LIST_MAX];

/*
 * One page into entries[]: the seqs listed into seqs[] (if not NULL), the
 * references given back at once.  Returns how many; *next as
 * registry_list() sets it.
 */
static size_t
list_page(struct registry *r, const char *job, unsigned states,
	  uint64_t before, size_t limit, size_t examine, uint64_t *seqs,
	  uint64_t *next)
{
	struct registry_filter f = { job, states };
	size_t n, i;

	ck_assert_uint_le(limit, LIST_MAX);
	n = registry_list(r, &f, before, limit, examine, entries, next);
	ck_assert_uint_le(n, limit);
	for (i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(entries[i].inst);
		if (seqs != NULL)
			seqs[i] = entries[i].inst->seq;
		if (i > 0)
			ck_assert_uint_lt(entries[i].inst->seq,
					  entries[i - 1].inst->seq);
		ck_assert_uint_lt(entries[i].inst->seq, before == 0 ?
				  UINT64_MAX : before);
		job_unref(entries[i].inst);
	}
	return n;
}

START_TEST(test_list_is_newest_first_across_live_and_finished)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[5];
	uint64_t seqs[5], next = 99;
	size_t i;

	add_jobs(r, insts, 5);
	complete(insts[3]);	/* finish order is not creation order */
	complete(insts[0]);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 10, 100, seqs, &next), 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(seqs[i], insts[4 - i]->seq);
	ck_assert_uint_eq(next, 0);
	finish(r, insts, 5);
}
END_TEST

/* The seq is the number the id ends with: creation order in the daemon. */
START_TEST(test_instance_seq_is_the_number_its_id_ends_with)
{
	struct job_instance *a = new_job(), *b = new_job();
	char want[32];

	ck_assert_uint_gt(b->seq, a->seq);
	snprintf(want, sizeof(want), "-%llu", (unsigned long long)a->seq);
	ck_assert_str_eq(a->id + strlen(a->id) - strlen(want), want);
	job_unref(a);
	job_unref(b);
}
END_TEST

START_TEST(test_list_holds_a_reference_on_each_entry_and_a_snapshot)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct registry_filter all = { NULL, 0 };
	struct job_instance *insts[2];
	uint64_t next;

	add_jobs(r, insts, 2);
	complete(insts[0]);
	ck_assert_uint_eq(registry_list(r, &all, 0, 2, 100, entries, &next), 2);
	ck_assert_ptr_eq(entries[0].inst, insts[1]);
	ck_assert_uint_eq(refs_of(insts[1]), 3);
	ck_assert_uint_eq(refs_of(insts[0]), 3);
	ck_assert_int_eq(entries[0].snap.state, FUTURE_QUEUED);
	ck_assert_int_eq(entries[1].snap.state, FUTURE_SUCCEEDED);
	ck_assert_str_eq(entries[1].snap.result, "done");
	job_unref(entries[0].inst);
	job_unref(entries[1].inst);
	finish(r, insts, 2);
}
END_TEST

START_TEST(test_list_pages_with_next_without_duplicate_or_gap)
{
	struct registry *r = registry_new(1000, HOUR_NS);
	struct job_instance *insts[40];
	uint64_t seqs[7], before = 0, next;
	size_t n, k = 40, pages = 0, i;

	add_jobs(r, insts, 40);
	for (i = 0; i < 40; i += 3)
		complete(insts[i]);
	do {
		n = list_page(r, NULL, 0, before, 7, 70, seqs, &next);
		pages++;
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(seqs[i], insts[--k]->seq);
		before = next;
	} while (next != 0);
	ck_assert_uint_eq(k, 0);
	ck_assert_uint_eq(pages, 6);	/* 5 of 7, and 5 */
	finish(r, insts, 40);
}
END_TEST

/* A page that ends on the oldest instance has no next. */
START_TEST(test_list_page_ending_on_the_oldest_has_no_next)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[6];
	uint64_t next;

	add_jobs(r, insts, 6);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 3, 100, NULL, &next), 3);
	ck_assert_uint_eq(next, insts[3]->seq);
	ck_assert_uint_eq(list_page(r, NULL, 0, next, 3, 100, NULL, &next), 3);
	ck_assert_uint_eq(next, 0);
	finish(r, insts, 6);
}
END_TEST

START_TEST(test_list_filters_by_job)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[6];
	uint64_t seqs[6], next;
	size_t i;

	for (i = 0; i < 6; i++) {
		insts[i] = job_new(&env, cfg, i % 3 == 0 ? def_y : def, NULL);
		ck_assert_ptr_nonnull(insts[i]);
		ck_assert_int_eq(registry_add(r, insts[i]), 0);
	}
	complete(insts[0]);
	ck_assert_uint_eq(list_page(r, "y", 0, 0, 10, 100, seqs, &next), 2);
	ck_assert_uint_eq(seqs[0], insts[3]->seq);
	ck_assert_uint_eq(seqs[1], insts[0]->seq);
	ck_assert_uint_eq(list_page(r, "x", 0, 0, 10, 100, NULL, &next), 4);
	ck_assert_uint_eq(list_page(r, "z", 0, 0, 10, 100, NULL, &next), 0);
	ck_assert_uint_eq(next, 0);
	finish(r, insts, 6);
}
END_TEST

#define S(x) REGISTRY_STATE(FUTURE_##x)

START_TEST(test_list_filters_by_state)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[7];
	uint64_t seqs[7], next;

	add_jobs(r, insts, 7);
	/* 0 queued, 1 running, 2 succeeded, 3 failed, 4 cancelled,
	 * 5 timed_out, 6 running */
	ck_assert(future_start(insts[1]->future));
	ck_assert(future_start(insts[6]->future));
	complete(insts[2]);
	ck_assert(future_complete(insts[3]->future, FUTURE_FAILED, NULL,
				  strdup("broke")));
	ck_assert(future_cancel(insts[4]->future));
	ck_assert(future_complete(insts[5]->future, FUTURE_TIMED_OUT, NULL,
				  NULL));
	ck_assert_uint_eq(list_page(r, NULL, S(RUNNING), 0, 10, 100, seqs,
				    &next), 2);
	ck_assert_uint_eq(seqs[0], insts[6]->seq);
	ck_assert_uint_eq(seqs[1], insts[1]->seq);
	ck_assert_uint_eq(list_page(r, NULL, S(QUEUED), 0, 10, 100, seqs,
				    &next), 1);
	ck_assert_uint_eq(seqs[0], insts[0]->seq);
	ck_assert_uint_eq(list_page(r, NULL, S(FAILED) | S(TIMED_OUT), 0, 10,
				    100, seqs, &next), 2);
	ck_assert_uint_eq(seqs[0], insts[5]->seq);
	ck_assert_uint_eq(seqs[1], insts[3]->seq);
	ck_assert_uint_eq(list_page(r, NULL, S(SUCCEEDED) | S(CANCELLED) |
				    S(QUEUED), 0, 10, 100, seqs, &next), 3);
	ck_assert_uint_eq(seqs[0], insts[4]->seq);
	ck_assert_uint_eq(list_page(r, "y", S(RUNNING), 0, 10, 100, NULL,
				    &next), 0);
	finish(r, insts, 7);
}
END_TEST

/*
 * Live instances pass the lock's coarse check for `running` (it cannot
 * tell queued from running) and are dropped by the precise one: their
 * references must be given back all the same.
 */
START_TEST(test_list_gives_back_the_references_of_what_the_filter_drops)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[3];
	uint64_t next;

	add_jobs(r, insts, 3);
	ck_assert_uint_eq(list_page(r, NULL, S(RUNNING), 0, 2, 100, NULL,
				    &next), 0);
	/* Short (empty), yet it goes on: two were looked at. */
	ck_assert_uint_eq(next, insts[1]->seq);
	ck_assert_uint_eq(refs_of(insts[0]), 2);
	ck_assert_uint_eq(refs_of(insts[1]), 2);
	ck_assert_uint_eq(refs_of(insts[2]), 2);
	finish(r, insts, 3);
}
END_TEST

START_TEST(test_list_cursor_stays_put_while_instances_are_added)
{
	struct registry *r = registry_new(1000, HOUR_NS);
	struct job_instance *insts[30];
	uint64_t seqs[10], next;
	size_t i;

	add_jobs(r, insts, 20);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 10, 100, NULL, &next), 10);
	add_jobs(r, insts + 20, 10);	/* newer than every one listed */
	ck_assert_uint_eq(list_page(r, NULL, 0, next, 10, 100, seqs, &next),
			  10);
	for (i = 0; i < 10; i++)
		ck_assert_uint_eq(seqs[i], insts[9 - i]->seq);
	ck_assert_uint_eq(next, 0);
	/* A new listing starts with them. */
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 1, 100, seqs, &next), 1);
	ck_assert_uint_eq(seqs[0], insts[29]->seq);
	finish(r, insts, 30);
}
END_TEST

/*
 * Between two pages the instance the cursor stands for expires, and
 * others above and below it: the next page starts right below it and
 * simply lacks the expired ones.
 */
START_TEST(test_list_cursor_stays_put_while_instances_expire)
{
	struct registry *r = registry_new(1000, 0);
	struct job_instance *insts[20];
	uint64_t seqs[20], next;
	size_t n, i;

	add_jobs(r, insts, 20);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 5, 100, NULL, &next), 5);
	ck_assert_uint_eq(next, insts[15]->seq);
	/* 15 (the cursor's), 12, 11 and 17 (listed already) finish. */
	complete(insts[15]);
	complete(insts[12]);
	complete(insts[11]);
	complete(insts[17]);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns(), 100), 4);
	n = list_page(r, NULL, 0, next, 20, 100, seqs, &next);
	ck_assert_uint_eq(n, 13);
	ck_assert_uint_eq(seqs[0], insts[14]->seq);
	ck_assert_uint_eq(seqs[1], insts[13]->seq);
	ck_assert_uint_eq(seqs[2], insts[10]->seq);
	for (i = 3; i < n; i++)
		ck_assert_uint_eq(seqs[i], insts[12 - i]->seq);
	ck_assert_uint_eq(next, 0);
	finish(r, insts, 20);
}
END_TEST

/* Likewise for instances pushed out by the bound. */
START_TEST(test_list_leaves_out_evicted_instances)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[MAX_JOBS_MIN + 2];
	uint64_t seqs[MAX_JOBS_MIN], next;

	add_jobs(r, insts, MAX_JOBS_MIN);
	complete(insts[5]);
	complete(insts[2]);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 10, 100, NULL, &next), 10);
	ck_assert_uint_eq(next, insts[6]->seq);
	add_jobs(r, insts + MAX_JOBS_MIN, 2);	/* evict 5, then 2 */
	ck_assert_uint_eq(list_page(r, NULL, 0, next, 10, 100, seqs, &next),
			  4);
	ck_assert_uint_eq(seqs[0], insts[4]->seq);
	ck_assert_uint_eq(seqs[1], insts[3]->seq);
	ck_assert_uint_eq(seqs[2], insts[1]->seq);
	ck_assert_uint_eq(seqs[3], insts[0]->seq);
	ck_assert_uint_eq(next, 0);
	finish(r, insts, MAX_JOBS_MIN + 2);
}
END_TEST

/* An add that comes after a newer instance's goes to its place. */
START_TEST(test_list_orders_by_creation_not_by_add)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[3];
	uint64_t seqs[3], next;

	insts[0] = new_job();
	insts[1] = new_job();
	insts[2] = new_job();
	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	ck_assert_int_eq(registry_add(r, insts[2]), 0);
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 1, 100, NULL, &next), 1);
	ck_assert_int_eq(registry_add(r, insts[1]), 0);	/* late */
	ck_assert_uint_eq(list_page(r, NULL, 0, 0, 3, 100, seqs, &next), 3);
	ck_assert_uint_eq(seqs[0], insts[2]->seq);
	ck_assert_uint_eq(seqs[1], insts[1]->seq);
	ck_assert_uint_eq(seqs[2], insts[0]->seq);
	finish(r, insts, 3);
}
END_TEST

/*
 * A filter that matches one instance in 1000: each page looks at no more
 * than `examine` of them, empty pages included, and the paging still
 * reaches it.
 */
START_TEST(test_list_looks_at_most_examine_instances_a_page)
{
	struct registry *r = registry_new(2000, HOUR_NS);
	static struct job_instance *insts[1001];
	uint64_t seqs[10], next, before = 0;
	size_t i, pages = 0, found_on = 0, n;

	insts[0] = job_new(&env, cfg, def_y, NULL);
	ck_assert_ptr_nonnull(insts[0]);
	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	add_jobs(r, insts + 1, 1000);
	do {
		n = list_page(r, "y", 0, before, 10, 100, seqs, &next);
		pages++;
		if (n > 0) {
			ck_assert_uint_eq(n, 1);
			ck_assert_uint_eq(seqs[0], insts[0]->seq);
			found_on = pages;
		} else {
			/* 100 looked at: the next page starts 100 lower. */
			ck_assert_uint_eq(next, insts[1000 - 100 * pages + 1]->seq);
		}
		before = next;
	} while (next != 0);
	ck_assert_uint_eq(pages, 11);	/* 1000 x, then y */
	ck_assert_uint_eq(found_on, 11);
	for (i = 0; i <= 1000; i++)
		ck_assert_uint_eq(refs_of(insts[i]), 2);
	finish(r, insts, 1001);
}
END_TEST


/* The other side of the concurrent listing test: adds, completes, expires. */
struct churn {
	struct registry *r;
	struct job_instance *insts[2000];
	atomic_size_t n;	/* added so far */
};

static void *
churn_thread(void *arg)
{
	struct churn *c = arg;
	size_t i;

	for (i = 0; i < 2000; i++) {
		c->insts[i] = new_job();
		ck_assert_int_eq(registry_add(c->r, c->insts[i]), 0);
		atomic_store(&c->n, i + 1);
		if (i >= 3)
			complete(c->insts[i - 3]);
		if (i % 16 == 0)
			registry_expire(c->r, timer_now_ns(), 8);
	}
	return NULL;
}

/*
 * Pages while another thread adds, completes and expires instances: each
 * paging is strictly newest first, never lists one twice, and gives back
 * every reference it took (for ThreadSanitizer, the lock discipline).
 */
START_TEST(test_list_pages_while_other_threads_change_the_registry)
{
	static struct churn c;
	pthread_t t;
	uint64_t before, next, prev;
	size_t n, i, pagings = 0;

	c.r = registry_new(100000, 0);
	atomic_init(&c.n, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, churn_thread, &c), 0);
	do {
		before = 0;
		prev = UINT64_MAX;
		do {
			struct registry_filter f = { NULL, pagings % 2 ?
				S(QUEUED) | S(SUCCEEDED) : 0 };

			n = registry_list(c.r, &f, before, 7, 20, entries,
					  &next);
			for (i = 0; i < n; i++) {
				ck_assert_uint_lt(entries[i].inst->seq, prev);
				prev = entries[i].inst->seq;
				job_unref(entries[i].inst);
			}
			before = next;
		} while (next != 0);
		pagings++;
	} while (pagings < 200 && atomic_load(&c.n) < 2000);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	finish(c.r, c.insts, atomic_load(&c.n));
}
END_TEST

/* ---- the walk over live jobs ---------------------------------------------------- */

struct visits {
	size_t n;
	struct job_instance *seen[8];
	unsigned refs[8];	/* each one's count during the call */
};

static void
visit(struct job_instance *inst, void *arg)
{
	struct visits *v = arg;

	ck_assert_uint_lt(v->n, 8);
	v->refs[v->n] = refs_of(inst);
	v->seen[v->n++] = inst;
}

static bool
visited(const struct visits *v, const struct job_instance *inst)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->seen[i] == inst)
			return true;
	return false;
}

START_TEST(test_foreach_live_visits_exactly_the_live_jobs)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[5];
	struct visits v = { 0 };

	add_jobs(r, insts, 5);
	complete(insts[1]);
	complete(insts[4]);
	ck_assert_uint_eq(registry_foreach_live(r, visit, &v), 3);
	ck_assert_uint_eq(v.n, 3);
	ck_assert(visited(&v, insts[0]));
	ck_assert(visited(&v, insts[2]));
	ck_assert(visited(&v, insts[3]));
	finish(r, insts, 5);
}
END_TEST

START_TEST(test_foreach_live_holds_a_reference_during_each_call)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();
	struct visits v = { 0 };

	ck_assert_int_eq(registry_add(r, a), 0);
	ck_assert_uint_eq(registry_foreach_live(r, visit, &v), 1);
	ck_assert_uint_eq(v.refs[0], 3);	/* ours, the registry's, the walk's */
	ck_assert_uint_eq(refs_of(a), 2);
	finish(r, &a, 1);
}
END_TEST

START_TEST(test_foreach_live_with_no_live_jobs_calls_nothing)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *a = new_job();
	struct visits v = { 0 };

	ck_assert_uint_eq(registry_foreach_live(r, visit, &v), 0);
	ck_assert_int_eq(registry_add(r, a), 0);
	complete(a);
	ck_assert_uint_eq(registry_foreach_live(r, visit, &v), 0);
	ck_assert_uint_eq(v.n, 0);
	finish(r, &a, 1);
}
END_TEST

/* ---- closing, as a stop does ---------------------------------------------------- */

START_TEST(test_add_after_close_fails_with_ESHUTDOWN)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[2] = { new_job(), new_job() };

	ck_assert_int_eq(registry_add(r, insts[0]), 0);
	registry_close(r);
	errno = 0;
	ck_assert_int_eq(registry_add(r, insts[1]), -1);
	ck_assert_int_eq(errno, ESHUTDOWN);
	ck_assert_uint_eq(refs_of(insts[1]), 1);
	ck_assert(!found(r, insts[1]->id));
	ck_assert(found(r, insts[0]->id));	/* the rest is as it was */
	ck_assert_uint_eq(registry_counts(r).live, 1);
	finish(r, insts, 2);
}
END_TEST

static void
cancel_visit(struct job_instance *inst, void *arg)
{
	(void)arg;
	job_cancel(inst);
}

/*
 * What daemon_stop() relies on: once closed, one cancel pass over the
 * live jobs ends every one of them, the queued, the armed, and one caught
 * between start and arming; and none can become live after the pass.
 */
START_TEST(test_one_cancel_pass_after_close_ends_every_live_job)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[4];
	pthread_t t;
	size_t i;

	add_jobs(r, insts, 3);
	ck_assert_int_eq(job_run(insts[1]), 0);		/* armed */
	start_into_window(insts[2], &t);		/* starting */
	registry_close(r);
	ck_assert_uint_eq(registry_foreach_live(r, cancel_visit, NULL), 3);
	release_window(t);
	insts[3] = new_job();				/* a late request */
	ck_assert_int_eq(registry_add(r, insts[3]), -1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(future_state(insts[i]->future),
				 FUTURE_CANCELLED);
	ck_assert_uint_eq(registry_counts(r).live, 0);
	ck_assert_uint_eq(timer_pending(timer), 0);
	finish(r, insts, 4);
}
END_TEST

/* ---- growth and teardown ------------------------------------------------------ */

#define MANY 5000

START_TEST(test_table_grows_and_still_finds_5000_jobs)
{
	struct registry *r = registry_new(2 * MANY, HOUR_NS);
	struct job_instance **insts = calloc(MANY, sizeof(*insts)), *got;
	struct registry_counts n;
	size_t i;

	ck_assert_ptr_nonnull(insts);
	add_jobs(r, insts, MANY);
	n = registry_counts(r);
	ck_assert_uint_eq(n.live, MANY);
	for (i = 0; i < MANY; i++) {
		got = registry_find(r, insts[i]->id);
		ck_assert_ptr_eq(got, insts[i]);
		job_unref(got);
	}
	/* Half of them finished, so the finished list is walked too. */
	for (i = 0; i < MANY; i += 2)
		complete(insts[i]);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns() + HOUR_NS, SIZE_MAX),
			  MANY / 2);
	for (i = 0; i < MANY; i++)
		ck_assert(found(r, insts[i]->id) == (i % 2 == 1));
	finish(r, insts, MANY);
	free(insts);
}
END_TEST

START_TEST(test_table_shrinks_after_a_burst_and_still_finds_the_rest)
{
	struct registry *r = registry_new(2 * MANY, HOUR_NS);
	struct job_instance **insts = calloc(MANY, sizeof(*insts));
	struct job_instance *late;
	size_t i;

	ck_assert_ptr_nonnull(insts);
	add_jobs(r, insts, MANY);
	/* It grew to hold them: more entries than buckets doubles it. */
	ck_assert_uint_ge(registry_buckets(r), MANY);
	/* All but the last ten finish and expire: the table shrinks. */
	for (i = 0; i < MANY - 10; i++)
		complete(insts[i]);
	ck_assert_uint_eq(registry_expire(r, timer_now_ns() + HOUR_NS, SIZE_MAX),
			  MANY - 10);
	ck_assert_uint_eq(registry_buckets(r), REGISTRY_MIN_BUCKETS);
	for (i = 0; i < MANY; i++)
		ck_assert(found(r, insts[i]->id) == (i >= MANY - 10));
	late = new_job();
	ck_assert_int_eq(registry_add(r, late), 0);
	ck_assert(found(r, late->id));
	complete(late);
	registry_expire(r, timer_now_ns() + HOUR_NS, SIZE_MAX);
	ck_assert(!found(r, late->id));
	job_unref(late);
	finish(r, insts, MANY);
	free(insts);
}
END_TEST

/* More than one batch of evictions (4,096) on a lowered bound. */
START_TEST(test_lowered_limit_evicts_5000_finished_jobs_in_batches)
{
	struct registry *r = registry_new(2 * MANY, HOUR_NS);
	struct job_instance **insts = calloc(MANY, sizeof(*insts));
	struct registry_counts n;
	size_t i;

	ck_assert_ptr_nonnull(insts);
	add_jobs(r, insts, MANY);
	for (i = 0; i < MANY; i++)
		complete(insts[i]);
	ck_assert_uint_eq(registry_set_limits(r, MAX_JOBS_MIN, HOUR_NS),
			  MANY - MAX_JOBS_MIN);
	n = registry_counts(r);
	ck_assert_uint_eq(n.finished, MAX_JOBS_MIN);
	ck_assert_uint_eq(registry_buckets(r), REGISTRY_MIN_BUCKETS);
	for (i = 0; i < MANY; i++)
		ck_assert(found(r, insts[i]->id) == (i >= MANY - MAX_JOBS_MIN));
	finish(r, insts, MANY);
	free(insts);
}
END_TEST

START_TEST(test_free_with_only_finished_jobs_drops_their_references)
{
	struct registry *r = registry_new(MAX_JOBS_MIN, HOUR_NS);
	struct job_instance *insts[3];
	size_t i;

	for (i = 0; i < 3; i++) {
		insts[i] = new_job();
		ck_assert_int_eq(registry_add(r, insts[i]), 0);
		complete(insts[i]);
	}
	registry_free(r);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(refs_of(insts[i]), 1);
		job_unref(insts[i]);
	}
}
END_TEST

START_TEST(test_free_of_null_does_nothing)
{
	registry_free(NULL);
}
END_TEST

/* ---- the suite ----------------------------------------------------------------- */

static Suite *
registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc;

	tc = tcase_create("job");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_job_cancelled_before_it_starts_arms_no_timer);
	tcase_add_test(tc, test_cancel_between_start_and_arming_ends_cancelled);
	tcase_add_test(tc, test_cancel_after_the_timer_took_the_entry_ends_cancelled);
	tcase_add_test(tc, test_kind_names_come_from_the_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("find");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_takes_its_own_reference);
	tcase_add_test(tc, test_observer_hears_added_then_finished_without_the_lock);
	tcase_add_test(tc, test_find_returns_a_new_reference_to_the_same_instance);
	tcase_add_test(tc, test_find_tells_apart_several_instances);
	tcase_add_test(tc, test_find_of_unknown_id_returns_null);
	tcase_add_test(tc, test_finished_job_is_still_found);
	suite_add_tcase(s, tc);

	tc = tcase_create("counts");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_new_registry_counts_nothing);
	tcase_add_test(tc, test_completing_a_job_moves_it_from_live_to_finished);
	tcase_add_test(tc, test_every_terminal_state_counts_as_finished);
	tcase_add_test(tc, test_job_completed_before_add_is_finished_at_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("bound");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_to_registry_full_of_live_jobs_fails_with_EAGAIN);
	tcase_add_test(tc, test_add_to_full_registry_evicts_the_oldest_finished);
	tcase_add_test(tc, test_eviction_follows_finish_order_not_add_order);
	tcase_add_test(tc, test_add_fails_again_once_evictions_used_up_the_finished);
	tcase_add_test(tc, test_lowered_limit_applies_at_the_next_add);
	tcase_add_test(tc, test_lowered_limit_evicts_the_oldest_finished_down_to_it_at_once);
	tcase_add_test(tc, test_lowered_limit_never_evicts_live_jobs);
	tcase_add_test(tc, test_add_over_a_lowered_limit_evicts_down_to_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("expire");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_expire_with_retain_0_drops_every_finished_job);
	tcase_add_test(tc, test_expire_drops_at_most_max_the_oldest_first);
	tcase_add_test(tc, test_expire_keeps_jobs_finished_less_than_retain_ago);
	tcase_add_test(tc, test_expire_drops_jobs_once_retain_has_passed);
	tcase_add_test(tc, test_expire_drops_only_jobs_finished_more_than_retain_ago);
	tcase_add_test(tc, test_expire_never_drops_live_jobs);
	tcase_add_test(tc, test_raised_retain_applies_at_the_next_expire);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_instance_seq_is_the_number_its_id_ends_with);
	tcase_add_test(tc, test_list_is_newest_first_across_live_and_finished);
	tcase_add_test(tc, test_list_holds_a_reference_on_each_entry_and_a_snapshot);
	tcase_add_test(tc, test_list_pages_with_next_without_duplicate_or_gap);
	tcase_add_test(tc, test_list_page_ending_on_the_oldest_has_no_next);
	tcase_add_test(tc, test_list_filters_by_job);
	tcase_add_test(tc, test_list_filters_by_state);
	tcase_add_test(tc, test_list_gives_back_the_references_of_what_the_filter_drops);
	tcase_add_test(tc, test_list_cursor_stays_put_while_instances_are_added);
	tcase_add_test(tc, test_list_cursor_stays_put_while_instances_expire);
	tcase_add_test(tc, test_list_leaves_out_evicted_instances);
	tcase_add_test(tc, test_list_orders_by_creation_not_by_add);
	tcase_add_test(tc, test_list_looks_at_most_examine_instances_a_page);
	tcase_add_test(tc, test_list_pages_while_other_threads_change_the_registry);
	suite_add_tcase(s, tc);

	tc = tcase_create("foreach");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_foreach_live_visits_exactly_the_live_jobs);
	tcase_add_test(tc, test_foreach_live_holds_a_reference_during_each_call);
	tcase_add_test(tc, test_foreach_live_with_no_live_jobs_calls_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("close");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_add_after_close_fails_with_ESHUTDOWN);
	tcase_add_test(tc, test_one_cancel_pass_after_close_ends_every_live_job);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_checked_fixture(tc, setup, teardown);
	/* 5000 instances under ASan: allow more than Check's default 4 s. */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_table_grows_and_still_finds_5000_jobs);
	tcase_add_test(tc, test_table_shrinks_after_a_burst_and_still_finds_the_rest);
	tcase_add_test(tc, test_lowered_limit_evicts_5000_finished_jobs_in_batches);
	tcase_add_test(tc, test_free_with_only_finished_jobs_drops_their_references);
	tcase_add_test(tc, test_free_of_null_does_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(registry_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
