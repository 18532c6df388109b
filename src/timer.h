/*
 * timer.h - one thread that fires callbacks at monotonic deadlines.
 *
 * Timer entries are embedded in their owner's struct (intrusive), so arming
 * one never allocates except to grow the heap.  Exactly one of these
 * happens to an armed entry: its callback runs on the timer thread, or
 * timer_cancel() returns true, or timer_free() discards it (callback runs
 * with fired = false).  The owner releases whatever the entry stood for in
 * that one place.
 *
 * Callbacks run without the timer's lock held and may arm or cancel
 * entries, but must be short: they delay every later deadline.
 */
#ifndef TASKPOOLD_TIMER_H
#define TASKPOOLD_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timer;
struct timer_entry;

/* fired: true when the deadline passed, false when discarded at shutdown. */
typedef void (*timer_callback)(struct timer_entry *e, bool fired);

struct timer_entry {
	/* Private to timer.c; guarded by the timer's lock. */
	int64_t deadline_ns;
	uint64_t seq;
	long index;		/* slot in the heap, -1 when not armed */
	timer_callback cb;
};

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
int64_t timer_now_ns(void);

/* New timer with its thread running, or NULL with errno set. */
struct timer *timer_new(void);

/* Prepares an entry (not armed).  This function can't fail. */
void timer_entry_init(struct timer_entry *e, timer_callback cb);

/*
 * Arms e to fire `delay_ns` from now (0 or less: as soon as possible).
 * e must not be armed.  Returns 0, or -1 with errno ENOMEM or ESHUTDOWN
 * (timer stopping); e is then not armed and its callback will not run.
 */
int timer_add(struct timer *t, struct timer_entry *e, int64_t delay_ns);

/*
 * Disarms e.  Returns true if it was armed (its callback will not run),
 * false if it already fired, is firing, or was never armed.
 */
bool timer_cancel(struct timer *t, struct timer_entry *e);

/* Number of armed entries. */
unsigned long timer_pending(struct timer *t);

/*
 * Slots in the heap: it doubles when full and halves when less than a
 * quarter full, never below TIMER_MIN_CAPACITY.  For tests.
 */
#define TIMER_MIN_CAPACITY 64
size_t timer_capacity(struct timer *t);

/*
 * Stops the thread and discards every armed entry (callbacks run on the
 * caller with fired = false), then frees the timer.  NULL is ok.
 */
void timer_free(struct timer *t);

#endif
