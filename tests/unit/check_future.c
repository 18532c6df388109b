/*
 * check_future.c - unit tests for src/future.c and src/run.c.
 *
 * The contracts under test are the ones written in future.h and run.h:
 * states and transitions, "first completion wins", which thread runs a
 * callback, exactly-once firing of a run's callback, and reference
 * ownership.  Leaks and use-after-free are left to the sanitizers (build
 * with -fsanitize=address,undefined, and separately with thread).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pthread_barrier_t, clock_gettime under -std=c11 */
#endif

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "future.h"
#include "run.h"

#define MAX_CALLS 16

/* What callbacks saw, filled in from whichever thread runs them. */
struct calls {
	pthread_mutex_t lock;
	int count;
	int order[MAX_CALLS];		/* the tags of the calls, in order */
	pthread_t thread[MAX_CALLS];	/* the thread of each call */
	enum future_state state[MAX_CALLS];
	char result[MAX_CALLS][32];	/* future_result() seen in the call */
};

/* One registered callback: its storage, its tag, and where it reports. */
struct probe {
	struct future_waiter waiter;
	struct calls *calls;
	int tag;
};

static void
calls_init(struct calls *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static void
calls_destroy(struct calls *c)
{
	pthread_mutex_destroy(&c->lock);
}

static int
calls_count(struct calls *c)
{
	int n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/*
 * Future callback that records the call.  It also reads the future's
 * state and result, which would deadlock if the future's lock were held.
 */
static void
record_call(struct future *f, void *arg)
{
	struct probe *p = arg;
	struct calls *c = p->calls;
	enum future_state state = future_state(f);
	const char *result = future_result(f);

	pthread_mutex_lock(&c->lock);
	if (c->count < MAX_CALLS) {
		c->order[c->count] = p->tag;
		c->thread[c->count] = pthread_self();
		c->state[c->count] = state;
		snprintf(c->result[c->count], sizeof(c->result[0]), "%s",
			 result != NULL ? result : "(null)");
	}
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

static void
probe_on_done(struct future *f, struct probe *p, struct calls *c, int tag)
{
	p->calls = c;
	p->tag = tag;
	future_on_done(f, &p->waiter, record_call, p);
}

static int64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A thread that completes a future with SUCCEEDED and `result`. */
struct completer {
	pthread_t thread;
	struct future *future;
	const char *result;
	bool unref_after;	/* the thread owns a reference and drops it */
	bool won;
};

static void *
completer_main(void *arg)
{
	struct completer *c = arg;

	c->won = future_complete(c->future, FUTURE_SUCCEEDED,
				 strdup(c->result), NULL);
	if (c->unref_after)
		future_unref(c->future);
	return NULL;
}

static void
completer_start(struct completer *c, struct future *f, const char *result)
{
	c->future = f;
	c->result = result;
	c->won = false;
	c->unref_after = false;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, completer_main, c),
			 0);
}

static void
completer_join(struct completer *c)
{
	ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
}

/* ---- future: states and transitions ------------------------------------ */

START_TEST(test_new_future_is_queued_with_no_result_and_only_a_creation_time)
{
	struct future *f = future_new();
	struct future_times t;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(future_state(f), FUTURE_QUEUED);
	ck_assert_ptr_null(future_result(f));
	ck_assert_ptr_null(future_error(f));
	t = future_times(f);
	ck_assert_int_gt(t.created, 0);
	ck_assert_int_eq(t.started, 0);
	ck_assert_int_eq(t.finished, 0);
	ck_assert_int_eq(future_runtime_ns(f), 0);
	future_unref(f);
}
END_TEST

START_TEST(test_start_moves_a_queued_future_to_running_and_records_the_time)
{
	struct future *f = future_new();
	struct future_times t;

	ck_assert(future_start(f));
	ck_assert_int_eq(future_state(f), FUTURE_RUNNING);
	t = future_times(f);
	ck_assert_int_ge(t.started, t.created);
	ck_assert_int_eq(t.finished, 0);
	ck_assert_ptr_null(future_result(f));
	ck_assert_int_eq(future_runtime_ns(f), 0);
	future_unref(f);
}
END_TEST

START_TEST(test_start_of_a_running_future_fails_and_changes_nothing)
{
	struct future *f = future_new();
	int64_t started;

	ck_assert(future_start(f));
	started = future_times(f).started;
	ck_assert(!future_start(f));
	ck_assert_int_eq(future_state(f), FUTURE_RUNNING);
	ck_assert_int_eq(future_times(f).started, started);
	future_unref(f);
}
END_TEST

START_TEST(test_start_of_a_cancelled_future_fails)
{
	struct future *f = future_new();

	ck_assert(future_cancel(f));
	ck_assert(!future_start(f));
	ck_assert_int_eq(future_state(f), FUTURE_CANCELLED);
	ck_assert_int_eq(future_times(f).started, 0);
	future_unref(f);
}
END_TEST

START_TEST(test_start_of_a_completed_future_fails)
{
	struct future *f = future_new();

	ck_assert(future_complete(f, FUTURE_FAILED, NULL, strdup("boom")));
	ck_assert(!future_start(f));
	ck_assert_int_eq(future_state(f), FUTURE_FAILED);
	future_unref(f);
}
END_TEST

START_TEST(test_complete_sets_terminal_state_result_and_error)
{
	static const enum future_state terminal[] = {
		FUTURE_SUCCEEDED, FUTURE_FAILED, FUTURE_CANCELLED,
		FUTURE_TIMED_OUT,
	};
	struct future *f = future_new();

	ck_assert(future_start(f));
	ck_assert(future_complete(f, terminal[_i], strdup("the result"),
				  strdup("the error")));
	ck_assert_int_eq(future_state(f), terminal[_i]);
	ck_assert_str_eq(future_result(f), "the result");
	ck_assert_str_eq(future_error(f), "the error");
	future_unref(f);
}
END_TEST

START_TEST(test_complete_accepts_null_result_and_error)
{
	struct future *f = future_new();

	ck_assert(future_complete(f, FUTURE_SUCCEEDED, NULL, NULL));
	ck_assert_int_eq(future_state(f), FUTURE_SUCCEEDED);
	ck_assert_ptr_null(future_result(f));
	ck_assert_ptr_null(future_error(f));
	future_unref(f);
}
END_TEST

START_TEST(test_complete_records_the_finish_time_and_the_runtime_from_start)
{
	struct future *f = future_new();
	struct future_times t;
	int64_t before_start, after_complete;

	sleep_ms(30);		/* must not count: runtime starts at start */
	before_start = monotonic_ns();
	ck_assert(future_start(f));
	sleep_ms(20);
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, NULL, NULL));
	after_complete = monotonic_ns();
	t = future_times(f);
	ck_assert_int_ge(t.started, t.created);
	ck_assert_int_ge(t.finished, t.started);
	ck_assert_int_ge(future_runtime_ns(f), 20 * 1000000LL);
	/* Counted from creation it would exceed this by the 30 ms. */
	ck_assert_int_le(future_runtime_ns(f), after_complete - before_start);
	future_unref(f);
}
END_TEST

START_TEST(test_runtime_of_a_future_completed_without_start_counts_from_creation)
{
	struct future *f = future_new();

	sleep_ms(20);
	ck_assert(future_complete(f, FUTURE_TIMED_OUT, NULL, NULL));
	ck_assert_int_eq(future_times(f).started, 0);
	ck_assert_int_ge(future_runtime_ns(f), 20 * 1000000LL);
	future_unref(f);
}
END_TEST

START_TEST(test_first_completion_wins_and_a_later_one_frees_its_strings)
{
	struct future *f = future_new();

	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("first"), NULL));
	/* Stolen and freed by the losing call: ASan reports a leak if not. */
	ck_assert(!future_complete(f, FUTURE_FAILED, strdup("second"),
				   strdup("second error")));
	ck_assert(!future_complete(f, FUTURE_TIMED_OUT, NULL, NULL));
	ck_assert_int_eq(future_state(f), FUTURE_SUCCEEDED);
	ck_assert_str_eq(future_result(f), "first");
	ck_assert_ptr_null(future_error(f));
	future_unref(f);
}
END_TEST

START_TEST(test_a_losing_completion_does_not_run_callbacks_again)
{
	struct future *f = future_new();
	struct calls c;
	struct probe p;

	calls_init(&c);
	probe_on_done(f, &p, &c, 1);
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, NULL, NULL));
	ck_assert(!future_complete(f, FUTURE_FAILED, NULL, NULL));
	ck_assert(!future_cancel(f));
	ck_assert_int_eq(calls_count(&c), 1);
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_concurrent_completions_have_exactly_one_winner)
{
	enum { THREADS = 4, ROUNDS = 200 };
	static const char *const names[THREADS] = { "a", "b", "c", "d" };
	int round, i, winners, winner;

	for (round = 0; round < ROUNDS; round++) {
		struct completer t[THREADS];
		struct future *f = future_new();
		struct calls c;
		struct probe p;

		calls_init(&c);
		probe_on_done(f, &p, &c, 1);
		for (i = 0; i < THREADS; i++)
			completer_start(&t[i], f, names[i]);
		winners = 0;
		winner = -1;
		for (i = 0; i < THREADS; i++) {
			completer_join(&t[i]);
			if (t[i].won) {
				winners++;
				winner = i;
			}
		}
		ck_assert_int_eq(winners, 1);
		ck_assert_str_eq(future_result(f), names[winner]);
		ck_assert_int_eq(calls_count(&c), 1);
		ck_assert(pthread_equal(c.thread[0], t[winner].thread));
		future_unref(f);
		calls_destroy(&c);
	}
}
END_TEST

START_TEST(test_cancel_of_a_queued_future_cancels_it_and_runs_the_callbacks)
{
	struct future *f = future_new();
	struct calls c;
	struct probe p;

	calls_init(&c);
	probe_on_done(f, &p, &c, 1);
	ck_assert(future_cancel(f));
	ck_assert_int_eq(future_state(f), FUTURE_CANCELLED);
	ck_assert_int_eq(calls_count(&c), 1);
	ck_assert_int_eq(c.state[0], FUTURE_CANCELLED);
	ck_assert(pthread_equal(c.thread[0], pthread_self()));
	ck_assert_int_gt(future_times(f).finished, 0);
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_cancel_of_a_running_future_returns_false_and_changes_nothing)
{
	struct future *f = future_new();
	struct calls c;
	struct probe p;

	calls_init(&c);
	probe_on_done(f, &p, &c, 1);
	ck_assert(future_start(f));
	ck_assert(!future_cancel(f));
	ck_assert_int_eq(future_state(f), FUTURE_RUNNING);
	ck_assert_int_eq(calls_count(&c), 0);
	/* The running job can still complete it. */
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("ok"), NULL));
	ck_assert_int_eq(calls_count(&c), 1);
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_cancel_of_a_completed_future_returns_false)
{
	struct future *f = future_new();

	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("ok"), NULL));
	ck_assert(!future_cancel(f));
	ck_assert_int_eq(future_state(f), FUTURE_SUCCEEDED);
	ck_assert_str_eq(future_result(f), "ok");
	future_unref(f);
}
END_TEST

/* ---- future: callbacks --------------------------------------------------- */

START_TEST(test_complete_runs_callbacks_in_registration_order)
{
	struct future *f = future_new();
	struct probe p[5];
	struct calls c;
	int i;

	calls_init(&c);
	for (i = 0; i < 5; i++)
		probe_on_done(f, &p[i], &c, i);
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("done"), NULL));
	ck_assert_int_eq(calls_count(&c), 5);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(c.order[i], i);
		ck_assert_int_eq(c.state[i], FUTURE_SUCCEEDED);
		ck_assert_str_eq(c.result[i], "done");
	}
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_callback_registered_before_completion_runs_on_the_completing_thread)
{
	struct future *f = future_new();
	struct completer t;
	struct calls c;
	struct probe p;

	calls_init(&c);
	probe_on_done(f, &p, &c, 1);
	completer_start(&t, f, "from the thread");
	completer_join(&t);
	ck_assert(t.won);
	ck_assert_int_eq(calls_count(&c), 1);
	ck_assert(pthread_equal(c.thread[0], t.thread));
	ck_assert(!pthread_equal(c.thread[0], pthread_self()));
	ck_assert_str_eq(c.result[0], "from the thread");
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

/* What final_waiter saw: future_final() from inside a waiter. */
struct final_seen {
	struct future_waiter waiter;
	struct future_final final;
	atomic_int calls;
};

static void
final_waiter(struct future *f, void *arg)
{
	struct final_seen *seen = arg;

	seen->final = future_final(f);
	atomic_fetch_add(&seen->calls, 1);
}

/*
 * A waiter reads the final state and run time without the lock, on the
 * completing thread, while another thread reads them with it (TSan would
 * see a race if the completion's writes were not ordered before it); a
 * waiter registered after the completion reads the same.
 */
START_TEST(test_waiters_read_the_final_state_and_run_time_without_the_lock)
{
	struct future *f = future_new();
	struct final_seen during = { .calls = 0 }, after = { .calls = 0 };
	struct completer t;

	future_on_done(f, &during.waiter, final_waiter, &during);
	ck_assert(future_start(f));
	completer_start(&t, f, "done");
	while (!future_state_is_done(future_state(f)))
		(void)future_runtime_ns(f);	/* locked reads meanwhile */
	completer_join(&t);
	ck_assert(t.won);
	future_on_done(f, &after.waiter, final_waiter, &after);
	ck_assert_int_eq(atomic_load(&during.calls), 1);
	ck_assert_int_eq(atomic_load(&after.calls), 1);
	ck_assert_int_eq(during.final.state, FUTURE_SUCCEEDED);
	ck_assert_int_eq(after.final.state, FUTURE_SUCCEEDED);
	ck_assert(during.final.runtime_ns == future_runtime_ns(f));
	ck_assert(after.final.runtime_ns == future_runtime_ns(f));
	ck_assert(during.final.runtime_ns >= 0);
	future_unref(f);
}
END_TEST

/*
 * A result in the future's own room is neither freed apart (ASan would
 * see a bad free) nor shown to readers as a flag: a copier such as the
 * job gate passes the flags on with a copy of its own.
 */
START_TEST(test_a_result_in_the_room_lives_and_goes_with_the_future)
{
	void *room = NULL;
	struct future *f = future_new_with(8, &room);
	struct future_snapshot s;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(room);
	strcpy(room, "kept");
	ck_assert(future_complete_as(f, FUTURE_SUCCEEDED, room,
				     FUTURE_RESULT_IN_ROOM |
				     FUTURE_RESULT_JSON, NULL));
	s = future_snapshot(f);
	ck_assert_ptr_eq(s.result, room);
	ck_assert_uint_eq(s.result_flags, FUTURE_RESULT_JSON);
	/* A losing completion leaves a result in the room alone too. */
	ck_assert(!future_complete_as(f, FUTURE_FAILED, room,
				      FUTURE_RESULT_IN_ROOM, NULL));
	ck_assert_str_eq(future_result(f), "kept");
	future_unref(f);
}
END_TEST

START_TEST(test_callback_registered_after_completion_runs_at_once_on_the_caller)
{
	struct future *f = future_new();
	struct completer t;
	struct calls c;
	struct probe p;

	calls_init(&c);
	completer_start(&t, f, "earlier");
	completer_join(&t);
	probe_on_done(f, &p, &c, 7);
	/* Before future_on_done() returned, on this thread. */
	ck_assert_int_eq(calls_count(&c), 1);
	ck_assert_int_eq(c.order[0], 7);
	ck_assert(pthread_equal(c.thread[0], pthread_self()));
	ck_assert_int_eq(c.state[0], FUTURE_SUCCEEDED);
	ck_assert_str_eq(c.result[0], "earlier");
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_callbacks_do_not_run_before_completion)
{
	struct future *f = future_new();
	struct calls c;
	struct probe p;

	calls_init(&c);
	probe_on_done(f, &p, &c, 1);
	ck_assert(future_start(f));
	ck_assert(!future_start(f));
	ck_assert_int_eq(calls_count(&c), 0);
	future_complete(f, FUTURE_SUCCEEDED, NULL, NULL);
	ck_assert_int_eq(calls_count(&c), 1);
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_callback_registered_while_completing_runs_exactly_once)
{
	enum { ROUNDS = 500 };
	int round;

	for (round = 0; round < ROUNDS; round++) {
		struct future *f = future_new();
		struct completer t;
		struct calls c;
		struct probe p;

		calls_init(&c);
		completer_start(&t, f, "x");
		probe_on_done(f, &p, &c, 1);
		completer_join(&t);
		ck_assert_int_eq(calls_count(&c), 1);
		ck_assert_int_eq(c.state[0], FUTURE_SUCCEEDED);
		ck_assert_str_eq(c.result[0], "x");
		future_unref(f);
		calls_destroy(&c);
	}
}
END_TEST

/* Drops the reference passed as arg; the future must survive the call. */
static void
unref_in_callback(struct future *f, void *arg)
{
	(void)f;
	future_unref(arg);
}

START_TEST(test_callback_may_drop_the_last_owner_reference)
{
	struct future *f = future_new();
	struct future_waiter w;
	struct calls c;
	struct probe later;

	calls_init(&c);
	/* f's only reference is handed to the callback. */
	future_on_done(f, &w, unref_in_callback, f);
	/* A callback after it still sees a live future (ASan checks). */
	probe_on_done(f, &later, &c, 2);
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup("r"), NULL));
	ck_assert_int_eq(calls_count(&c), 1);
	ck_assert_int_eq(c.state[0], FUTURE_SUCCEEDED);
	ck_assert_str_eq(c.result[0], "r");
	calls_destroy(&c);
	/* f is freed now: nothing more to unref. */
}
END_TEST

/* Frees its own waiter storage, which the header allows once called. */
static void
free_own_waiter(struct future *f, void *arg)
{
	struct probe *p = arg;

	record_call(f, p);
	free(p);
}

START_TEST(test_callback_may_free_its_own_waiter_storage)
{
	struct future *f = future_new();
	struct calls c;
	int i;

	calls_init(&c);
	for (i = 0; i < 3; i++) {
		struct probe *p = calloc(1, sizeof(*p));

		ck_assert_ptr_nonnull(p);
		p->calls = &c;
		p->tag = i;
		future_on_done(f, &p->waiter, free_own_waiter, p);
	}
	ck_assert(future_complete(f, FUTURE_FAILED, NULL, NULL));
	ck_assert_int_eq(calls_count(&c), 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(c.order[i], i);
	future_unref(f);
	calls_destroy(&c);
}
END_TEST

START_TEST(test_ref_keeps_the_future_alive_after_the_creator_unrefs)
{
	struct future *f = future_new();
	struct future *g = future_ref(f);

	ck_assert_ptr_eq(g, f);
	future_unref(f);
	ck_assert(future_complete(g, FUTURE_SUCCEEDED, strdup("alive"), NULL));
	ck_assert_str_eq(future_result(g), "alive");
	future_unref(g);
	future_unref(NULL);	/* allowed */
}
END_TEST

/* ---- future: state names ------------------------------------------------- */

START_TEST(test_state_names_match_the_http_api)
{
	ck_assert_str_eq(future_state_name(FUTURE_QUEUED), "queued");
	ck_assert_str_eq(future_state_name(FUTURE_RUNNING), "running");
	ck_assert_str_eq(future_state_name(FUTURE_SUCCEEDED), "succeeded");
	ck_assert_str_eq(future_state_name(FUTURE_FAILED), "failed");
	ck_assert_str_eq(future_state_name(FUTURE_CANCELLED), "cancelled");
	ck_assert_str_eq(future_state_name(FUTURE_TIMED_OUT), "timed_out");
}
END_TEST

START_TEST(test_only_the_four_terminal_states_are_done)
{
	ck_assert(!future_state_is_done(FUTURE_QUEUED));
	ck_assert(!future_state_is_done(FUTURE_RUNNING));
	ck_assert(future_state_is_done(FUTURE_SUCCEEDED));
	ck_assert(future_state_is_done(FUTURE_FAILED));
	ck_assert(future_state_is_done(FUTURE_CANCELLED));
	ck_assert(future_state_is_done(FUTURE_TIMED_OUT));
}
END_TEST

/* ---- future: snapshots -------------------------------------------------- */

START_TEST(test_snapshot_shows_each_stage_of_a_future)
{
	struct future *f = future_new();
	struct future_snapshot s = future_snapshot(f);

	ck_assert_int_eq(s.state, FUTURE_QUEUED);
	ck_assert_ptr_null(s.result);
	ck_assert_ptr_null(s.error);
	ck_assert_int_ne(s.times.created, 0);
	ck_assert_int_eq(s.times.started, 0);
	ck_assert_int_eq(s.times.finished, 0);
	ck_assert(future_start(f));
	s = future_snapshot(f);
	ck_assert_int_eq(s.state, FUTURE_RUNNING);
	ck_assert_int_eq(s.times.started, future_times(f).started);
	ck_assert_int_eq(s.times.finished, 0);
	ck_assert(future_complete(f, FUTURE_FAILED, strdup("r"),
				  strdup("e")));
	s = future_snapshot(f);
	ck_assert_int_eq(s.state, FUTURE_FAILED);
	ck_assert_str_eq(s.result, "r");
	ck_assert_str_eq(s.error, "e");
	ck_assert_ptr_eq(s.result, future_result(f));	/* borrowed */
	ck_assert_int_eq(s.times.finished, future_times(f).finished);
	future_unref(f);
}
END_TEST

/*
 * The invariants of future.h for a started future: NULL, or which one the
 * snapshot breaks.  Plain tests, not ck_assert: Check records a location
 * for every assertion that passes, a write to its pipe, which would leave
 * the reader's loop mostly in the kernel and hide any tear.
 */
static const char *
snapshot_broken(const struct future_snapshot *s)
{
	bool done = future_state_is_done(s->state);

	if (done != (s->times.finished != 0))
		return done ? "done with no finish time" :
			      "not done with a finish time";
	if (!done && (s->result != NULL || s->error != NULL))
		return "not done with a result or an error";
	if (s->state == FUTURE_SUCCEEDED && s->result == NULL)
		return "succeeded with no result";
	if (s->state == FUTURE_FAILED && s->error == NULL)
		return "failed with no error";
	if (s->times.started == 0)
		return "no start time";
	return NULL;
}

/* The completing side: one thread for every round, in step by a barrier. */
struct snapshot_race {
	pthread_barrier_t go;
	struct future *f;	/* the round's; NULL: stop.  A reference */
	int round;
	atomic_int taken;	/* snapshots the reader took this round */
};

static void *
snapshot_completer(void *arg)
{
	struct snapshot_race *r = arg;

	for (;;) {
		struct future *f;
		int round;

		pthread_barrier_wait(&r->go);
		/* Read before completing: the reader goes on after that. */
		f = r->f;
		round = r->round;
		if (f == NULL)
			return NULL;
		/* Complete while the reader is in its loop, not before. */
		while (atomic_load(&r->taken) < 2)
			sched_yield();
		if (round % 2 == 0)
			future_complete(f, FUTURE_SUCCEEDED, strdup("r"), NULL);
		else
			future_complete(f, FUTURE_FAILED, NULL, strdup("e"));
		future_unref(f);
	}
}

/*
 * A reader (GET /jobs/{id}) takes snapshots while another thread
 * completes the future; each round lets both go at once from a barrier,
 * the completer waits until the reader is in its loop, and the reader
 * goes on until it sees the future done, so its snapshots straddle the
 * completion (bounded by events: no sleep, no timing).  None may mix the two sides: a running state
 * with a finish time or a result, a done state without them.  Made of the
 * separate calls, a snapshot tears within a few rounds here.
 */
START_TEST(test_snapshot_never_mixes_a_running_and_a_completed_future)
{
	enum { ROUNDS = 2000 };
	struct snapshot_race r;
	struct future_snapshot s;
	pthread_t t;
	int round;

	ck_assert_int_eq(pthread_barrier_init(&r.go, NULL, 2), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, snapshot_completer, &r), 0);
	for (round = 0; round < ROUNDS; round++) {
		struct future *f = future_new();

		ck_assert(future_start(f));
		r.f = future_ref(f);	/* the completer's */
		r.round = round;
		atomic_store(&r.taken, 0);
		pthread_barrier_wait(&r.go);
		do {
			const char *why;

			s = future_snapshot(f);
			if ((why = snapshot_broken(&s)) != NULL)
				ck_abort_msg("round %d: state %s: %s", round,
					     future_state_name(s.state), why);
			atomic_fetch_add(&r.taken, 1);
		} while (!future_state_is_done(s.state));
		future_unref(f);
	}
	r.f = NULL;
	pthread_barrier_wait(&r.go);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&r.go);
}
END_TEST

/* ---- run ----------------------------------------------------------------- */

/* What a run's callback saw. */
struct fired {
	atomic_int count;
	bool expired;
	int winner;
	pthread_t thread;
	bool winner_done;	/* the winner's future was complete */
	bool all_done;		/* every future was complete */
	bool first_done;	/* future 0 was complete */
	bool drop_run;		/* run_unref(r) in the callback */
};

static void
fired_init(struct fired *fr)
{
	memset(fr, 0, sizeof(*fr));
	atomic_init(&fr->count, 0);
	fr->winner = -2;
}

static void
record_fire(struct run *r, bool expired, int winner, void *arg)
{
	struct fired *fr = arg;
	size_t i;

	/* Only the first call is recorded; count shows any extra one. */
	if (atomic_fetch_add(&fr->count, 1) != 0)
		return;
	fr->expired = expired;
	fr->winner = winner;
	fr->thread = pthread_self();
	fr->winner_done = winner >= 0 && (size_t)winner < run_size(r) &&
		future_state_is_done(future_state(run_future(r,
						(size_t)winner)));
	fr->all_done = true;
	for (i = 0; i < run_size(r); i++)
		if (!future_state_is_done(future_state(run_future(r, i))))
			fr->all_done = false;
	fr->first_done = future_state_is_done(future_state(run_future(r, 0)));
	if (fr->drop_run)
		run_unref(r);
}

static void
make_futures(struct future **fs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fs[i] = future_new();
		ck_assert_ptr_nonnull(fs[i]);
	}
}

static void
unref_futures(struct future **fs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		future_unref(fs[i]);
}

static void
succeed(struct future *f, const char *result)
{
	ck_assert(future_complete(f, FUTURE_SUCCEEDED, strdup(result), NULL));
}

START_TEST(test_policy_names_round_trip)
{
	static const char *const names[] = { "all", "first", "any", "none" };
	int p;

	for (p = RUN_WAIT_ALL; p <= RUN_WAIT_NONE; p++) {
		ck_assert_str_eq(run_policy_name((enum run_policy)p), names[p]);
		ck_assert_int_eq(run_policy_parse(names[p]), p);
	}
	ck_assert_int_eq(run_policy_parse("gather"), -1);
	ck_assert_int_eq(run_policy_parse(""), -1);
	ck_assert_int_eq(run_policy_parse("ALL"), -1);
}
END_TEST

START_TEST(test_run_over_no_futures_is_refused)
{
	struct future *f = future_new();

	ck_assert_ptr_null(run_new(RUN_WAIT_ALL, &f, 0));
	future_unref(f);
}
END_TEST

START_TEST(test_run_lists_its_futures_in_order_and_holds_its_own_references)
{
	struct future *fs[3], *kept[3];
	struct run *r;
	size_t i;

	make_futures(fs, 3);
	for (i = 0; i < 3; i++)
		kept[i] = fs[i];
	r = run_new(RUN_WAIT_ALL, fs, 3);
	ck_assert_ptr_nonnull(r);
	unref_futures(fs, 3);	/* the run's references keep them alive */
	ck_assert_uint_eq(run_size(r), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_ptr_eq(run_future(r, i), kept[i]);
		ck_assert_int_eq(future_state(run_future(r, i)), FUTURE_QUEUED);
	}
	ck_assert_ptr_eq(run_ref(r), r);
	run_unref(r);
	run_unref(r);
	run_unref(NULL);
}
END_TEST

START_TEST(test_all_fires_when_the_last_future_completes_with_its_index)
{
	struct future *fs[3];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_ALL, fs, 3);
	run_wait(r, record_fire, &fr);
	succeed(fs[2], "c");
	succeed(fs[0], "a");
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	succeed(fs[1], "b");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(!fr.expired);
	ck_assert_int_eq(fr.winner, 1);
	ck_assert(fr.all_done);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_all_counts_failures_as_completions)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_ALL, fs, 2);
	run_wait(r, record_fire, &fr);
	ck_assert(future_cancel(fs[0]));
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	ck_assert(future_complete(fs[1], FUTURE_FAILED, NULL, strdup("e")));
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 1);
	run_unref(r);
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_first_waits_for_the_first_listed_future_only)
{
	struct future *fs[3];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_FIRST, fs, 3);
	run_wait(r, record_fire, &fr);
	succeed(fs[2], "third");
	succeed(fs[1], "second");
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	succeed(fs[0], "first");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(!fr.expired);
	ck_assert_int_eq(fr.winner, 0);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_first_fires_without_waiting_for_the_others)
{
	struct future *fs[3];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_FIRST, fs, 3);
	run_wait(r, record_fire, &fr);
	succeed(fs[0], "first");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 0);
	ck_assert(!fr.all_done);
	/* The others are detached: their completion fires nothing. */
	succeed(fs[1], "second");
	succeed(fs[2], "third");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_any_fires_on_whichever_future_completes_first)
{
	struct future *fs[3];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_ANY, fs, 3);
	run_wait(r, record_fire, &fr);
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	succeed(fs[2], "third");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 2);
	ck_assert(!fr.expired);
	succeed(fs[0], "first");
	succeed(fs[1], "second");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 2);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_none_fires_at_once_on_the_caller_without_a_winner)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_NONE, fs, 2);
	run_wait(r, record_fire, &fr);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(!fr.expired);
	ck_assert_int_eq(fr.winner, -1);
	ck_assert(pthread_equal(fr.thread, pthread_self()));
	ck_assert_int_eq(future_state(fs[0]), FUTURE_QUEUED);
	ck_assert(!run_expire(r));
	succeed(fs[0], "a");
	succeed(fs[1], "b");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	run_unref(r);
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_policy_met_before_run_wait_fires_on_the_caller_before_it_returns)
{
	static const enum run_policy policies[] = {
		RUN_WAIT_ALL, RUN_WAIT_FIRST, RUN_WAIT_ANY,
	};
	struct future *fs[3];
	struct completer t[3];
	struct fired fr;
	struct run *r;
	int i;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(policies[_i], fs, 3);
	/* Completed on other threads, before the wait starts. */
	for (i = 0; i < 3; i++)
		completer_start(&t[i], fs[i], "done");
	for (i = 0; i < 3; i++)
		completer_join(&t[i]);
	run_wait(r, record_fire, &fr);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(pthread_equal(fr.thread, pthread_self()));
	ck_assert(!fr.expired);
	if (policies[_i] == RUN_WAIT_FIRST)
		ck_assert_int_eq(fr.winner, 0);
	/* For ALL and ANY, which one "met" it is not specified here. */
	ck_assert_int_ge(fr.winner, 0);
	ck_assert_int_lt(fr.winner, 3);
	ck_assert(fr.winner_done);
	ck_assert(!run_expire(r));
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_all_with_some_futures_done_before_run_wait_fires_on_the_last_completer)
{
	struct future *fs[3];
	struct completer t;
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_ALL, fs, 3);
	succeed(fs[0], "a");
	succeed(fs[2], "c");
	run_wait(r, record_fire, &fr);
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	completer_start(&t, fs[1], "b");
	completer_join(&t);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 1);
	ck_assert(pthread_equal(fr.thread, t.thread));
	ck_assert(fr.all_done);
	run_unref(r);
	unref_futures(fs, 3);
}
END_TEST

START_TEST(test_completion_after_run_wait_fires_on_the_completing_thread)
{
	struct future *fs[2];
	struct completer t;
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_ANY, fs, 2);
	run_wait(r, record_fire, &fr);
	completer_start(&t, fs[1], "b");
	completer_join(&t);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 1);
	ck_assert(pthread_equal(fr.thread, t.thread));
	ck_assert(!pthread_equal(fr.thread, pthread_self()));
	/*
	 * Every watched future must complete, or its watch keeps the run
	 * (and the run the future) alive: future.h says so of waiters.
	 */
	succeed(fs[0], "a");
	run_unref(r);
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_expire_before_the_policy_is_met_fires_once_as_expired)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_ALL, fs, 2);
	run_wait(r, record_fire, &fr);
	succeed(fs[0], "a");
	ck_assert(run_expire(r));
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(fr.expired);
	ck_assert_int_eq(fr.winner, -1);
	ck_assert(pthread_equal(fr.thread, pthread_self()));
	/* Neither a second expiry nor the policy being met fires again. */
	ck_assert(!run_expire(r));
	succeed(fs[1], "b");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(fr.expired);
	run_unref(r);
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_expire_after_the_policy_is_met_returns_false_and_fires_nothing)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_FIRST, fs, 2);
	run_wait(r, record_fire, &fr);
	succeed(fs[0], "a");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(!run_expire(r));
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(!fr.expired);
	ck_assert_int_eq(fr.winner, 0);
	succeed(fs[1], "b");
	run_unref(r);
	unref_futures(fs, 2);
}
END_TEST

/* Like completer_start(), but the thread takes over the caller's ref. */
static void
completer_start_owning(struct completer *c, struct future *f,
		       const char *result)
{
	c->future = f;
	c->result = result;
	c->won = false;
	c->unref_after = true;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, completer_main, c),
			 0);
}

START_TEST(test_run_outlives_its_detached_futures_whatever_the_unref_order)
{
	/*
	 * _i = 0: the caller drops the run, then future 0, then the
	 * completers drop the detached futures; _i = 1: future 0 first.
	 * Every object is freed by whoever lets go last: ASan reports a use
	 * after free or a leak otherwise.
	 */
	struct future *fs[3];
	struct completer t[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 3);
	r = run_new(RUN_WAIT_ANY, fs, 3);
	run_wait(r, record_fire, &fr);
	succeed(fs[0], "a");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 0);
	completer_start_owning(&t[0], fs[1], "b");
	if (_i == 0) {
		run_unref(r);
		future_unref(fs[0]);
	} else {
		future_unref(fs[0]);
		run_unref(r);
	}
	completer_start_owning(&t[1], fs[2], "c");
	completer_join(&t[0]);
	completer_join(&t[1]);
	ck_assert(t[0].won);
	ck_assert(t[1].won);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
}
END_TEST

START_TEST(test_callback_still_fires_after_the_caller_drops_the_run)
{
	struct future *fs[2];
	struct completer t;
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_ALL, fs, 2);
	run_wait(r, record_fire, &fr);
	run_unref(r);	/* the watches keep it alive */
	succeed(fs[0], "a");
	ck_assert_int_eq(atomic_load(&fr.count), 0);
	completer_start(&t, fs[1], "b");
	completer_join(&t);
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert_int_eq(fr.winner, 1);
	ck_assert(fr.all_done);
	ck_assert(pthread_equal(fr.thread, t.thread));
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_callback_may_drop_the_callers_run_reference)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	fr.drop_run = true;
	make_futures(fs, 2);
	r = run_new(RUN_WAIT_ANY, fs, 2);
	run_wait(r, record_fire, &fr);	/* r now belongs to the callback */
	succeed(fs[1], "b");
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	succeed(fs[0], "a");	/* the last watch frees the run */
	unref_futures(fs, 2);
}
END_TEST

START_TEST(test_callback_fires_once_when_run_wait_meets_the_policy_and_drops_the_run)
{
	struct future *fs[2];
	struct fired fr;
	struct run *r;

	fired_init(&fr);
	fr.drop_run = true;
	make_futures(fs, 2);
	succeed(fs[0], "a");
	succeed(fs[1], "b");
	r = run_new(RUN_WAIT_ALL, fs, 2);
	run_wait(r, record_fire, &fr);	/* fires and frees inside */
	ck_assert_int_eq(atomic_load(&fr.count), 1);
	ck_assert(fr.all_done);
	unref_futures(fs, 2);
}
END_TEST

/* ---- run: races ---------------------------------------------------------- */

#define RACE_FUTURES 4

/*
 * Threads that complete one future each (and optionally one that calls
 * run_expire()) while the main thread calls run_wait(), round after
 * round.  Two barriers per round: go, and all done.
 */
struct race {
	pthread_barrier_t go, done;
	atomic_bool stop;
	struct future *fs[RACE_FUTURES];
	struct run *run;
	bool expire;			/* a thread calls run_expire() */
	bool expire_won;		/* it returned true this round */
};

struct race_thread {
	struct race *race;
	int index;			/* future index, or -1 for run_expire */
};

static void *
race_main(void *arg)
{
	struct race_thread *rt = arg;
	struct race *rc = rt->race;

	for (;;) {
		pthread_barrier_wait(&rc->go);
		if (atomic_load(&rc->stop))
			break;
		if (rt->index >= 0)
			future_complete(rc->fs[rt->index], FUTURE_SUCCEEDED,
					strdup("x"), NULL);
		else
			rc->expire_won = run_expire(rc->run);
		pthread_barrier_wait(&rc->done);
	}
	return NULL;
}

static void
race_policy(enum run_policy policy, bool expire, int rounds)
{
	struct race rc;
	struct race_thread rt[RACE_FUTURES + 1];
	pthread_t threads[RACE_FUTURES + 1];
	unsigned nthreads = RACE_FUTURES + (expire ? 1 : 0);
	unsigned i;
	int round, expired_rounds = 0;

	memset(&rc, 0, sizeof(rc));
	atomic_init(&rc.stop, false);
	rc.expire = expire;
	pthread_barrier_init(&rc.go, NULL, nthreads + 1);
	pthread_barrier_init(&rc.done, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		rt[i].race = &rc;
		rt[i].index = i < RACE_FUTURES ? (int)i : -1;
		ck_assert_int_eq(pthread_create(&threads[i], NULL, race_main,
						&rt[i]), 0);
	}
	for (round = 0; round < rounds; round++) {
		struct fired fr;

		fired_init(&fr);
		make_futures(rc.fs, RACE_FUTURES);
		rc.run = run_new(policy, rc.fs, RACE_FUTURES);
		rc.expire_won = false;
		pthread_barrier_wait(&rc.go);
		run_wait(rc.run, record_fire, &fr);
		pthread_barrier_wait(&rc.done);

		/* Every future is complete now: the policy is met. */
		ck_assert_int_eq(atomic_load(&fr.count), 1);
		if (rc.expire_won) {
			expired_rounds++;
			ck_assert(fr.expired);
			ck_assert_int_eq(fr.winner, -1);
		} else if (policy == RUN_WAIT_NONE) {
			ck_assert(!fr.expired);
			ck_assert_int_eq(fr.winner, -1);
		} else {
			ck_assert(!fr.expired);
			ck_assert_int_ge(fr.winner, 0);
			ck_assert_int_lt(fr.winner, RACE_FUTURES);
			ck_assert(fr.winner_done);
			if (policy == RUN_WAIT_ALL)
				ck_assert(fr.all_done);
			if (policy == RUN_WAIT_FIRST)
				ck_assert_int_eq(fr.winner, 0);
		}
		ck_assert(!run_expire(rc.run));
		run_unref(rc.run);
		unref_futures(rc.fs, RACE_FUTURES);
	}
	atomic_store(&rc.stop, true);
	pthread_barrier_wait(&rc.go);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&rc.go);
	pthread_barrier_destroy(&rc.done);
	/* How often each side won is luck; that it fired once is not. */
	(void)expired_rounds;
}

#define RACE_ROUNDS 1000

START_TEST(test_all_fires_exactly_once_with_completions_racing_run_wait)
{
	race_policy(RUN_WAIT_ALL, false, RACE_ROUNDS);
}
END_TEST

START_TEST(test_first_fires_exactly_once_with_completions_racing_run_wait)
{
	race_policy(RUN_WAIT_FIRST, false, RACE_ROUNDS);
}
END_TEST

START_TEST(test_any_fires_exactly_once_with_completions_racing_run_wait)
{
	race_policy(RUN_WAIT_ANY, false, RACE_ROUNDS);
}
END_TEST

START_TEST(test_expire_racing_run_wait_and_completions_fires_exactly_once)
{
	static const enum run_policy policies[] = {
		RUN_WAIT_ALL, RUN_WAIT_FIRST, RUN_WAIT_ANY, RUN_WAIT_NONE,
	};

	race_policy(policies[_i], true, RACE_ROUNDS / 2);
}
END_TEST

static Suite *
future_suite(void)
{
	Suite *s = suite_create("future");
	TCase *tc;

	tc = tcase_create("states");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_new_future_is_queued_with_no_result_and_only_a_creation_time);
	tcase_add_test(tc, test_start_moves_a_queued_future_to_running_and_records_the_time);
	tcase_add_test(tc, test_start_of_a_running_future_fails_and_changes_nothing);
	tcase_add_test(tc, test_start_of_a_cancelled_future_fails);
	tcase_add_test(tc, test_start_of_a_completed_future_fails);
	tcase_add_loop_test(tc, test_complete_sets_terminal_state_result_and_error, 0, 4);
	tcase_add_test(tc, test_complete_accepts_null_result_and_error);
	tcase_add_test(tc, test_complete_records_the_finish_time_and_the_runtime_from_start);
	tcase_add_test(tc, test_runtime_of_a_future_completed_without_start_counts_from_creation);
	tcase_add_test(tc, test_first_completion_wins_and_a_later_one_frees_its_strings);
	tcase_add_test(tc, test_a_losing_completion_does_not_run_callbacks_again);
	tcase_add_test(tc, test_cancel_of_a_queued_future_cancels_it_and_runs_the_callbacks);
	tcase_add_test(tc, test_cancel_of_a_running_future_returns_false_and_changes_nothing);
	tcase_add_test(tc, test_cancel_of_a_completed_future_returns_false);
	tcase_add_test(tc, test_state_names_match_the_http_api);
	tcase_add_test(tc, test_only_the_four_terminal_states_are_done);
	tcase_add_test(tc, test_snapshot_shows_each_stage_of_a_future);
	suite_add_tcase(s, tc);

	tc = tcase_create("snapshot race");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_snapshot_never_mixes_a_running_and_a_completed_future);
	suite_add_tcase(s, tc);

	tc = tcase_create("callbacks");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_complete_runs_callbacks_in_registration_order);
	tcase_add_test(tc, test_callback_registered_before_completion_runs_on_the_completing_thread);
	tcase_add_test(tc, test_callback_registered_after_completion_runs_at_once_on_the_caller);
	tcase_add_test(tc, test_waiters_read_the_final_state_and_run_time_without_the_lock);
	tcase_add_test(tc, test_a_result_in_the_room_lives_and_goes_with_the_future);
	tcase_add_test(tc, test_callbacks_do_not_run_before_completion);
	tcase_add_test(tc, test_callback_registered_while_completing_runs_exactly_once);
	tcase_add_test(tc, test_callback_may_drop_the_last_owner_reference);
	tcase_add_test(tc, test_callback_may_free_its_own_waiter_storage);
	tcase_add_test(tc, test_ref_keeps_the_future_alive_after_the_creator_unrefs);
	tcase_add_test(tc, test_concurrent_completions_have_exactly_one_winner);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_policy_names_round_trip);
	tcase_add_test(tc, test_run_over_no_futures_is_refused);
	tcase_add_test(tc, test_run_lists_its_futures_in_order_and_holds_its_own_references);
	tcase_add_test(tc, test_all_fires_when_the_last_future_completes_with_its_index);
	tcase_add_test(tc, test_all_counts_failures_as_completions);
	tcase_add_test(tc, test_first_waits_for_the_first_listed_future_only);
	tcase_add_test(tc, test_first_fires_without_waiting_for_the_others);
	tcase_add_test(tc, test_any_fires_on_whichever_future_completes_first);
	tcase_add_test(tc, test_none_fires_at_once_on_the_caller_without_a_winner);
	tcase_add_loop_test(tc, test_policy_met_before_run_wait_fires_on_the_caller_before_it_returns, 0, 3);
	tcase_add_test(tc, test_all_with_some_futures_done_before_run_wait_fires_on_the_last_completer);
	tcase_add_test(tc, test_completion_after_run_wait_fires_on_the_completing_thread);
	tcase_add_test(tc, test_expire_before_the_policy_is_met_fires_once_as_expired);
	tcase_add_test(tc, test_expire_after_the_policy_is_met_returns_false_and_fires_nothing);
	tcase_add_loop_test(tc, test_run_outlives_its_detached_futures_whatever_the_unref_order, 0, 2);
	tcase_add_test(tc, test_callback_still_fires_after_the_caller_drops_the_run);
	tcase_add_test(tc, test_callback_may_drop_the_callers_run_reference);
	tcase_add_test(tc, test_callback_fires_once_when_run_wait_meets_the_policy_and_drops_the_run);
	suite_add_tcase(s, tc);

	/* Thousands of rounds of thread hand-offs: slow under TSan/valgrind. */
	tc = tcase_create("run races");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_all_fires_exactly_once_with_completions_racing_run_wait);
	tcase_add_test(tc, test_first_fires_exactly_once_with_completions_racing_run_wait);
	tcase_add_test(tc, test_any_fires_exactly_once_with_completions_racing_run_wait);
	tcase_add_loop_test(tc, test_expire_racing_run_wait_and_completions_fires_exactly_once, 0, 4);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(future_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
