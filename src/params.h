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

#define PARAM_NAME_MAX 64		/* chars of a parameter's name */
#define PARAM_PER_JOB_MAX 32		/* declarations in one [job] */
#define PARAM_STRING_MAX_LIMIT 65536	/* the largest `max=` */
#define PARAMS_INPUT_MAX 256		/* values in one request */

struct job_def;
struct route;

/* Frees what a declaration holds (not d itself).  NULL-safe fields. */
void param_decl_clear(struct param_decl *d);

/* [A-Za-z0-9_], 1 to PARAM_NAME_MAX chars, n bytes at s. */
bool param_name_valid(const char *s, size_t n);

/* Where a request's value came from: the reasons name it. */
enum param_source {
	PARAM_FROM_PATH,		/* a `{name}` segment of the route */
	PARAM_FROM_QUERY,		/* ?name=value */
	PARAM_FROM_BODY,		/* a member of a JSON object body */
};

/*
 * One value of a request, as it came: text (a path segment or a query
 * argument, already percent-decoded, n bytes, may hold a NUL) or, from a
 * JSON body, a JSON value (json non-NULL, text unused).  Everything is
 * borrowed from the request for the length of one call.
 */
struct param_input {
	const char *name;
	size_t name_len;
	const char *text;
	size_t text_len;
	const json_t *json;
	enum param_source source;
};

/*
 * Checks one value against declaration d.  Returns 0 with *out a new
 * reference to the typed value (params.h's top), 1 with a reason in why
 * (which never quotes the value: it may be a secret), or -1 when out of
 * memory.
 */
int param_value_check(const struct param_decl *d,
		      const struct param_input *in, json_t **out,
		      char *why, size_t whylen);

/*
 * A request's values against the declarations of route's jobs: each job
 * takes the values it declares, and its defaults for the rest.  Returns 0
 * with out[i] a new object of route->jobs[i]'s values (every declared
 * parameter present), or NULL for a job that declares none (job_new()
 * takes NULL for no values); 1 with *errors a new array of {"param",
 * "reason"}, one per refused parameter in the order found (a name no job declares,
 * a name given twice, a bad value, a missing required one, the value past
 * PARAMS_INPUT_MAX when there are more (nothing else is looked at then;
 * give at most one more than that), and out[]
 * untouched; or -1 when out of memory.  Names in *errors are made printable
 * UTF-8 ('?' for the rest) and cut at PARAM_NAME_MAX bytes.
 */
int params_resolve(const struct route *route, const struct param_input *in,
		   size_t nin, json_t **out, json_t **errors);

/*
 * The `{name}` segments of path, which route matched: appends one input per
 * segment to in (at most max; pointers into route->path and path).
 * Returns the number appended.
 */
size_t params_from_path(const struct route *route, const char *path,
			struct param_input *in, size_t max);

/*
 * Whether the log may show a request's value for the parameter name (n
 * bytes) on route: a job of the route declares it, and none as secret.
 * A name no job declares may be a secret misspelt: no.
 */
bool params_loggable(const struct route *route, const char *name, size_t n);

/*
 * A copy of params (a job's values) for records and logs: each secret
 * parameter's value replaced by "***".  A new reference, or NULL (ENOMEM).
 */
json_t *params_redacted(const struct job_def *def, const json_t *params);

#endif
