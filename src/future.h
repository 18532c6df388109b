/*
 * future.h - the outcome of one job instance, shared between threads.
 *
 * A future starts QUEUED, may move to RUNNING, and ends in exactly one
 * terminal state (SUCCEEDED, FAILED, CANCELLED, TIMED_OUT).  The first
 * completion wins; later attempts are ignored and reported as such.
 * Completion callbacks run once, on the thread that completes the future,
 * without any future lock held, in the order they were registered.
 *
 * Ownership: future_new() returns a new reference; every holder takes its
 * own with future_ref() and gives it back with future_unref().  The last
 * unref frees the future with its result and error.
 */
#ifndef TASKPOOLD_FUTURE_H
#define TASKPOOLD_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum future_state {
	FUTURE_QUEUED,
	FUTURE_RUNNING,
	FUTURE_SUCCEEDED,
	FUTURE_FAILED,
	FUTURE_CANCELLED,
	FUTURE_TIMED_OUT,
};

struct future;

/* Called once when the future completes; f is borrowed for the call. */
typedef void (*future_callback)(struct future *f, void *arg);

/* New future in state QUEUED, refcount 1, or NULL when out of memory. */
struct future *future_new(void);

/*
 * future_new(), with `room` zeroed bytes in the same block, aligned for
 * any type, at *roomp (NULL when room is 0): for an owner whose life
 * ends before the future's, so that the two take one allocation.  The
 * room is freed with the future, at its last reference; its owner must
 * hold a reference for as long as it uses the room.
 */
struct future *future_new_with(size_t room, void **roomp);

/* Takes a reference; returns f.  This function can't fail. */
struct future *future_ref(struct future *f);

/* Gives a reference back; frees the future on the last one.  NULL is ok. */
void future_unref(struct future *f);

/*
 * QUEUED -> RUNNING.  Returns false, changing nothing, when the future is no
 * longer queued (it was cancelled or completed): the caller must not run it.
 */
bool future_start(struct future *f);

/*
 * Moves the future to the terminal state `state` and runs the callbacks.
 * `result` and `error` are stolen (either may be NULL).  Returns true if
 * this call completed the future; false if it was already complete, in
 * which case result and error are freed and nothing else happens.
 */
bool future_complete(struct future *f, enum future_state state,
		     char *result, char *error);

/*
 * What a result's text is, for those who show it.  A plain result is text
 * (shown as a JSON string); FUTURE_RESULT_JSON says it is a JSON document
 * (exec's `output = json`, an upstream's JSON, a plugin's value), shown as
 * the value it encodes; FUTURE_RESULT_TRUNCATED says it was cut at a size
 * limit.  future_complete() is future_complete_as() with flags 0.
 */
#define FUTURE_RESULT_JSON	 1u
#define FUTURE_RESULT_TRUNCATED	 2u
/*
 * Not a kind of text but where it lies: in the room of the future's own
 * block (future_new_with()), so it is not freed apart and lives exactly as
 * long as the future.  Kept apart from the flags that readers see.
 */
#define FUTURE_RESULT_IN_ROOM	 4u
bool future_complete_as(struct future *f, enum future_state state,
			char *result, unsigned flags, char *error);

/*
 * Cancels the future if it is still QUEUED.  Returns true if it was
 * cancelled by this call (callbacks have then run), false otherwise.
 * A running job is not interrupted by this function.
 */
bool future_cancel(struct future *f);

/*
 * Storage for one registered callback, provided by the caller so that
 * registering cannot fail.  It must stay valid until the callback has run.
 */
struct future_waiter {
	struct future_waiter *next;	/* private to future.c */
	future_callback fn;
	void *arg;
};

/*
 * Registers fn(f, arg) to run when the future completes, using w as its
 * storage.  If the future is already complete, fn runs now on the calling
 * thread before this returns.  This function can't fail.
 */
void future_on_done(struct future *f, struct future_waiter *w,
		    future_callback fn, void *arg);

/* A snapshot of the state; stale as soon as it returns unless terminal. */
enum future_state future_state(struct future *f);

/* True for the four terminal states. */
bool future_state_is_done(enum future_state s);

/* "queued", "running", ... as used in the HTTP API and the logs. */
const char *future_state_name(enum future_state s);

/*
 * Result and error of a completed future, borrowed: valid while the caller
 * holds a reference.  NULL while the future is not complete.
 */
const char *future_result(struct future *f);
const char *future_error(struct future *f);

/*
 * Times of the transitions, in nanoseconds since the Unix epoch
 * (CLOCK_REALTIME), 0 when the transition has not happened.
 * future_runtime_ns() is the monotonic time from start (or creation, for a
 * future completed without starting) to completion, 0 while not complete.
 */
struct future_times {
	int64_t created;
	int64_t started;
	int64_t finished;
};
struct future_times future_times(struct future *f);
int64_t future_runtime_ns(struct future *f);

/*
 * The final state and run time (as future_runtime_ns()) of a future known
 * to be complete, read without its lock: nothing changes them once it is
 * complete, and whoever knows that has seen the completion's writes.  For
 * its waiters (called after the completion, on the completing thread or
 * after a locked check) and callers that saw it done; not for any other.
 * It saves a waiter one lock per value (bench/callgrind).  ended_ns is
 * when it completed, by CLOCK_MONOTONIC (clock_now_ns()), read once by
 * the completion: a waiter that dates the end takes it rather than
 * reading the clock again.
 */
struct future_final {
	enum future_state state;
	int64_t runtime_ns;
	int64_t ended_ns;
};
struct future_final future_final(const struct future *f);

/*
 * State, result, error and times read together under the future's lock
 * once, so that they agree, as the separate calls above cannot: another
 * thread may complete the future between two of them.  In a snapshot, the
 * state is done exactly when times.finished is set; result and error are
 * NULL unless it is done; started is set whenever the state is RUNNING.
 * result and error are borrowed: valid while the caller holds a reference
 * on f, since they never change once the future is complete.
 */
struct future_snapshot {
	enum future_state state;
	const char *result;
	unsigned result_flags;		/* FUTURE_RESULT_*; 0 unless done */
	const char *error;
	struct future_times times;
};
struct future_snapshot future_snapshot(struct future *f);

#endif
