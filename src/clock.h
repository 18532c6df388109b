/*
 * clock.h - reading the clocks, once for the whole daemon.
 *
 * clock_gettime() fails only for a clock id the kernel does not know
 * (EINVAL) or a bad pointer (EFAULT): both are programming errors, not
 * conditions to handle.  Rather than have every caller check, and go on
 * computing deadlines and timestamps from an uninitialized timespec when
 * one forgets, these functions report the failure on stderr and abort().
 */
#ifndef TASKPOOLD_CLOCK_H
#define TASKPOOLD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Fills *ts from clock id.  This function can't fail: it aborts. */
void clock_now(clockid_t id, struct timespec *ts);

/* The clock in nanoseconds.  This function can't fail: it aborts. */
int64_t clock_now_ns(clockid_t id);

#endif
