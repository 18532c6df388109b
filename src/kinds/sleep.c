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
#include "kinds/kind.h"
#include "kinds/sleep.h"

/*
 * The definition's sleep_def, made at the first call with its defaults.
 * Returns it, or NULL with the reason written to why.
 */
static struct sleep_def *
sleep_def_of(struct job_def *def, char *why, size_t whylen)
{
	if (def->kind_data == NULL &&
	    (def->kind_data = calloc(1, sizeof(struct sleep_def))) == NULL)
		snprintf(why, whylen, "out of memory");
	return def->kind_data;
}

static int
sleep_parse(struct job_def *def, const char *key, const char *value,
	    char *why, size_t whylen)
{
	struct sleep_def *sd;
	char *copy;

	if (strcmp(key, "duration") && strcmp(key, "result"))
		return 1;
	if ((sd = sleep_def_of(def, why, whylen)) == NULL)
		return -1;
	if (!strcmp(key, "duration")) {
		if (config_parse_duration(value, &sd->duration_ns) == 0)
			return 0;
		snprintf(why, whylen, "bad value '%s' for duration (expected "
			 "a duration up to 7d, e.g. 1s or 250ms)", value);
		return -1;
	}
	if ((copy = strdup(value)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	free(sd->result);
	sd->result = copy;
	return 0;
}

static int
sleep_check(struct job_def *def, char *why, size_t whylen)
{
	struct sleep_def *sd = sleep_def_of(def, why, whylen);

	if (sd == NULL)
		return -1;
	if (sd->duration_ns > def->timeout_ns) {
		snprintf(why, whylen, "duration is longer than its timeout "
			 "(raise timeout)");
		return -1;
	}
	if (sd->result == NULL && (sd->result = strdup("")) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

static void
sleep_free(void *kind_data)
{
	struct sleep_def *sd = kind_data;

	if (sd == NULL)
		return;
	free(sd->result);
	free(sd);
}

/* Room in each instance for a copy of the result (sleep_end()). */
static size_t
sleep_room(const struct job_def *def)
{
	const struct sleep_def *sd = def->kind_data;

	return sd != NULL && sd->result != NULL ? strlen(sd->result) + 1 : 0;
}

/*
 * Ends the job as its time says: SUCCEEDED with a copy of the result in
 * the instance's room (or strdup()ed, FAILED if it cannot be), or
 * TIMED_OUT.  Unless a cancel came:
 * one that came while the entry was being fired found nothing to disarm,
 * and this is where it wins.
 */
static void
sleep_end(struct job_instance *inst)
{
	const struct job_def *def = inst->def;
	const struct sleep_def *sd = def->kind_data;
	char *copy;

	if (job_cancel_requested(inst))
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
	else if (sd->duration_ns > def->timeout_ns)
		future_complete(inst->future, FUTURE_TIMED_OUT, NULL,
				strdup("timed out"));
	else if (inst->kind_room != NULL)	/* sized by sleep_room() */
		future_complete_as(inst->future, FUTURE_SUCCEEDED,
				   memcpy(inst->kind_room, sd->result,
					  strlen(sd->result) + 1),
				   FUTURE_RESULT_IN_ROOM, NULL);
	else if ((copy = strdup(sd->result)) != NULL)
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

	if (!fired)
		future_complete(inst->future, FUTURE_CANCELLED, NULL,
				strdup("daemon stopped"));
	else
		sleep_end(inst);
	job_unref(inst);	/* the timer entry's reference */
}

static bool
sleep_cancel(struct job_instance *inst, struct job_env *env)
{
	if (!timer_cancel(env->timer, &inst->timer))
		return false;	/* not armed yet, or fired: see job_cancel() */
	future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
	job_unref(inst);
	return true;
}

/*
 * The caller (job_run()'s) holds a reference, so inst outlives the timer
 * entry's even if it fires or is cancelled before this returns.
 */
static int
sleep_start(struct job_instance *inst, struct job_env *env)
{
	const struct job_def *def = inst->def;
	const struct sleep_def *sd = def->kind_data;
	int64_t delay = sd->duration_ns < def->timeout_ns ?
			sd->duration_ns : def->timeout_ns;

	if (!future_start(inst->future))
		return 0;	/* cancelled before it started: nothing to do */
	if (env->test_after_start != NULL)
		env->test_after_start(inst);
	job_note_started(inst);
	if (delay == 0) {
		/* Nothing to wait for: skip the round trip to the timer. */
		sleep_end(inst);
		return 0;
	}
	job_ref(inst);
	if (timer_add(env->timer, &inst->timer, delay) != 0) {
		int err = errno;

		job_unref(inst);
		errno = err;
		return -1;
	}
	/*
	 * A cancel since future_start() found the future RUNNING and the
	 * entry not armed, so it stopped nothing: it left its mark, which
	 * the timer's lock orders before this read.  Whoever of us and a
	 * later cancel disarms the entry completes the job.
	 */
	if (job_cancel_requested(inst))
		sleep_cancel(inst, env);
	return 0;
}

const struct job_kind job_kind_sleep = {
	.name = "sleep",
	.parse = sleep_parse,
	.check = sleep_check,
	.free = sleep_free,
	.start = sleep_start,
	.room = sleep_room,
	.cancel = sleep_cancel,
	.fire = sleep_fire,
};
