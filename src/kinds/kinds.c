/*
 * kinds.c - see kinds.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "kinds/kinds.h"

/* Every kind the daemon knows: one line per kind. */
static const struct job_kind *const job_kinds[] = {
	&job_kind_sleep,
	&job_kind_exec,
	&job_kind_http,
	&job_kind_plugin,
};

#define NKINDS (sizeof(job_kinds) / sizeof(job_kinds[0]))
_Static_assert(NKINDS <= JOB_KINDS_MAX, "raise JOB_KINDS_MAX in job.h");

const struct job_kind *
job_kind_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKINDS; i++)
		if (!strcmp(job_kinds[i]->name, name))
			return job_kinds[i];
	return NULL;
}

/* Written once, under pthread_once(), and only read after. */
static char kind_names[128];

/* "a, b, c" from the table, so that adding a kind updates the message. */
static void
list_kind_names(void)
{
	size_t i, len = 0;
	int n;

	for (i = 0; i < NKINDS; i++) {
		n = snprintf(kind_names + len, sizeof(kind_names) - len,
			     "%s%s", i > 0 ? ", " : "", job_kinds[i]->name);
		if (n < 0 || (size_t)n >= sizeof(kind_names) - len) {
			kind_names[len] = '\0';	/* whole names only */
			break;
		}
		len += (size_t)n;
	}
}

const char *
job_kind_names(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, list_kind_names);
	return kind_names;
}

int
kinds_global_init(char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < NKINDS; i++)
		if (job_kinds[i]->global_init != NULL &&
		    job_kinds[i]->global_init(why, whylen) != 0)
			return -1;
	return 0;
}

int
kinds_open(struct job_env *env)
{
	size_t i;
	int err;

	for (i = 0; i < NKINDS; i++) {
		env->kind_state[i] = NULL;
		if (job_kinds[i]->open == NULL ||
		    job_kinds[i]->open(env, &env->kind_state[i]) == 0)
			continue;
		err = errno;
		while (i-- > 0)
			if (job_kinds[i]->close != NULL)
				job_kinds[i]->close(env, env->kind_state[i]);
		errno = err;
		return -1;
	}
	return 0;
}

void
kinds_close(struct job_env *env)
{
	size_t i = NKINDS;

	while (i-- > 0) {
		if (job_kinds[i]->close != NULL)
			job_kinds[i]->close(env, env->kind_state[i]);
		env->kind_state[i] = NULL;
	}
}

void *
kinds_state(const struct job_env *env, const struct job_kind *kind)
{
	size_t i;

	for (i = 0; i < NKINDS; i++)
		if (job_kinds[i] == kind)
			return env->kind_state[i];
	return NULL;
}
