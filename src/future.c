/*
 * future.c - see future.h.
 *
 * Locking: each future has one mutex guarding its state, result, error,
 * times and callback list.  It is a leaf lock: no other lock is taken while
 * it is held, and callbacks are moved out of the list and called after it
 * is released (the libuv habit), so a callback may freely take other locks
 * or touch other futures.  The lock order of the whole daemon is written
 * down in docs/THREADS.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "future.h"

struct future {
	atomic_uint refs;
	pthread_mutex_t lock;	/* guards everything below */
	enum future_state state;
	char *result;
	unsigned result_flags;	/* without FUTURE_RESULT_IN_ROOM */
	bool result_in_room;	/* result is not to be freed apart */
	char *error;
	struct future_times times;
	int64_t mono_begin;	/* monotonic ns at start (or creation) */
	int64_t mono_end;	/* monotonic ns at completion */
	struct future_waiter *callbacks;	/* in registration order */
	struct future_waiter **callbacks_tail;
};

/* Where the room of future_new_with() begins: aligned for anything. */
#define FUTURE_ROOM_AT \
	((sizeof(struct future) + _Alignof(max_align_t) - 1) / \
	 _Alignof(max_align_t) * _Alignof(max_align_t))

struct future *
future_new_with(size_t room, void **roomp)
{
	struct future *f = calloc(1, FUTURE_ROOM_AT + room);

	if (f == NULL)
		return NULL;
	atomic_init(&f->refs, 1);
	pthread_mutex_init(&f->lock, NULL);
	f->state = FUTURE_QUEUED;
	f->times.created = clock_now_ns(CLOCK_REALTIME);
	f->mono_begin = clock_now_ns(CLOCK_MONOTONIC);
	f->callbacks_tail = &f->callbacks;
	if (roomp != NULL)
		*roomp = room > 0 ? (char *)f + FUTURE_ROOM_AT : NULL;
	return f;
}

struct future *
future_new(void)
{
	return future_new_with(0, NULL);
}

struct future *
future_ref(struct future *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void
future_unref(struct future *f)
{
	if (f == NULL)
		return;
	/* acq_rel: every holder's writes happen before the free below. */
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	/*
	 * Waiters of a future freed before completing are never called; they
	 * belong to their registrars, who must not let that happen.
	 */
	pthread_mutex_destroy(&f->lock);
	if (!f->result_in_room)
		free(f->result);
	free(f->error);
	free(f);
}

bool
future_state_is_done(enum future_state s)
{
	return s != FUTURE_QUEUED && s != FUTURE_RUNNING;
}

bool
future_start(struct future *f)
{
	bool started = false;

	pthread_mutex_lock(&f->lock);
	if (f->state == FUTURE_QUEUED) {
		f->state = FUTURE_RUNNING;
		f->times.started = clock_now_ns(CLOCK_REALTIME);
		f->mono_begin = clock_now_ns(CLOCK_MONOTONIC);
		started = true;
	}
	pthread_mutex_unlock(&f->lock);
	return started;
}

/*
 * Moves f to the terminal `state` if it is not complete yet (and, when
 * only_if_queued, if it is still QUEUED), then runs the callbacks.  result
 * and error are stolen either way.  Returns true if this call completed f.
 */
static bool
complete_and_notify(struct future *f, enum future_state state, char *result,
		    unsigned flags, char *error, bool only_if_queued)
{
	struct future_waiter *w, *next;

	pthread_mutex_lock(&f->lock);
	if (future_state_is_done(f->state) || !future_state_is_done(state) ||
	    (only_if_queued && f->state != FUTURE_QUEUED)) {
		pthread_mutex_unlock(&f->lock);
		if (!(flags & FUTURE_RESULT_IN_ROOM))
			free(result);
		free(error);
		return false;
	}
	f->state = state;
	f->result = result;
	f->result_flags = flags & ~FUTURE_RESULT_IN_ROOM;
	f->result_in_room = (flags & FUTURE_RESULT_IN_ROOM) != 0;
	f->error = error;
	f->times.finished = clock_now_ns(CLOCK_REALTIME);
	f->mono_end = clock_now_ns(CLOCK_MONOTONIC);
	w = f->callbacks;
	f->callbacks = NULL;
	f->callbacks_tail = &f->callbacks;
	pthread_mutex_unlock(&f->lock);

	/*
	 * A callback may drop the last reference its owner held, so keep the
	 * future alive until they have all run.
	 */
	future_ref(f);
	for (; w != NULL; w = next) {
		next = w->next;	/* w may be freed by its own callback */
		w->fn(f, w->arg);
	}
	future_unref(f);
	return true;
}

bool
future_complete(struct future *f, enum future_state state, char *result,
		char *error)
{
	return complete_and_notify(f, state, result, 0, error, false);
}

bool
future_complete_as(struct future *f, enum future_state state, char *result,
		   unsigned flags, char *error)
{
	return complete_and_notify(f, state, result, flags, error, false);
}

bool
future_cancel(struct future *f)
{
	return complete_and_notify(f, FUTURE_CANCELLED, NULL, 0, NULL, true);
}

void
future_on_done(struct future *f, struct future_waiter *w, future_callback fn,
	       void *arg)
{
	w->next = NULL;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&f->lock);
	if (!future_state_is_done(f->state)) {
		*f->callbacks_tail = w;
		f->callbacks_tail = &w->next;
		pthread_mutex_unlock(&f->lock);
		return;
	}
	pthread_mutex_unlock(&f->lock);
	fn(f, arg);
}

enum future_state
future_state(struct future *f)
{
	enum future_state s;

	pthread_mutex_lock(&f->lock);
	s = f->state;
	pthread_mutex_unlock(&f->lock);
	return s;
}

const char *
future_state_name(enum future_state s)
{
	switch (s) {
	case FUTURE_QUEUED:	return "queued";
	case FUTURE_RUNNING:	return "running";
	case FUTURE_SUCCEEDED:	return "succeeded";
	case FUTURE_FAILED:	return "failed";
	case FUTURE_CANCELLED:	return "cancelled";
	case FUTURE_TIMED_OUT:	return "timed_out";
	}
	return "unknown";
}

/*
 * Result and error never change once the future is complete, so after a
 * locked check of the state they can be read without the lock.
 */
const char *
future_result(struct future *f)
{
	const char *r = NULL;

	pthread_mutex_lock(&f->lock);
	if (future_state_is_done(f->state))
		r = f->result;
	pthread_mutex_unlock(&f->lock);
	return r;
}

const char *
future_error(struct future *f)
{
	const char *e = NULL;

	pthread_mutex_lock(&f->lock);
	if (future_state_is_done(f->state))
		e = f->error;
	pthread_mutex_unlock(&f->lock);
	return e;
}

struct future_times
future_times(struct future *f)
{
	struct future_times t;

	pthread_mutex_lock(&f->lock);
	t = f->times;
	pthread_mutex_unlock(&f->lock);
	return t;
}

int64_t
future_runtime_ns(struct future *f)
{
	int64_t ns = 0;

	pthread_mutex_lock(&f->lock);
	if (future_state_is_done(f->state))
		ns = f->mono_end - f->mono_begin;
	pthread_mutex_unlock(&f->lock);
	return ns;
}

/* No lock: see future.h for who may call it. */
struct future_final
future_final(const struct future *f)
{
	struct future_final d = { f->state, f->mono_end - f->mono_begin,
				    f->mono_end };

	return d;
}

/* One lock for all: see future.h.  Result and error as future_result(). */
struct future_snapshot
future_snapshot(struct future *f)
{
	struct future_snapshot s = { .result = NULL, .result_flags = 0,
				      .error = NULL };

	pthread_mutex_lock(&f->lock);
	s.state = f->state;
	if (future_state_is_done(f->state)) {
		s.result = f->result;
		s.result_flags = f->result_flags;
		s.error = f->error;
	}
	s.times = f->times;
	pthread_mutex_unlock(&f->lock);
	return s;
}
