/*
 * http_none.c - kind `http` in a build without libcurl (configure
 * --without-libcurl, or no libcurl found): the kind stays in the table, so
 * that a config naming it is told why it cannot run rather than that the
 * kind is unknown, and every http job is refused at load.  Makefile.am
 * builds this file or the real kind (http_kind.c), never both.
 */
#include <errno.h>
#include <stdio.h>

#include "kinds/kind.h"
#include "kinds/kinds.h"

#define HTTP_UNAVAILABLE "taskpoold was built without libcurl: http jobs " \
			 "are not available"

static int
http_none_parse(struct job_def *def, const char *key, const char *value,
		char *why, size_t whylen)
{
	snprintf(why, whylen, HTTP_UNAVAILABLE);
	return -1;
}

static int
http_none_check(struct job_def *def, char *why, size_t whylen)
{
	snprintf(why, whylen, HTTP_UNAVAILABLE);
	return -1;
}

static void
http_none_free(void *kind_data)
{
}

static int
http_none_start(struct job_instance *inst, struct job_env *env)
{
	errno = ENOSYS;	/* never reached: no http job loads */
	return -1;
}

const struct job_kind job_kind_http = {
	.name = "http",
	.parse = http_none_parse,
	.check = http_none_check,
	.free = http_none_free,
	.start = http_none_start,
};
