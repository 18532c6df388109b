/*
 * http.h - HTTP vocabulary shared by the server glue and the API: reason
 * phrases and RFC 9457 problem documents.
 */
#ifndef TASKPOOLD_HTTP_H
#define TASKPOOLD_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "json_out.h"

#define HTTP_JSON "application/json"
#define HTTP_PROBLEM_JSON "application/problem+json"

/* "Not Found" for 404, ...; "Unknown" for a status it does not know. */
const char *http_reason(unsigned status);

/*
 * A new problem object {"type", "title", "status", "detail"} to which the
 * caller may add extension members; NULL when out of memory.  detail may
 * be NULL.
 */
json_t *http_problem_new(unsigned status, const char *detail);

/*
 * http_problem_new()'s document written into o (json_out.h), byte for
 * byte as it dumps, but left open: `{"type": ..., "status": N, "detail":
 * ...` without the closing brace, for the caller's extension members and
 * then "}".  detail (borrowed) may be NULL; one that is not valid UTF-8
 * fails o.
 */
void http_problem_open(struct json_out *o, unsigned status,
		       const char *detail);

/*
 * http_answer_body() of http_problem_new(*status, detail), rendered
 * without the tree: the same bytes, *status and *len, and the same
 * fallback (a detail that is not UTF-8 answers the fixed 500).
 */
char *http_problem_body(unsigned *status, const char *detail, size_t *len);

/*
 * The fixed 500 problem answered when an answer cannot be built: sets
 * *status to 500 and returns it, new, with its length in *len; NULL (and
 * *len 0) only when out of memory.
 */
char *http_answer_fallback(unsigned *status, size_t *len);

/*
 * Serializes a JSON value into a new malloc'd string (the caller owns it)
 * and its length; steals the reference on value.  NULL when out of memory
 * (or value is NULL).
 */
char *http_json_dump(json_t *value, size_t *len);

/*
 * The body of an answer with *status: value serialized (stolen; may be
 * NULL, from a builder that ran out of memory).  When it cannot be, the
 * answer becomes a fixed 500 problem: *status is changed to 500.  NULL
 * only if even that cannot be allocated (then the body is empty).
 */
char *http_answer_body(json_t *value, unsigned *status, size_t *len);

/*
 * A whole HTTP/1.1 answer, status line to body, of a problem with detail
 * and "Connection: close": for a server part that writes to a socket
 * itself because libmicrohttpd will not (a 408, a 400 it closed on).  New
 * (*len bytes, NUL-terminated), or NULL when out of memory.
 */
char *http_problem_answer(unsigned status, const char *detail, size_t *len);

#endif
