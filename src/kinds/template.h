/*
 * template.h - text with `{name}` holes for parameter values, as the exec
 * (argv), http (url, headers, body) and later kinds write them.
 *
 * A hole is `{` + a parameter name ([A-Za-z0-9_]+) + `}`; every other
 * brace is literal text, so a JSON body template needs no escaping.  A
 * template is parsed once, at config load, against its job's declared
 * parameters: a hole that names no declared parameter is refused there.
 * Rendering then only fills in validated values.
 */
#ifndef TASKPOOLD_KINDS_TEMPLATE_H
#define TASKPOOLD_KINDS_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct job_def;
struct template;

/* How a value is written into its hole. */
enum template_escape {
	TEMPLATE_RAW,	/* as is: an exec argument */
	TEMPLATE_URL,	/* percent-encoded but for RFC 3986 unreserved */
	TEMPLATE_JSON,	/* as JSON: "text" quoted and escaped, 3, true */
};

/*
 * Parses text against def's declared parameters.  Returns a new template
 * (free it with template_free()), or NULL with the reason written to why
 * (an undeclared name, or out of memory).
 */
struct template *template_parse(const char *text, const struct job_def *def,
				char *why, size_t whylen);

/* True if the template has at least one hole. */
bool template_has_holes(const struct template *t);

/*
 * The text with each hole replaced by the value of its parameter in
 * params (a job instance's validated object), written as esc says: a
 * string as its text, an integer in decimal, a boolean as true or false.
 * Returns a new NUL-terminated string (free()), or NULL: ENOMEM, or
 * EINVAL for a value that is missing or of another type (validation
 * prevents both).  *len, if not NULL, gets its length.
 */
char *template_render(const struct template *t, const json_t *params,
		      enum template_escape esc, size_t *len);

/* Frees t; NULL is ok. */
void template_free(struct template *t);

#endif
