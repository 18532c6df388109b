/*
 * check_timer.c - unit tests for src/timer.c.
 *
 * The contract is timer.h's: exactly one of "fires on the timer thread",
 * "timer_cancel() returns true" or "discarded by timer_free() with fired =
 * false" happens to an armed entry; deadlines fire in order; callbacks may
 * arm and cancel entries.
 *
 * Order is checked against the deadlines the test can bound (it reads the
 * clock just before and just after each timer_add()), never against luck.
 * Where a test must know nothing fires, it holds the timer thread inside a
 * callback that waits on a gate.  The only timing bound that cannot be
 * exact is lateness, and it is generous: LATE_NS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* nanosleep under -std=c11 */
#endif

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "timer.h"

#define MS 1000000LL
/* How late a callback may run on a loaded 2-core CI machine. */
#define LATE_NS (300 * MS)

/* The order in which callbacks ran, shared with the timer thread. */
struct log {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int *ids;
	int count, cap;
};

static void
log_init(struct log *l, int cap)
{
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->changed, NULL);
	l->ids = calloc((size_t)cap, sizeof(l->ids[0]));
	ck_assert_ptr_nonnull(l->ids);
	l->count = 0;
	l->cap = cap;
}

static void
log_destroy(struct log *l)
{
	free(l->ids);
	pthread_cond_destroy(&l->changed);
	pthread_mutex_destroy(&l->lock);
}

static void
log_append(struct log *l, int id)
{
	pthread_mutex_lock(&l->lock);
	if (l->count < l->cap)
		l->ids[l->count] = id;
	l->count++;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

/* Waits until n callbacks were logged; returns how many there are. */
static int
log_wait(struct log *l, int n)
{
	int count;

	pthread_mutex_lock(&l->lock);
	while (l->count < n)
		pthread_cond_wait(&l->changed, &l->lock);
	count = l->count;
	pthread_mutex_unlock(&l->lock);
	return count;
}

static int
log_count(struct log *l)
{
	int count;

	pthread_mutex_lock(&l->lock);
	count = l->count;
	pthread_mutex_unlock(&l->lock);
	return count;
}

/* An entry in its owner's struct, the way the daemon embeds them. */
struct probe {
	struct timer_entry entry;
	int id;
	struct log *log;
	struct timer *timer;		/* for callbacks that arm or cancel */
	int64_t delay;			/* as passed to timer_add() */
	int64_t added_before;		/* clock just before timer_add() */
	int64_t added_after;		/* clock just after it */
	int64_t fired_at;		/* clock in the callback */
	pthread_t thread;		/* thread of the last call */
	atomic_int fired;		/* calls with fired = true */
	atomic_int discarded;		/* calls with fired = false */
	int rearm;			/* rearm_cb: times left to re-arm */
	struct probe *victim;		/* cancel_cb: entry to cancel */
	bool victim_cancelled;
	int late_add_rc, late_add_errno; /* add_during_discard_cb */
};

static struct probe *
probe_of(struct timer_entry *e)
{
	return (struct probe *)((char *)e - offsetof(struct probe, entry));
}

/* Records the call; used by all the callbacks below. */
static void
record_cb(struct timer_entry *e, bool fired)
{
	struct probe *p = probe_of(e);

	p->fired_at = timer_now_ns();
	p->thread = pthread_self();
	if (fired)
		atomic_fetch_add(&p->fired, 1);
	else
		atomic_fetch_add(&p->discarded, 1);
	if (p->log != NULL)
		log_append(p->log, p->id);
}

static void
probe_init(struct probe *p, int id, struct log *l, timer_callback cb)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->log = l;
	atomic_init(&p->fired, 0);
	atomic_init(&p->discarded, 0);
	timer_entry_init(&p->entry, cb);
}

static void
probe_add(struct timer *t, struct probe *p, int64_t delay)
{
	p->timer = t;
	p->delay = delay;
	p->added_before = timer_now_ns();
	ck_assert_int_eq(timer_add(t, &p->entry, delay), 0);
	p->added_after = timer_now_ns();
}

/* The earliest the entry may fire: its deadline is at least this. */
static int64_t
earliest(const struct probe *p)
{
	return p->added_before + (p->delay > 0 ? p->delay : 0);
}

/* Its deadline is at most this. */
static int64_t
latest_deadline(const struct probe *p)
{
	return p->added_after + (p->delay > 0 ? p->delay : 0);
}

/*
 * x fired before y: then y's deadline cannot be certainly earlier than
 * x's.  (If y was added after x fired, y's add ended after x's deadline.)
 */
static void
assert_fired_in_order(const struct probe *x, const struct probe *y)
{
	ck_assert_msg(latest_deadline(y) >= earliest(x),
		      "entry %d fired after %d but its deadline is earlier",
		      y->id, x->id);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/*
 * A gate that holds the timer thread inside a callback, so that nothing
 * else fires until the test opens it.
 */
struct gate {
	struct timer_entry entry;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool inside, open;
};

static void
gate_cb(struct timer_entry *e, bool fired)
{
	struct gate *g = (struct gate *)((char *)e -
					 offsetof(struct gate, entry));

	(void)fired;
	pthread_mutex_lock(&g->lock);
	g->inside = true;
	pthread_cond_broadcast(&g->changed);
	while (!g->open)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* Arms the gate and waits until the timer thread is held in it. */
static void
gate_hold(struct timer *t, struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->changed, NULL);
	g->inside = g->open = false;
	timer_entry_init(&g->entry, gate_cb);
	ck_assert_int_eq(timer_add(t, &g->entry, 0), 0);
	pthread_mutex_lock(&g->lock);
	while (!g->inside)
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

/* After timer_free(): the gate's callback has returned. */
static void
gate_destroy(struct gate *g)
{
	pthread_cond_destroy(&g->changed);
	pthread_mutex_destroy(&g->lock);
}

static struct timer *
new_timer(void)
{
	struct timer *t = timer_new();

	ck_assert_ptr_nonnull(t);
	return t;
}

/* ---- order --------------------------------------------------------------- */

START_TEST(test_entries_fire_in_deadline_order)
{
	/* Added out of order; deadlines 10 ms apart. */
	static const int delay_ms[] = { 70, 20, 100, 10, 50, 90, 30, 60,
					80, 40 };
	enum { N = sizeof(delay_ms) / sizeof(delay_ms[0]) };
	struct timer *t = new_timer();
	struct probe p[N];
	struct log l;
	int i, j;

	log_init(&l, N);
	for (i = 0; i < N; i++)
		probe_init(&p[i], i, &l, record_cb);
	for (i = 0; i < N; i++)
		probe_add(t, &p[i], delay_ms[i] * MS);
	log_wait(&l, N);
	for (i = 0; i < N; i++)
		for (j = i + 1; j < N; j++)
			assert_fired_in_order(&p[l.ids[i]], &p[l.ids[j]]);
	/*
	 * When all the adds took less than the spacing (nearly always),
	 * the deadlines are in the order of the delays: check it exactly.
	 */
	if (p[N - 1].added_after - p[0].added_before < 10 * MS)
		for (i = 0; i < N; i++)
			ck_assert_int_eq(delay_ms[l.ids[i]], (i + 1) * 10);
	timer_free(t);
	log_destroy(&l);
}
END_TEST

START_TEST(test_entries_with_equal_delays_fire_in_the_order_they_were_added)
{
	enum { N = 50 };
	struct timer *t = new_timer();
	struct probe p[N];
	struct gate g;
	struct log l;
	int i;

	log_init(&l, N);
	/* Hold the thread so that all N are due together when it looks. */
	gate_hold(t, &g);
	for (i = 0; i < N; i++) {
		probe_init(&p[i], i, &l, record_cb);
		probe_add(t, &p[i], 5 * MS);
	}
	sleep_ms(10);
	gate_open(&g);
	log_wait(&l, N);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(l.ids[i], i);
	timer_free(t);
	gate_destroy(&g);
	log_destroy(&l);
}
END_TEST

START_TEST(test_many_entries_with_random_delays_all_fire_exactly_once_in_order)
{
	enum { N = 10000 };
	struct timer *t = new_timer();
	struct probe *p = calloc(N, sizeof(*p));
	unsigned seed = 20240601u;
	struct log l;
	int i;

	ck_assert_ptr_nonnull(p);
	log_init(&l, N);
	for (i = 0; i < N; i++) {
		probe_init(&p[i], i, &l, record_cb);
		probe_add(t, &p[i], (int64_t)(rand_r(&seed) % 500) * MS);
	}
	log_wait(&l, N);
	ck_assert_uint_eq(timer_pending(t), 0);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(atomic_load(&p[i].fired), 1);
		ck_assert_int_ge(p[i].fired_at, earliest(&p[i]));
	}
	for (i = 0; i + 1 < N; i++)
		assert_fired_in_order(&p[l.ids[i]], &p[l.ids[i + 1]]);
	timer_free(t);
	ck_assert_int_eq(log_count(&l), N);	/* nothing discarded twice */
	for (i = 0; i < N; i++)
		ck_assert_int_eq(atomic_load(&p[i].discarded), 0);
	log_destroy(&l);
	free(p);
}
END_TEST

/* ---- timing -------------------------------------------------------------- */

START_TEST(test_entry_never_fires_before_its_delay)
{
	static const int delay_ms[] = { 1, 10, 50, 120 };
	enum { N = sizeof(delay_ms) / sizeof(delay_ms[0]) };
	struct timer *t = new_timer();
	struct probe p[N];
	struct log l;
	int i;

	log_init(&l, N);
	for (i = 0; i < N; i++) {
		probe_init(&p[i], i, &l, record_cb);
		probe_add(t, &p[i], delay_ms[i] * MS);
	}
	log_wait(&l, N);
	for (i = 0; i < N; i++)
		ck_assert_int_ge(p[i].fired_at, earliest(&p[i]));
	timer_free(t);
	log_destroy(&l);
}
END_TEST

START_TEST(test_entry_fires_soon_after_its_delay)
{
	struct timer *t = new_timer();
	struct probe p;
	struct log l;

	log_init(&l, 1);
	probe_init(&p, 0, &l, record_cb);
	probe_add(t, &p, 100 * MS);
	log_wait(&l, 1);
	ck_assert_int_le(p.fired_at, latest_deadline(&p) + LATE_NS);
	timer_free(t);
	log_destroy(&l);
}
END_TEST

START_TEST(test_zero_or_negative_delay_fires_as_soon_as_possible)
{
	struct timer *t = new_timer();
	struct probe p[2];
	struct log l;

	log_init(&l, 2);
	probe_init(&p[0], 0, &l, record_cb);
	probe_init(&p[1], 1, &l, record_cb);
	probe_add(t, &p[0], 0);
	probe_add(t, &p[1], -5000 * MS);
	log_wait(&l, 2);
	ck_assert_int_le(p[0].fired_at, p[0].added_after + LATE_NS);
	ck_assert_int_le(p[1].fired_at, p[1].added_after + LATE_NS);
	/* Negative means now, not in the past: FIFO still holds. */
	ck_assert_int_eq(l.ids[0], 0);
	ck_assert_int_eq(l.ids[1], 1);
	timer_free(t);
	log_destroy(&l);
}
END_TEST

START_TEST(test_earlier_deadline_added_later_wakes_the_timer_thread)
{
	struct timer *t = new_timer();
	struct probe slow, quick;
	struct log l;

	log_init(&l, 2);
	probe_init(&slow, 0, &l, record_cb);
	probe_init(&quick, 1, &l, record_cb);
	probe_add(t, &slow, 5000 * MS);
	sleep_ms(50);		/* let the thread go to sleep until +5 s */
	probe_add(t, &quick, 10 * MS);
	log_wait(&l, 1);
	ck_assert_int_eq(l.ids[0], 1);
	ck_assert_int_ge(quick.fired_at, earliest(&quick));
	ck_assert_int_le(quick.fired_at, latest_deadline(&quick) + LATE_NS);
	ck_assert(timer_cancel(t, &slow.entry));
	ck_assert_int_eq(atomic_load(&slow.fired), 0);
	timer_free(t);
	log_destroy(&l);
}
END_TEST

/* ---- callbacks ----------------------------------------------------------- */

START_TEST(test_callback_runs_once_on_the_timer_thread_with_fired_true)
{
	struct timer *t = new_timer();
	struct probe p;
	struct log l;

	log_init(&l, 1);
	probe_init(&p, 0, &l, record_cb);
	probe_add(t, &p, 1 * MS);
	log_wait(&l, 1);
	ck_assert(!pthread_equal(p.thread, pthread_self()));
	ck_assert_int_eq(atomic_load(&p.fired), 1);
	timer_free(t);
	ck_assert_int_eq(atomic_load(&p.fired), 1);
	ck_assert_int_eq(atomic_load(&p.discarded), 0);
	log_destroy(&l);
}
END_TEST

/* Re-arms its own entry p->rearm more times. */
static void
rearm_cb(struct timer_entry *e, bool fired)
{
	struct probe *p = probe_of(e);

	record_cb(e, fired);
	if (fired && p->rearm-- > 0)
		ck_assert_int_eq(timer_add(p->timer, e, 1 * MS), 0);
}

START_TEST(test_callback_may_rearm_its_own_entry)
{
	struct timer *t = new_timer();
	struct probe p;
	struct log l;

	log_init(&l, 8);
	probe_init(&p, 0, &l, rearm_cb);
	p.rearm = 4;
	probe_add(t, &p, 1 * MS);
	log_wait(&l, 5);
	/* The fifth call did not re-arm: nothing is pending. */
	ck_assert_uint_eq(timer_pending(t), 0);
	timer_free(t);
	ck_assert_int_eq(atomic_load(&p.fired), 5);
	ck_assert_int_eq(atomic_load(&p.discarded), 0);
	log_destroy(&l);
}
END_TEST

/* Cancels p->victim. */
static void
cancel_cb(struct timer_entry *e, bool fired)
{
	struct probe *p = probe_of(e);

	p->victim_cancelled = timer_cancel(p->timer, &p->victim->entry);
	record_cb(e, fired);
}

START_TEST(test_callback_may_cancel_another_entry)
{
	struct timer *t = new_timer();
	struct probe canceller, victim, sentinel;
	struct gate g;
	struct log l;

	log_init(&l, 3);
	probe_init(&canceller, 0, &l, cancel_cb);
	probe_init(&victim, 1, &l, record_cb);
	probe_init(&sentinel, 2, &l, record_cb);
	canceller.victim = &victim;
	gate_hold(t, &g);
	/* Same delay: the canceller is due first, the victim right after. */
	probe_add(t, &canceller, 0);
	probe_add(t, &victim, 0);
	probe_add(t, &sentinel, 0);
	gate_open(&g);
	log_wait(&l, 2);
	ck_assert(canceller.victim_cancelled);
	ck_assert_int_eq(l.ids[0], 0);
	ck_assert_int_eq(l.ids[1], 2);	/* the victim would come first */
	timer_free(t);
	ck_assert_int_eq(atomic_load(&victim.fired), 0);
	ck_assert_int_eq(atomic_load(&victim.discarded), 0);
	gate_destroy(&g);
	log_destroy(&l);
}
END_TEST

/* ---- cancel -------------------------------------------------------------- */

START_TEST(test_cancel_before_firing_returns_true_and_the_callback_never_runs)
{
	struct timer *t = new_timer();
	struct probe cancelled, sentinel;
	struct gate g;
	struct log l;

	log_init(&l, 2);
	probe_init(&cancelled, 0, &l, record_cb);
	probe_init(&sentinel, 1, &l, record_cb);
	gate_hold(t, &g);
	probe_add(t, &cancelled, 0);	/* due, but the thread is held */
	ck_assert_uint_eq(timer_pending(t), 1);
	ck_assert(timer_cancel(t, &cancelled.entry));
	ck_assert_uint_eq(timer_pending(t), 0);
	/* Due after it: had it stayed armed, it would fire first. */
	probe_add(t, &sentinel, 0);
	gate_open(&g);
	log_wait(&l, 1);
	ck_assert_int_eq(l.ids[0], 1);
	timer_free(t);
	ck_assert_int_eq(log_count(&l), 1);
	ck_assert_int_eq(atomic_load(&cancelled.fired), 0);
	ck_assert_int_eq(atomic_load(&cancelled.discarded), 0);
	gate_destroy(&g);
	log_destroy(&l);
}
END_TEST

START_TEST(test_cancel_after_firing_returns_false)
{
	struct timer *t = new_timer();
	struct probe p;
	struct log l;

	log_init(&l, 1);
	probe_init(&p, 0, &l, record_cb);
	probe_add(t, &p, 0);
	log_wait(&l, 1);
	ck_assert(!timer_cancel(t, &p.entry));
	timer_free(t);
	ck_assert_int_eq(atomic_load(&p.fired), 1);
	log_destroy(&l);
}
END_TEST

START_TEST(test_cancel_while_the_callback_runs_returns_false)
{
	struct timer *t = new_timer();
	struct gate g;

	gate_hold(t, &g);		/* its callback is running now */
	ck_assert(!timer_cancel(t, &g.entry));
	gate_open(&g);
	timer_free(t);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_cancel_of_an_entry_never_armed_or_already_cancelled_returns_false)
{
	struct timer *t = new_timer();
	struct probe p;

	probe_init(&p, 0, NULL, record_cb);
	ck_assert(!timer_cancel(t, &p.entry));
	probe_add(t, &p, 60000 * MS);
	ck_assert(timer_cancel(t, &p.entry));
	ck_assert(!timer_cancel(t, &p.entry));
	timer_free(t);
	ck_assert_int_eq(atomic_load(&p.fired), 0);
	ck_assert_int_eq(atomic_load(&p.discarded), 0);
}
END_TEST

START_TEST(test_cancelled_entry_can_be_armed_again)
{
	struct timer *t = new_timer();
	struct probe p;
	struct log l;

	log_init(&l, 1);
	probe_init(&p, 0, &l, record_cb);
	probe_add(t, &p, 60000 * MS);
	ck_assert(timer_cancel(t, &p.entry));
	probe_add(t, &p, 1 * MS);
	log_wait(&l, 1);
	timer_free(t);
	ck_assert_int_eq(atomic_load(&p.fired), 1);
	log_destroy(&l);
}
END_TEST

START_TEST(test_pending_counts_armed_entries)
{
	struct timer *t = new_timer();
	struct probe p[3];
	int i;

	ck_assert_uint_eq(timer_pending(t), 0);
	for (i = 0; i < 3; i++) {
		probe_init(&p[i], i, NULL, record_cb);
		probe_add(t, &p[i], 60000 * MS);
	}
	ck_assert_uint_eq(timer_pending(t), 3);
	ck_assert(timer_cancel(t, &p[1].entry));
	ck_assert_uint_eq(timer_pending(t), 2);
	timer_free(t);
}
END_TEST

static void
never_cb(struct timer_entry *e, bool fired)
{
	(void)e;
	ck_assert_msg(!fired, "an entry an hour away fired");
}

/*
 * The heap gives its memory back after a burst: it halves when less than a
 * quarter full, down to its first size, so a burst of 100,000 deadlines
 * does not pin 800 KB for the daemon's life.
 */
START_TEST(test_heap_shrinks_back_to_its_first_size_after_a_burst)
{
	enum { N = 100000 };
	struct timer *t = new_timer();
	struct timer_entry *e = calloc(N, sizeof(*e));
	size_t i;

	ck_assert_ptr_nonnull(e);
	for (i = 0; i < N; i++) {
		timer_entry_init(&e[i], never_cb);
		ck_assert_int_eq(timer_add(t, &e[i], 3600000 * MS), 0);
	}
	ck_assert_uint_ge(timer_capacity(t), N);
	for (i = 0; i < N - N / 8; i++)
		ck_assert(timer_cancel(t, &e[i]));
	/* An eighth left: shrunk, but still holding them all. */
	ck_assert_uint_lt(timer_capacity(t), N / 2);
	ck_assert_uint_ge(timer_capacity(t), N / 8);
	for (; i < N; i++)
		ck_assert(timer_cancel(t, &e[i]));
	ck_assert_uint_eq(timer_capacity(t), TIMER_MIN_CAPACITY);
	ck_assert_uint_eq(timer_pending(t), 0);
	timer_free(t);
	free(e);
}
END_TEST

/* Halving at a quarter, not at a half: add/remove at the edge is cheap. */
START_TEST(test_heap_does_not_shrink_while_a_quarter_full)
{
	enum { N = 4 * TIMER_MIN_CAPACITY };
	struct timer *t = new_timer();
	struct timer_entry e[N];
	size_t i, cap;

	for (i = 0; i < N; i++) {
		timer_entry_init(&e[i], never_cb);
		ck_assert_int_eq(timer_add(t, &e[i], 3600000 * MS), 0);
	}
	cap = timer_capacity(t);
	ck_assert_uint_eq(cap, N);
	for (i = 0; i < N - N / 4; i++)
		ck_assert(timer_cancel(t, &e[i]));
	ck_assert_uint_eq(timer_capacity(t), cap);
	timer_free(t);
}
END_TEST

/* ---- the clock --------------------------------------------------------------- */

START_TEST(test_now_is_monotonic_and_in_nanoseconds)
{
	int64_t a = timer_now_ns(), b = clock_now_ns(CLOCK_MONOTONIC);

	ck_assert_int_gt(a, 0);
	ck_assert_int_ge(b, a);
	ck_assert_int_lt(b - a, 1000 * MS);
}
END_TEST

/* A clock id the kernel refuses is a bug: no garbage time comes back. */
START_TEST(test_clock_with_an_unknown_id_aborts)
{
	clock_now_ns((clockid_t)123456);
	ck_abort_msg("clock_now_ns() returned for an unknown clock");
}
END_TEST

/* ---- timer_free ---------------------------------------------------------- */

START_TEST(test_timer_free_discards_pending_entries_on_the_caller_with_fired_false)
{
	enum { N = 5 };
	struct timer *t = new_timer();
	struct probe p[N];
	struct log l;
	int i;

	log_init(&l, N);
	for (i = 0; i < N; i++) {
		probe_init(&p[i], i, &l, record_cb);
		probe_add(t, &p[i], (60000 + i) * MS);
	}
	timer_free(t);
	ck_assert_int_eq(log_count(&l), N);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(atomic_load(&p[i].fired), 0);
		ck_assert_int_eq(atomic_load(&p[i].discarded), 1);
		ck_assert(pthread_equal(p[i].thread, pthread_self()));
	}
	log_destroy(&l);
}
END_TEST

/* Discarded: tries to arm p->victim, which must fail. */
static void
add_during_discard_cb(struct timer_entry *e, bool fired)
{
	struct probe *p = probe_of(e);

	errno = 0;
	p->late_add_rc = timer_add(p->timer, &p->victim->entry, 0);
	p->late_add_errno = errno;
	record_cb(e, fired);
}

START_TEST(test_timer_add_fails_with_eshutdown_while_the_timer_is_freed)
{
	struct timer *t = new_timer();
	struct probe discarded, late;

	probe_init(&discarded, 0, NULL, add_during_discard_cb);
	probe_init(&late, 1, NULL, record_cb);
	discarded.victim = &late;
	probe_add(t, &discarded, 60000 * MS);
	timer_free(t);
	ck_assert_int_eq(atomic_load(&discarded.discarded), 1);
	ck_assert_int_eq(discarded.late_add_rc, -1);
	ck_assert_int_eq(discarded.late_add_errno, ESHUTDOWN);
	/* Not armed, so neither fired nor discarded. */
	ck_assert_int_eq(atomic_load(&late.fired), 0);
	ck_assert_int_eq(atomic_load(&late.discarded), 0);
}
END_TEST

START_TEST(test_timer_free_of_an_idle_timer_returns)
{
	timer_free(new_timer());
	timer_free(NULL);	/* allowed */
}
END_TEST

static Suite *
timer_suite(void)
{
	Suite *s = suite_create("timer");
	TCase *tc;

	tc = tcase_create("order");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_entries_fire_in_deadline_order);
	tcase_add_test(tc, test_entries_with_equal_delays_fire_in_the_order_they_were_added);
	tcase_add_test(tc, test_many_entries_with_random_delays_all_fire_exactly_once_in_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("timing");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_entry_never_fires_before_its_delay);
	tcase_add_test(tc, test_entry_fires_soon_after_its_delay);
	tcase_add_test(tc, test_zero_or_negative_delay_fires_as_soon_as_possible);
	tcase_add_test(tc, test_earlier_deadline_added_later_wakes_the_timer_thread);
	suite_add_tcase(s, tc);

	tc = tcase_create("callbacks");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_callback_runs_once_on_the_timer_thread_with_fired_true);
	tcase_add_test(tc, test_callback_may_rearm_its_own_entry);
	tcase_add_test(tc, test_callback_may_cancel_another_entry);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_cancel_before_firing_returns_true_and_the_callback_never_runs);
	tcase_add_test(tc, test_cancel_after_firing_returns_false);
	tcase_add_test(tc, test_cancel_while_the_callback_runs_returns_false);
	tcase_add_test(tc, test_cancel_of_an_entry_never_armed_or_already_cancelled_returns_false);
	tcase_add_test(tc, test_cancelled_entry_can_be_armed_again);
	tcase_add_test(tc, test_pending_counts_armed_entries);
	tcase_add_test(tc, test_heap_shrinks_back_to_its_first_size_after_a_burst);
	tcase_add_test(tc, test_heap_does_not_shrink_while_a_quarter_full);
	tcase_add_test(tc, test_now_is_monotonic_and_in_nanoseconds);
	tcase_add_test_raise_signal(tc, test_clock_with_an_unknown_id_aborts,
				    SIGABRT);
	suite_add_tcase(s, tc);

	tc = tcase_create("free");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_timer_free_discards_pending_entries_on_the_caller_with_fired_false);
	tcase_add_test(tc, test_timer_add_fails_with_eshutdown_while_the_timer_is_freed);
	tcase_add_test(tc, test_timer_free_of_an_idle_timer_returns);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(timer_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
