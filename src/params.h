/*
 * params.h - a job's declared parameters (`param.NAME = TYPE OPTIONS` in
 * its [job] section; the syntax is in taskpoold.conf(5)).
 *
 * A declaration is read at config load and never changes.  A request's
 * values are checked against the declarations of the jobs it starts, and
 * each instance gets the object of its own job's values (job.h): strings
 * as JSON strings, ints as JSON integers, enums as JSON strings, bools as
 * JSON booleans, every declared parameter present (defaults filled in).
 * That object is all a kind sees of a request.
 */
#ifndef TASKPOOLD_PARAMS_H
#define TASKPOOLD_PARAMS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define PARAM_STRING_MAX_DEFAULT 256	/* bytes, without `max=` */

enum param_type {
	PARAM_STRING,
	PARAM_INT,
	PARAM_ENUM,
	PARAM_BOOL,
};

struct param_decl {
	char *name;			/* [A-Za-z0-9_], 1 to 64 chars */
	enum param_type type;
	bool secret;			/* shown as "***" in records and logs */
	json_t *default_value;		/* owned; NULL: required */
	/* string */
	size_t max_len;			/* bytes */
	char *pattern_text;		/* NULL: no pattern */
	regex_t pattern;		/* compiled ^(...)$ when pattern_text */
	/* int */
	long long min, max;
	/* enum */
	char **choices;
	size_t nchoices;
};

/* Frees what a declaration holds (not d itself).  NULL-safe fields. */
void param_decl_clear(struct param_decl *d);

#endif
