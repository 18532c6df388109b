/*
 * kinds.c - see kinds.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kinds/kinds.h"

/* Every kind the daemon knows: one line per kind. */
static const struct job_kind *const job_kinds[] = {
	&job_kind_sleep,
};

#define NKINDS (sizeof(job_kinds) / sizeof(job_kinds[0]))

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
