/*
 * clock.c - see clock.h.
 *
 * The failure message is written with one write(2), not through log.c:
 * logging reads the clock, and the process is about to abort anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

void
clock_now(clockid_t id, struct timespec *ts)
{
	char msg[128];
	int n;

	if (clock_gettime(id, ts) == 0)
		return;
	n = snprintf(msg, sizeof(msg), "taskpoold: clock_gettime(clock %ld) "
		     "failed: %s (a bug)\n", (long)id, strerror(errno));
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ?
			     (size_t)n : sizeof(msg) - 1);
	abort();
}

int64_t
clock_now_ns(clockid_t id)
{
	struct timespec ts;

	clock_now(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
