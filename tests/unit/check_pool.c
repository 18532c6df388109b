/*
 * check_pool.c - unit tests for src/pool.c.
 *
 * The contract is pool.h's: submissions run on worker threads and complete
 * their futures with what the work returned; submit never blocks (EAGAIN
 * when full); a queued submission can be cancelled and frees its slot at
 * once; release runs exactly once per accepted submission.
 *
 * Work that must stay put blocks on a gate the test opens later, so the
 * queue fills deterministically; nothing here depends on timing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* clock_gettime, pthread_sigmask under -std=c11 */
#endif

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "future.h"
#include "pool.h"

/* Work blocks on a gate until the test opens it. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool open;
	int entered;		/* work functions that reached the gate */
};

static void
gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->changed, NULL);
	g->open = false;
	g->entered = 0;
}

static void
gate_destroy(struct gate *g)
{
	pthread_cond_destroy(&g->changed);
	pthread_mutex_destroy(&g->lock);
}

static void
gate_pass(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->entered++;
	pthread_cond_broadcast(&g->changed);
	while (!g->open)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* Waits until n work functions are blocked on (or went through) g. */
static void
gate_wait_entered(struct gate *g, int n)
{
	pthread_mutex_lock(&g->lock);
	while (g->entered < n)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

/* One submission's argument, and what happened to it. */
struct job {
	struct gate *gate;		/* NULL: do not block */
	enum future_state state;	/* what the work returns */
	const char *result, *error;	/* strdup'd into the future */
	atomic_int ran;
	atomic_int released;
	pthread_t thread;		/* the worker that ran it */
	bool signals_blocked;		/* SIGTERM etc. blocked there */
	int order;			/* position among the runs */
	atomic_int *next_order;
};

static void
job_init(struct job *j, struct gate *g, const char *result)
{
	memset(j, 0, sizeof(*j));
	j->gate = g;
	j->state = FUTURE_SUCCEEDED;
	j->result = result;
	atomic_init(&j->ran, 0);
	atomic_init(&j->released, 0);
	j->order = -1;
}

static enum future_state
job_work(void *arg, char **result, char **error)
{
	struct job *j = arg;
	sigset_t mask;

	atomic_fetch_add(&j->ran, 1);
	j->thread = pthread_self();
	pthread_sigmask(SIG_BLOCK, NULL, &mask);
	j->signals_blocked = sigismember(&mask, SIGTERM) == 1 &&
			     sigismember(&mask, SIGINT) == 1 &&
			     sigismember(&mask, SIGHUP) == 1 &&
			     sigismember(&mask, SIGPIPE) == 1;
	if (j->next_order != NULL)
		j->order = atomic_fetch_add(j->next_order, 1);
	if (j->gate != NULL)
		gate_pass(j->gate);
	if (j->result != NULL)
		*result = strdup(j->result);
	if (j->error != NULL)
		*error = strdup(j->error);
	return j->state;
}

static void
job_release(void *arg)
{
	struct job *j = arg;

	atomic_fetch_add(&j->released, 1);
}

static struct future *
submit(struct pool *p, struct job *j)
{
	return pool_submit(p, job_work, job_release, j);
}

/* Blocks until f is complete, through a completion callback. */
struct done_wait {
	struct future_waiter waiter;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void
signal_done(struct future *f, void *arg)
{
	struct done_wait *d = arg;

	(void)f;
	pthread_mutex_lock(&d->lock);
	d->done = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void
wait_done(struct future *f)
{
	struct done_wait d;

	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	d.done = false;
	future_on_done(f, &d.waiter, signal_done, &d);
	pthread_mutex_lock(&d.lock);
	while (!d.done)
		pthread_cond_wait(&d.cond, &d.lock);
	pthread_mutex_unlock(&d.lock);
	pthread_cond_destroy(&d.cond);
	pthread_mutex_destroy(&d.lock);
}

/* ---- creation ------------------------------------------------------------ */

START_TEST(test_pool_new_refuses_zero_workers_or_a_zero_queue)
{
	errno = 0;
	ck_assert_ptr_null(pool_new(0, 8));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(pool_new(2, 0));
	ck_assert_int_eq(errno, EINVAL);
	pool_free(NULL);	/* allowed */
}
END_TEST

START_TEST(test_new_pool_is_idle)
{
	struct pool *p = pool_new(3, 8);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pool_queued(p), 0);
	ck_assert_uint_eq(pool_busy(p), 0);
	pool_free(p);
}
END_TEST

/* ---- running work -------------------------------------------------------- */

START_TEST(test_future_completes_with_the_state_result_and_error_the_work_returned)
{
	static const enum future_state terminal[] = {
		FUTURE_SUCCEEDED, FUTURE_FAILED, FUTURE_CANCELLED,
		FUTURE_TIMED_OUT,
	};
	struct pool *p = pool_new(2, 8);
	struct future *f;
	struct job j;

	job_init(&j, NULL, "the result");
	j.error = "the error";
	j.state = terminal[_i];
	f = submit(p, &j);
	ck_assert_ptr_nonnull(f);
	wait_done(f);
	ck_assert_int_eq(future_state(f), terminal[_i]);
	ck_assert_str_eq(future_result(f), "the result");
	ck_assert_str_eq(future_error(f), "the error");
	ck_assert_int_gt(future_times(f).started, 0);
	pool_free(p);
	ck_assert_int_eq(atomic_load(&j.ran), 1);
	ck_assert_int_eq(atomic_load(&j.released), 1);
	future_unref(f);
}
END_TEST

START_TEST(test_work_that_sets_no_strings_leaves_result_and_error_null)
{
	struct pool *p = pool_new(1, 8);
	struct future *f;
	struct job j;

	job_init(&j, NULL, NULL);
	f = submit(p, &j);
	wait_done(f);
	ck_assert_int_eq(future_state(f), FUTURE_SUCCEEDED);
	ck_assert_ptr_null(future_result(f));
	ck_assert_ptr_null(future_error(f));
	pool_free(p);
	future_unref(f);
}
END_TEST

START_TEST(test_work_runs_on_a_worker_thread_with_signals_blocked)
{
	struct pool *p = pool_new(1, 8);
	struct future *f;
	struct job j;

	job_init(&j, NULL, "x");
	f = submit(p, &j);
	wait_done(f);
	pool_free(p);
	ck_assert(!pthread_equal(j.thread, pthread_self()));
	ck_assert(j.signals_blocked);
	future_unref(f);
}
END_TEST

START_TEST(test_release_is_optional)
{
	struct pool *p = pool_new(1, 8);
	struct future *f;
	struct job j;

	job_init(&j, NULL, "no release");
	f = pool_submit(p, job_work, NULL, &j);
	ck_assert_ptr_nonnull(f);
	wait_done(f);
	ck_assert_str_eq(future_result(f), "no release");
	pool_free(p);
	future_unref(f);
}
END_TEST

START_TEST(test_a_single_worker_runs_submissions_in_fifo_order)
{
	enum { N = 20 };
	struct pool *p = pool_new(1, N + 1);
	struct future *fs[N + 1];
	struct job first, jobs[N];
	struct gate g;
	atomic_int next;
	int i;

	gate_init(&g);
	atomic_init(&next, 0);
	/* Hold the worker so that all N are queued before any runs. */
	job_init(&first, &g, NULL);
	fs[N] = submit(p, &first);
	gate_wait_entered(&g, 1);
	for (i = 0; i < N; i++) {
		job_init(&jobs[i], NULL, NULL);
		jobs[i].next_order = &next;
		fs[i] = submit(p, &jobs[i]);
		ck_assert_ptr_nonnull(fs[i]);
	}
	gate_open(&g);
	for (i = 0; i < N; i++)
		wait_done(fs[i]);
	pool_free(p);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(jobs[i].order, i);
		future_unref(fs[i]);
	}
	future_unref(fs[N]);
	gate_destroy(&g);
}
END_TEST

/*
 * Work that succeeds only if all `expected` jobs are running at the same
 * time.  The wait ends at one shared deadline, so that a serializing pool
 * fails the test in 10 s instead of hanging it.
 */
struct rendezvous {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int arrived, expected;
	struct timespec deadline;	/* CLOCK_REALTIME */
};

static enum future_state
meet_work(void *arg, char **result, char **error)
{
	struct rendezvous *rv = arg;
	bool all = true;

	(void)result;
	(void)error;
	pthread_mutex_lock(&rv->lock);
	rv->arrived++;
	pthread_cond_broadcast(&rv->changed);
	while (rv->arrived < rv->expected && all)
		if (pthread_cond_timedwait(&rv->changed, &rv->lock,
					   &rv->deadline) == ETIMEDOUT)
			all = rv->arrived >= rv->expected;
	pthread_mutex_unlock(&rv->lock);
	return all ? FUTURE_SUCCEEDED : FUTURE_FAILED;
}

START_TEST(test_workers_run_submissions_in_parallel)
{
	enum { WORKERS = 4 };
	struct pool *p = pool_new(WORKERS, WORKERS);
	struct future *fs[WORKERS];
	struct rendezvous rv;
	int i;

	pthread_mutex_init(&rv.lock, NULL);
	pthread_cond_init(&rv.changed, NULL);
	rv.arrived = 0;
	rv.expected = WORKERS;
	clock_gettime(CLOCK_REALTIME, &rv.deadline);
	rv.deadline.tv_sec += 10;
	for (i = 0; i < WORKERS; i++) {
		fs[i] = pool_submit(p, meet_work, NULL, &rv);
		ck_assert_ptr_nonnull(fs[i]);
	}
	for (i = 0; i < WORKERS; i++)
		wait_done(fs[i]);
	for (i = 0; i < WORKERS; i++) {
		/* FAILED means the work waited 10 s for its peers in vain. */
		ck_assert_int_eq(future_state(fs[i]), FUTURE_SUCCEEDED);
		future_unref(fs[i]);
	}
	pool_free(p);
	pthread_cond_destroy(&rv.changed);
	pthread_mutex_destroy(&rv.lock);
}
END_TEST

START_TEST(test_queued_and_busy_count_waiting_and_running_submissions)
{
	struct pool *p = pool_new(2, 8);
	struct future *fs[5];
	struct job jobs[5];
	struct gate g;
	int i;

	gate_init(&g);
	for (i = 0; i < 5; i++) {
		job_init(&jobs[i], &g, NULL);
		fs[i] = submit(p, &jobs[i]);
	}
	gate_wait_entered(&g, 2);	/* both workers hold one */
	ck_assert_uint_eq(pool_busy(p), 2);
	ck_assert_uint_eq(pool_queued(p), 3);
	gate_open(&g);
	for (i = 0; i < 5; i++) {
		wait_done(fs[i]);
		future_unref(fs[i]);
	}
	pool_free(p);
	gate_destroy(&g);
}
END_TEST

/* ---- a full queue -------------------------------------------------------- */

START_TEST(test_submit_fails_at_once_with_eagain_when_the_queue_is_full)
{
	struct pool *p = pool_new(1, 2);
	struct future *running, *queued[2];
	struct job blocker, jobs[2], rejected;
	struct gate g;
	int i;

	gate_init(&g);
	job_init(&blocker, &g, NULL);
	running = submit(p, &blocker);
	gate_wait_entered(&g, 1);	/* the only worker is held */
	for (i = 0; i < 2; i++) {
		job_init(&jobs[i], NULL, "queued");
		queued[i] = submit(p, &jobs[i]);
		ck_assert_ptr_nonnull(queued[i]);
	}
	ck_assert_uint_eq(pool_queued(p), 2);

	/* Would block forever here if submit waited for room. */
	job_init(&rejected, NULL, "rejected");
	errno = 0;
	ck_assert_ptr_null(submit(p, &rejected));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(pool_queued(p), 2);

	gate_open(&g);
	wait_done(running);
	for (i = 0; i < 2; i++) {
		wait_done(queued[i]);
		ck_assert_str_eq(future_result(queued[i]), "queued");
		future_unref(queued[i]);
	}
	pool_free(p);
	/* A refused submission is never run and never released. */
	ck_assert_int_eq(atomic_load(&rejected.ran), 0);
	ck_assert_int_eq(atomic_load(&rejected.released), 0);
	future_unref(running);
	gate_destroy(&g);
}
END_TEST

/* An allocator for the pool's items that counts its calls and fails. */
static atomic_int failing_allocs;

static void *
failing_calloc(size_t n, size_t size)
{
	(void)n;
	(void)size;
	atomic_fetch_add(&failing_allocs, 1);
	return NULL;
}

/*
 * A full queue refuses before allocating: an overloaded daemon answers
 * 503 without touching malloc, and the answer is EAGAIN even when memory
 * is short too.
 */
START_TEST(test_submit_to_a_full_queue_allocates_nothing)
{
	struct pool *p = pool_new(1, 1);
	struct future *running, *queued;
	struct job blocker, job, rejected;
	struct gate g;

	gate_init(&g);
	job_init(&blocker, &g, NULL);
	running = submit(p, &blocker);
	gate_wait_entered(&g, 1);
	job_init(&job, NULL, "queued");
	queued = submit(p, &job);
	ck_assert_ptr_nonnull(queued);

	atomic_init(&failing_allocs, 0);
	pool_set_allocator(p, failing_calloc);
	job_init(&rejected, NULL, "rejected");
	errno = 0;
	ck_assert_ptr_null(submit(p, &rejected));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(atomic_load(&failing_allocs), 0);

	/* With room, the allocator is used (and its failure reported). */
	gate_open(&g);
	wait_done(running);
	wait_done(queued);
	errno = 0;
	ck_assert_ptr_null(submit(p, &rejected));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(atomic_load(&failing_allocs), 1);
	ck_assert_uint_eq(pool_queued(p), 0);

	pool_free(p);
	ck_assert_int_eq(atomic_load(&rejected.released), 0);
	future_unref(queued);
	future_unref(running);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_submit_accepts_again_once_a_worker_takes_a_queued_item)
{
	struct pool *p = pool_new(1, 1);
	struct future *fs[3];
	struct job jobs[3];
	struct gate g;
	int i;

	gate_init(&g);
	for (i = 0; i < 3; i++)
		job_init(&jobs[i], &g, NULL);
	fs[0] = submit(p, &jobs[0]);
	ck_assert_ptr_nonnull(fs[0]);
	gate_wait_entered(&g, 1);	/* taken off the queue */
	fs[1] = submit(p, &jobs[1]);
	ck_assert_ptr_nonnull(fs[1]);
	ck_assert_ptr_null(submit(p, &jobs[2]));
	ck_assert_int_eq(errno, EAGAIN);
	gate_open(&g);
	wait_done(fs[1]);
	fs[2] = submit(p, &jobs[2]);
	ck_assert_ptr_nonnull(fs[2]);
	wait_done(fs[2]);
	pool_free(p);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(atomic_load(&jobs[i].released), 1);
		future_unref(fs[i]);
	}
	gate_destroy(&g);
}
END_TEST

/* ---- cancel -------------------------------------------------------------- */

/* A pool whose single worker is held by a gated job, with room for one. */
struct held_pool {
	struct pool *pool;
	struct gate gate;
	struct job blocker;
	struct future *running;
};

static void
held_pool_start(struct held_pool *h)
{
	h->pool = pool_new(1, 1);
	ck_assert_ptr_nonnull(h->pool);
	gate_init(&h->gate);
	job_init(&h->blocker, &h->gate, "blocker");
	h->running = submit(h->pool, &h->blocker);
	ck_assert_ptr_nonnull(h->running);
	gate_wait_entered(&h->gate, 1);
}

/* Opens the gate (if not yet), then frees the pool. */
static void
held_pool_finish(struct held_pool *h)
{
	gate_open(&h->gate);
	wait_done(h->running);
	pool_free(h->pool);
	ck_assert_int_eq(atomic_load(&h->blocker.released), 1);
	ck_assert_int_eq(future_state(h->running), FUTURE_SUCCEEDED);
	future_unref(h->running);
	gate_destroy(&h->gate);
}

START_TEST(test_cancel_of_a_queued_submission_cancels_its_future_and_never_runs_it)
{
	struct held_pool h;
	struct future *f;
	struct job j;

	held_pool_start(&h);
	job_init(&j, NULL, "never");
	f = submit(h.pool, &j);
	ck_assert(future_cancel(f));
	ck_assert_int_eq(future_state(f), FUTURE_CANCELLED);
	ck_assert_ptr_null(future_result(f));
	held_pool_finish(&h);	/* the worker is free to run it now */
	ck_assert_int_eq(atomic_load(&j.ran), 0);
	ck_assert_int_eq(future_times(f).started, 0);
	future_unref(f);
}
END_TEST

START_TEST(test_cancel_of_a_queued_submission_frees_its_queue_slot_at_once)
{
	struct held_pool h;
	struct future *cancelled, *next;
	struct job a, b;

	held_pool_start(&h);
	job_init(&a, NULL, "a");
	job_init(&b, NULL, "b");
	cancelled = submit(h.pool, &a);
	ck_assert_ptr_nonnull(cancelled);
	ck_assert_uint_eq(pool_queued(h.pool), 1);	/* full */
	ck_assert(future_cancel(cancelled));
	ck_assert_uint_eq(pool_queued(h.pool), 0);
	/* The worker is still held: only the cancel made room. */
	next = submit(h.pool, &b);
	ck_assert_ptr_nonnull(next);
	/* Let it run before pool_free() would cancel it. */
	gate_open(&h.gate);
	wait_done(next);
	held_pool_finish(&h);
	ck_assert_int_eq(future_state(next), FUTURE_SUCCEEDED);
	ck_assert_str_eq(future_result(next), "b");
	future_unref(cancelled);
	future_unref(next);
}
END_TEST

START_TEST(test_cancel_of_a_queued_submission_releases_its_arg_exactly_once)
{
	struct held_pool h;
	struct future *f;
	struct job j;

	held_pool_start(&h);
	job_init(&j, NULL, NULL);
	f = submit(h.pool, &j);
	ck_assert(future_cancel(f));
	ck_assert(!future_cancel(f));
	held_pool_finish(&h);
	ck_assert_int_eq(atomic_load(&j.released), 1);
	future_unref(f);
}
END_TEST

START_TEST(test_cancel_of_a_running_submission_returns_false_and_the_work_completes_it)
{
	struct held_pool h;

	held_pool_start(&h);
	ck_assert_int_eq(future_state(h.running), FUTURE_RUNNING);
	ck_assert(!future_cancel(h.running));
	ck_assert_int_eq(future_state(h.running), FUTURE_RUNNING);
	ck_assert_int_eq(atomic_load(&h.blocker.ran), 1);
	/* This checks the work completes it, and releases it once. */
	held_pool_finish(&h);
}
END_TEST

/* ---- pool_free ----------------------------------------------------------- */

static void *
pool_free_main(void *arg)
{
	pool_free(arg);
	return NULL;
}

START_TEST(test_pool_free_cancels_queued_submissions_and_waits_for_running_work)
{
	enum { QUEUED = 3 };
	struct pool *p = pool_new(1, QUEUED);
	struct future *running, *queued[QUEUED];
	struct job blocker, jobs[QUEUED];
	struct gate g;
	pthread_t freer;
	int i;

	gate_init(&g);
	job_init(&blocker, &g, "finished");
	running = submit(p, &blocker);
	gate_wait_entered(&g, 1);
	for (i = 0; i < QUEUED; i++) {
		job_init(&jobs[i], NULL, NULL);
		queued[i] = submit(p, &jobs[i]);
		ck_assert_ptr_nonnull(queued[i]);
	}
	ck_assert_int_eq(pthread_create(&freer, NULL, pool_free_main, p), 0);
	/* pool_free() cancels the queued ones while the worker is held... */
	for (i = 0; i < QUEUED; i++) {
		wait_done(queued[i]);
		ck_assert_int_eq(future_state(queued[i]), FUTURE_CANCELLED);
	}
	/* ...and cannot return before the running work does. */
	ck_assert_int_eq(future_state(running), FUTURE_RUNNING);
	gate_open(&g);
	ck_assert_int_eq(pthread_join(freer, NULL), 0);
	ck_assert_int_eq(future_state(running), FUTURE_SUCCEEDED);
	ck_assert_str_eq(future_result(running), "finished");
	ck_assert_int_eq(atomic_load(&blocker.released), 1);
	for (i = 0; i < QUEUED; i++) {
		ck_assert_int_eq(atomic_load(&jobs[i].ran), 0);
		ck_assert_int_eq(atomic_load(&jobs[i].released), 1);
		future_unref(queued[i]);
	}
	future_unref(running);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_submit_fails_with_eshutdown_while_the_pool_is_stopping)
{
	struct pool *p = pool_new(1, 1);
	struct future *running, *queued;
	struct job blocker, waiting, late;
	struct gate g;
	pthread_t freer;

	gate_init(&g);
	job_init(&blocker, &g, NULL);
	running = submit(p, &blocker);
	gate_wait_entered(&g, 1);
	job_init(&waiting, NULL, NULL);
	queued = submit(p, &waiting);
	ck_assert_int_eq(pthread_create(&freer, NULL, pool_free_main, p), 0);
	/* Once it cancelled the queued item, pool_free() is stopping the
	 * pool, and it waits for the held worker: p is still valid. */
	wait_done(queued);
	job_init(&late, NULL, NULL);
	errno = 0;
	ck_assert_ptr_null(submit(p, &late));
	ck_assert_int_eq(errno, ESHUTDOWN);
	gate_open(&g);
	ck_assert_int_eq(pthread_join(freer, NULL), 0);
	ck_assert_int_eq(atomic_load(&late.ran), 0);
	ck_assert_int_eq(atomic_load(&late.released), 0);
	future_unref(queued);
	future_unref(running);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_pool_free_of_an_idle_pool_joins_its_workers)
{
	struct pool *p = pool_new(4, 4);
	struct future *f;
	struct job j;

	ck_assert_ptr_nonnull(p);
	job_init(&j, NULL, NULL);
	f = submit(p, &j);
	wait_done(f);
	pool_free(p);	/* would hang if a worker never woke up to stop */
	future_unref(f);
}
END_TEST

/* ---- release, exactly once, under races --------------------------------- */

/*
 * Threads that submit quick work and cancel some of it at once, racing
 * the workers that take it off the queue.  The cancel can land before,
 * between or after a worker's take and start.
 */
#define STRESS_JOBS 20000

struct stress {
	struct pool *pool;
	struct job jobs[STRESS_JOBS];
	struct future *futures[STRESS_JOBS];
	bool cancelled[STRESS_JOBS];
	bool keep_futures;	/* keep refs for after pool_free */
};

struct stress_thread {
	struct stress *st;
	int begin, end;
	unsigned seed;
};

static void *
stress_main(void *arg)
{
	struct stress_thread *t = arg;
	struct stress *st = t->st;
	int i;

	for (i = t->begin; i < t->end; i++) {
		struct future *f;

		job_init(&st->jobs[i], NULL, NULL);
		f = submit(st->pool, &st->jobs[i]);
		st->futures[i] = f;
		if (f == NULL)
			continue;	/* queue full: EAGAIN, checked below */
		if (rand_r(&t->seed) % 2 == 0)
			st->cancelled[i] = future_cancel(f);
		if (!st->keep_futures) {
			future_unref(f);
			st->futures[i] = NULL;
		}
	}
	return NULL;
}

static void
stress_check(struct stress *st, bool was_accepted[])
{
	int i;

	for (i = 0; i < STRESS_JOBS; i++) {
		struct job *j = &st->jobs[i];

		if (!was_accepted[i]) {
			ck_assert_int_eq(atomic_load(&j->ran), 0);
			ck_assert_int_eq(atomic_load(&j->released), 0);
			continue;
		}
		ck_assert_int_eq(atomic_load(&j->released), 1);
		ck_assert_int_le(atomic_load(&j->ran), 1);
		if (st->cancelled[i])
			ck_assert_int_eq(atomic_load(&j->ran), 0);
	}
}

START_TEST(test_release_runs_exactly_once_per_accepted_submission_under_cancel_races)
{
	enum { THREADS = 2 };
	static struct stress st;
	static bool accepted[STRESS_JOBS];
	struct stress_thread t[THREADS];
	pthread_t threads[THREADS];
	int i, n_accepted = 0, n_cancelled = 0;

	memset(&st, 0, sizeof(st));
	st.pool = pool_new(2, 64);
	st.keep_futures = true;
	for (i = 0; i < THREADS; i++) {
		t[i].st = &st;
		t[i].begin = i * STRESS_JOBS / THREADS;
		t[i].end = (i + 1) * STRESS_JOBS / THREADS;
		t[i].seed = 12345u + (unsigned)i;
		ck_assert_int_eq(pthread_create(&threads[i], NULL,
						stress_main, &t[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pool_free(st.pool);
	for (i = 0; i < STRESS_JOBS; i++) {
		accepted[i] = st.futures[i] != NULL;
		if (!accepted[i])
			continue;
		n_accepted++;
		n_cancelled += st.cancelled[i];
		/* After pool_free(), every accepted submission has ended. */
		ck_assert(future_state_is_done(future_state(st.futures[i])));
		if (st.cancelled[i])
			ck_assert_int_eq(future_state(st.futures[i]),
					 FUTURE_CANCELLED);
		future_unref(st.futures[i]);
	}
	stress_check(&st, accepted);
	ck_assert_int_gt(n_accepted, 0);
	ck_assert_int_gt(n_cancelled, 0);
}
END_TEST

/* Cancels every future of the stress run, last first. */
static void *
cancel_all_main(void *arg)
{
	struct stress *st = arg;
	int i;

	for (i = STRESS_JOBS - 1; i >= 0; i--)
		if (st->futures[i] != NULL && future_cancel(st->futures[i]))
			st->cancelled[i] = true;
	return NULL;
}

START_TEST(test_cancels_racing_pool_free_release_each_submission_exactly_once)
{
	static struct stress st;
	static bool accepted[STRESS_JOBS];
	pthread_t canceller;
	int i;

	memset(&st, 0, sizeof(st));
	st.pool = pool_new(2, STRESS_JOBS);
	for (i = 0; i < STRESS_JOBS; i++) {
		job_init(&st.jobs[i], NULL, NULL);
		st.futures[i] = submit(st.pool, &st.jobs[i]);
		ck_assert_ptr_nonnull(st.futures[i]);
		accepted[i] = true;
	}
	ck_assert_int_eq(pthread_create(&canceller, NULL, cancel_all_main,
					&st), 0);
	pool_free(st.pool);
	pthread_join(canceller, NULL);
	for (i = 0; i < STRESS_JOBS; i++) {
		ck_assert(future_state_is_done(future_state(st.futures[i])));
		future_unref(st.futures[i]);
	}
	stress_check(&st, accepted);
}
END_TEST

static Suite *
pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc;

	tc = tcase_create("work");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pool_new_refuses_zero_workers_or_a_zero_queue);
	tcase_add_test(tc, test_new_pool_is_idle);
	tcase_add_loop_test(tc, test_future_completes_with_the_state_result_and_error_the_work_returned, 0, 4);
	tcase_add_test(tc, test_work_that_sets_no_strings_leaves_result_and_error_null);
	tcase_add_test(tc, test_work_runs_on_a_worker_thread_with_signals_blocked);
	tcase_add_test(tc, test_release_is_optional);
	tcase_add_test(tc, test_a_single_worker_runs_submissions_in_fifo_order);
	tcase_add_test(tc, test_workers_run_submissions_in_parallel);
	tcase_add_test(tc, test_queued_and_busy_count_waiting_and_running_submissions);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_submit_fails_at_once_with_eagain_when_the_queue_is_full);
	tcase_add_test(tc, test_submit_to_a_full_queue_allocates_nothing);
	tcase_add_test(tc, test_submit_accepts_again_once_a_worker_takes_a_queued_item);
	tcase_add_test(tc, test_cancel_of_a_queued_submission_cancels_its_future_and_never_runs_it);
	tcase_add_test(tc, test_cancel_of_a_queued_submission_frees_its_queue_slot_at_once);
	tcase_add_test(tc, test_cancel_of_a_queued_submission_releases_its_arg_exactly_once);
	tcase_add_test(tc, test_cancel_of_a_running_submission_returns_false_and_the_work_completes_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("shutdown");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pool_free_cancels_queued_submissions_and_waits_for_running_work);
	tcase_add_test(tc, test_submit_fails_with_eshutdown_while_the_pool_is_stopping);
	tcase_add_test(tc, test_pool_free_of_an_idle_pool_joins_its_workers);
	suite_add_tcase(s, tc);

	/* Thousands of submissions racing cancels: slow under TSan/valgrind. */
	tc = tcase_create("races");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_release_runs_exactly_once_per_accepted_submission_under_cancel_races, 0, 3);
	tcase_add_test(tc, test_cancels_racing_pool_free_release_each_submission_exactly_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
