/*
 * run.c - see run.h.
 *
 * Locking: the run's mutex guards `fired` and `remaining`.  It is a leaf
 * lock, taken from the futures' completion callbacks (which run with no
 * future lock held) and from run_expire(); the user's callback is called
 * after it is released.  Whoever sets `fired` calls the callback: that is
 * what makes it fire exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

struct run {
	atomic_uint refs;
	enum run_policy policy;
	run_callback cb;	/* set once by run_wait(), before watching; */
	void *cb_arg;		/* written and read under lock */
	pthread_mutex_t lock;	/* guards cb, cb_arg, fired, remaining */
	bool fired;
	size_t remaining;	/* futures not complete yet */
	size_t n;
	struct watch {
		struct future_waiter waiter;
		struct run *run;
		size_t index;
	} *watches;		/* n of them, after futures, same block */
	struct future *futures[];
};

struct run *
run_new(enum run_policy policy, struct future **futures, size_t n)
{
	struct run *r;
	size_t i;

	if (n == 0)
		return NULL;
	/* One block: the run, its futures, then its watches. */
	r = calloc(1, sizeof(*r) + n * sizeof(r->futures[0]) +
		   n * sizeof(r->watches[0]));
	if (r == NULL)
		return NULL;
	r->watches = (struct watch *)&r->futures[n];
	atomic_init(&r->refs, 1);
	r->policy = policy;
	pthread_mutex_init(&r->lock, NULL);
	r->n = n;
	r->remaining = n;
	for (i = 0; i < n; i++) {
		r->futures[i] = future_ref(futures[i]);
		r->watches[i].run = r;
		r->watches[i].index = i;
	}
	return r;
}

struct run *
run_ref(struct run *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

void
run_unref(struct run *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < r->n; i++)
		future_unref(r->futures[i]);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Does the completion of future `index` (with `remaining` left) meet it? */
static bool
policy_met(const struct run *r, size_t index, size_t remaining)
{
	switch (r->policy) {
	case RUN_WAIT_ALL:
		return remaining == 0;
	case RUN_WAIT_FIRST:
		return index == 0;
	case RUN_WAIT_ANY:
	case RUN_WAIT_NONE:
		return true;
	}
	return true;
}

/* Future callback: one watched future completed.  Drops the watch's ref. */
static void
on_future_done(struct future *f, void *arg)
{
	struct watch *w = arg;
	struct run *r = w->run;
	bool fire = false;

	(void)f;
	pthread_mutex_lock(&r->lock);
	r->remaining--;
	if (!r->fired && policy_met(r, w->index, r->remaining)) {
		r->fired = true;
		fire = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (fire)
		r->cb(r, false, (int)w->index, r->cb_arg);
	run_unref(r);
}

void
run_wait(struct run *r, run_callback cb, void *arg)
{
	size_t i, n = r->n;
	bool fire = false;

	/*
	 * Under the lock: run_expire() (a deadline on the timer thread) may
	 * run concurrently with this and reads cb under the lock; unlocked,
	 * it could see cb without cb_arg (a data race TSan reports).
	 */
	pthread_mutex_lock(&r->lock);
	r->cb = cb;
	r->cb_arg = arg;
	if (r->policy == RUN_WAIT_NONE && !r->fired)
		fire = r->fired = true;
	pthread_mutex_unlock(&r->lock);
	if (r->policy == RUN_WAIT_NONE) {
		if (fire)
			cb(r, false, -1, arg);
		return;
	}
	/*
	 * Each watch holds a reference on the run.  Take them all first so
	 * that a callback firing during the loop cannot free the run.  Once
	 * the last watch is registered its callback may have dropped the
	 * last reference (with the caller's, dropped by the user callback),
	 * so the loop must not read r->n after it: n is a local copy.
	 */
	atomic_fetch_add_explicit(&r->refs, n, memory_order_relaxed);
	for (i = 0; i < n; i++)
		future_on_done(r->futures[i], &r->watches[i].waiter,
			       on_future_done, &r->watches[i]);
}

bool
run_expire(struct run *r)
{
	bool fire = false;

	pthread_mutex_lock(&r->lock);
	if (!r->fired && r->cb != NULL)
		fire = r->fired = true;
	pthread_mutex_unlock(&r->lock);
	if (fire)
		r->cb(r, true, -1, r->cb_arg);
	return fire;
}

size_t
run_size(const struct run *r)
{
	return r->n;
}

struct future *
run_future(const struct run *r, size_t i)
{
	return r->futures[i];
}

static const char *const policy_names[] = {
	[RUN_WAIT_ALL] = "all",
	[RUN_WAIT_FIRST] = "first",
	[RUN_WAIT_ANY] = "any",
	[RUN_WAIT_NONE] = "none",
};

const char *
run_policy_name(enum run_policy p)
{
	if ((size_t)p < sizeof(policy_names) / sizeof(policy_names[0]))
		return policy_names[p];
	return "unknown";
}

int
run_policy_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++)
		if (strcmp(name, policy_names[i]) == 0)
			return (int)i;
	return -1;
}
