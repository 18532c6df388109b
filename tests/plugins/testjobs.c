/*
 * testjobs.c - job functions for the tests of the plugin kind, each doing
 * one thing a plugin may do.  Parameters (all optional):
 *   fd: a descriptor to write one byte to when the function starts, so
 *       that a test knows it is running;
 *   ms: how long `stubborn` works.
 */
#define _POSIX_C_SOURCE 200809L	/* nanosleep() under -std=c11 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <taskpoold/job.h>

TASKPOOLD_PLUGIN;

json_t *echo(const struct taskpoold_call *call, char *error, size_t errlen);
json_t *fail(const struct taskpoold_call *call, char *error, size_t errlen);
json_t *fail_silently(const struct taskpoold_call *call, char *error,
		      size_t errlen);
json_t *fail_badly(const struct taskpoold_call *call, char *error,
		   size_t errlen);
json_t *wait_cancel(const struct taskpoold_call *call, char *error,
		    size_t errlen);
json_t *leak(const struct taskpoold_call *call, char *error, size_t errlen);
json_t *uninit(const struct taskpoold_call *call, char *error,
	      size_t errlen);
json_t *stubborn(const struct taskpoold_call *call, char *error,
		 size_t errlen);

/* Writes a byte to the `fd` parameter, if there is one. */
static void
say_started(const struct taskpoold_call *call)
{
	json_t *fd = json_object_get(call->params, "fd");
	ssize_t n;

	if (json_is_integer(fd))
		do
			n = write((int)json_integer_value(fd), "s", 1);
		while (n < 0 && errno == EINTR);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Succeeds with its parameters and the job's name and id. */
json_t *
echo(const struct taskpoold_call *call, char *error, size_t errlen)
{
	say_started(call);
	return json_pack("{s:O,s:s,s:s,s:b}", "params", call->params,
			 "job", call->job, "id", call->id,
			 "size_ok", call->size >= sizeof(*call));
}

json_t *
fail(const struct taskpoold_call *call, char *error, size_t errlen)
{
	snprintf(error, errlen, "no such thing: %s", call->job);
	return NULL;
}

/* Returns NULL and writes no error. */
json_t *
fail_silently(const struct taskpoold_call *call, char *error, size_t errlen)
{
	return NULL;
}

/* An error that is not UTF-8, and fills the whole buffer without a NUL. */
json_t *
fail_badly(const struct taskpoold_call *call, char *error, size_t errlen)
{
	memset(error, 0xff, errlen);
	return NULL;
}

/* Runs until it is cancelled, then returns a value (to be discarded). */
json_t *
wait_cancel(const struct taskpoold_call *call, char *error, size_t errlen)
{
	say_started(call);
	while (!taskpoold_cancelled(call))
		sleep_ms(1);
	return json_string("saw the flag");
}

/* Works `ms` milliseconds (default 300) and never looks at the flag. */
json_t *
stubborn(const struct taskpoold_call *call, char *error, size_t errlen)
{
	json_t *ms = json_object_get(call->params, "ms");

	say_started(call);
	sleep_ms(json_is_integer(ms) ? (long)json_integer_value(ms) : 300);
	return json_string("done anyway");
}

/*
 * Faults for valgrind to find (tests/system/test_faults.py checks that a
 * daemon under it fails its test when a job does these).  leak() loses a
 * block: a definite leak at exit.
 */
json_t *
leak(const struct taskpoold_call *call, char *error, size_t errlen)
{
	char *lost = malloc(100);

	if (lost == NULL)
		return NULL;
	snprintf(lost, 100, "lost by %s", call->job);
	return json_string(lost);	/* lost's last pointer goes here */
}

/* Branches on a byte that was never written. */
json_t *
uninit(const struct taskpoold_call *call, char *error, size_t errlen)
{
	unsigned char *raw = malloc(16);
	/* Through a volatile pointer: the compiler must not see it either. */
	unsigned char *volatile seen = raw;
	json_t *value;

	if (raw == NULL)
		return NULL;
	value = json_string(seen[7] > 127 ? "high" : "low");
	free(raw);
	return value;
}
