/*
 * sleep.c - kind `sleep`: waits `duration`, then succeeds with `result`.
 *
 * Served by the timer thread alone: a sleeping job holds no worker, which
 * is what lets thousands of them wait at once.  A zero duration completes
 * at once, on the caller's thread.  If the job's timeout is
 * shorter than its duration it times out then instead.  (config refuses
 * that combination today, but the kind does not rely on it.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "job.h"
#include "kinds/kinds.h"

static int
sleep_set(struct job_def *def, const char *key, const char *value,
	  char *why, size_t whylen)
{
	char *copy;

	if (!strcmp(key, "duration")) {
		if (config_parse_duration(value, &def->duration_ns) == 0)
			return 0;
		snprintf(why, whylen, "bad value '%s' for duration (expected "
			 "a duration up to 7d, e.g. 1s or 250ms)", value);
		return -1;
	}
	if (!strcmp(key, "result")) {
		if ((copy = strdup(value)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(def->result);
		def->result = copy;
		return 0;
	}
	return 1;
}

static int
sleep_check(struct job_def *def, char *why, size_t whylen)
{
	if (def->duration_ns > def->timeout_ns) {
		snprintf(why, whylen, "duration is longer than its timeout "
			 "(raise timeout)");
		return -1;
	}
	if (def->result == NULL && (def->result = strdup("")) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/* Succeeds with a copy of the result; fails if it cannot be copied. */
static void
succeed(struct job_instance *inst)
{
	char *copy = strdup(inst->def->result);

	if (copy != NULL)
		future_complete(inst->future, FUTURE_SUCCEEDED, copy, NULL);
	else
		future_complete(inst->future, FUTURE_FAILED, NULL, NULL);
}

/* The instance's timer entry fired or was discarded at shutdown. */
static void
sleep_fire(struct timer_entry *e, bool fired)
{
	struct job_instance *inst = (struct job_instance *)
		((char *)e - offsetof(struct job_instance, timer));
	const struct job_def *def = inst->def;

	if (!fired)
		future_complete(inst->future, FUTURE_CANCELLED, NULL,
				strdup("daemon stopped"));
	else if (def->duration_ns <= def->timeout_ns)
		succeed(inst);
	else
		future_complete(inst->future, FUTURE_TIMED_OUT, NULL,
				strdup("timed out"));
	job_unref(inst);	/* the timer entry's reference */
}

static int
sleep_start(struct job_instance *inst, struct job_env *env)
{
	const struct job_def *def = inst->def;
	int64_t delay = def->duration_ns < def->timeout_ns ?
			def->duration_ns : def->timeout_ns;

	if (!future_start(inst->future))
		return 0;	/* cancelled before it started: nothing to do */
	if (delay == 0) {
		/* Nothing to wait for: skip the round trip to the timer. */
		succeed(inst);
		return 0;
	}
	job_ref(inst);
	if (timer_add(env->timer, &inst->timer, delay) != 0) {
		int err = errno;

		job_unref(inst);
		errno = err;
		return -1;
	}
	return 0;
}

static bool
sleep_cancel(struct job_instance *inst, struct job_env *env)
{
	if (!timer_cancel(env->timer, &inst->timer))
		return false;	/* it fired: the timer path completes it */
	future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
	job_unref(inst);
	return true;
}

const struct job_kind job_kind_sleep = {
	.name = "sleep",
	.set = sleep_set,
	.check = sleep_check,
	.start = sleep_start,
	.cancel = sleep_cancel,
	.fire = sleep_fire,
};
