/*
 * timer.c - see timer.h.
 *
 * A binary min-heap of entry pointers ordered by (deadline, seq), one
 * mutex and one condition variable on CLOCK_MONOTONIC.  The thread sleeps
 * until the earliest deadline or until an earlier one is added; due
 * entries are popped under the lock (index = -1, which is what makes
 * timer_cancel() lose the race) and called after it is released.  The heap
 * array doubles when full and halves when under a quarter full.
 *
 * Lock order: the timer lock is a leaf; callbacks run without it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "timer.h"

struct timer {
	pthread_mutex_t lock;	/* guards everything below */
	pthread_cond_t wake;	/* the earliest deadline changed, or stop */
	struct timer_entry **heap;
	size_t len, cap;
	uint64_t next_seq;
	bool stopping;
	pthread_t thread;
};

int64_t
timer_now_ns(void)
{
	return clock_now_ns(CLOCK_MONOTONIC);
}

static bool
before(const struct timer_entry *a, const struct timer_entry *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

static void
heap_set(struct timer *t, size_t i, struct timer_entry *e)
{
	t->heap[i] = e;
	e->index = (long)i;
}

static void
sift_up(struct timer *t, size_t i)
{
	struct timer_entry *e = t->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(e, t->heap[parent]))
			break;
		heap_set(t, i, t->heap[parent]);
		i = parent;
	}
	heap_set(t, i, e);
}

static void
sift_down(struct timer *t, size_t i)
{
	struct timer_entry *e = t->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= t->len)
			break;
		if (child + 1 < t->len && before(t->heap[child + 1],
						 t->heap[child]))
			child++;
		if (!before(t->heap[child], e))
			break;
		heap_set(t, i, t->heap[child]);
		i = child;
	}
	heap_set(t, i, e);
}

/*
 * Halves the heap when it is less than a quarter full, so that memory comes
 * back after a burst; between a quarter and full it stays, so that adds
 * and removes at one size never reallocate each time.  A failed realloc
 * keeps the larger array, which is harmless.
 */
static void
maybe_shrink(struct timer *t)
{
	struct timer_entry **heap;
	size_t cap = t->cap / 2;

	if (cap < TIMER_MIN_CAPACITY || t->len >= t->cap / 4)
		return;
	heap = realloc(t->heap, cap * sizeof(*heap));
	if (heap == NULL)
		return;
	t->heap = heap;
	t->cap = cap;
}

/* Removes the entry at slot i and marks it unarmed. */
static void
heap_remove(struct timer *t, size_t i)
{
	struct timer_entry *e = t->heap[i];
	struct timer_entry *last = t->heap[--t->len];

	e->index = -1;
	if (i != t->len) {
		heap_set(t, i, last);
		if (i > 0 && before(last, t->heap[(i - 1) / 2]))
			sift_up(t, i);
		else
			sift_down(t, i);
	}
	maybe_shrink(t);
}

static void *
timer_main(void *arg)
{
	struct timer *t = arg;
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		int64_t now = timer_now_ns();

		if (t->len > 0 && t->heap[0]->deadline_ns <= now) {
			struct timer_entry *e = t->heap[0];

			heap_remove(t, 0);
			pthread_mutex_unlock(&t->lock);
			e->cb(e, true);
			pthread_mutex_lock(&t->lock);
			continue;
		}
		if (t->len == 0) {
			pthread_cond_wait(&t->wake, &t->lock);
			continue;
		}
		ts.tv_sec = t->heap[0]->deadline_ns / 1000000000;
		ts.tv_nsec = t->heap[0]->deadline_ns % 1000000000;
		pthread_cond_timedwait(&t->wake, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct timer *
timer_new(void)
{
	struct timer *t = calloc(1, sizeof(*t));
	pthread_condattr_t attr;
	sigset_t all, old;
	int err;

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &attr);
	pthread_condattr_destroy(&attr);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&t->thread, NULL, timer_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		errno = err;
		return NULL;
	}
	return t;
}

void
timer_entry_init(struct timer_entry *e, timer_callback cb)
{
	e->deadline_ns = 0;
	e->seq = 0;
	e->index = -1;
	e->cb = cb;
}

int
timer_add(struct timer *t, struct timer_entry *e, int64_t delay_ns)
{
	int64_t now = timer_now_ns();

	pthread_mutex_lock(&t->lock);
	if (t->stopping) {
		pthread_mutex_unlock(&t->lock);
		errno = ESHUTDOWN;
		return -1;
	}
	if (t->len == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : TIMER_MIN_CAPACITY;
		struct timer_entry **heap = realloc(t->heap,
						    cap * sizeof(*heap));

		if (heap == NULL) {
			pthread_mutex_unlock(&t->lock);
			errno = ENOMEM;
			return -1;
		}
		t->heap = heap;
		t->cap = cap;
	}
	/* Clamped so that "never" (INT64_MAX) cannot overflow the sum. */
	if (delay_ns < 0)
		delay_ns = 0;
	else if (delay_ns > INT64_MAX - now)
		delay_ns = INT64_MAX - now;
	e->deadline_ns = now + delay_ns;
	e->seq = t->next_seq++;
	heap_set(t, t->len++, e);
	sift_up(t, t->len - 1);
	/* Only a new earliest deadline changes how long the thread sleeps. */
	if (e->index == 0)
		pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

bool
timer_cancel(struct timer *t, struct timer_entry *e)
{
	bool armed;

	pthread_mutex_lock(&t->lock);
	armed = e->index >= 0;
	if (armed)
		heap_remove(t, (size_t)e->index);
	pthread_mutex_unlock(&t->lock);
	return armed;
}

unsigned long
timer_pending(struct timer *t)
{
	unsigned long n;

	pthread_mutex_lock(&t->lock);
	n = t->len;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t
timer_capacity(struct timer *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->cap;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void
timer_free(struct timer *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);

	/* The thread is gone: discard the rest, one at a time, unlocked. */
	for (;;) {
		struct timer_entry *e = NULL;

		pthread_mutex_lock(&t->lock);
		if (t->len > 0) {
			e = t->heap[0];
			heap_remove(t, 0);
		}
		pthread_mutex_unlock(&t->lock);
		if (e == NULL)
			break;
		e->cb(e, false);
	}
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t->heap);
	free(t);
}
