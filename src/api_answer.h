/*
 * api_answer.h - the answers of a run, built from one snapshot of each of
 * its jobs: the shapes of taskpoold(8), "ANSWERS".
 *
 *   all           200 {"results": [...]} in the listed order; when a job
 *                 did not succeed, 502 (failed), 504 (timed out) or 503
 *                 (cancelled) problem with `jobs`: every job's state
 *   first, any    200 {"result", "job", "pending": [links]}; the awaited
 *                 job not succeeding is a problem as above
 *   none          202 {"jobs": [links]}
 *   deadline      504 problem with `jobs` (every job's state, the result
 *                 of each that succeeded) and `pending` (links to the
 *                 jobs still going, as first/any give them)
 */
#ifndef TASKPOOLD_API_ANSWER_H
#define TASKPOOLD_API_ANSWER_H

#include <jansson.h>

#include "api_call.h"
#include "future.h"

/*
 * The answer of c, done (expired by its deadline, or its policy met by job
 * `winner`), from snaps[i] of c->jobs[i]: its status in *status, and its
 * body, rendered as the JSON text json_dumps() (flags 0) would write for
 * it.  Returns the text, new (NUL-terminated, *len bytes), or NULL when
 * there is no memory or a result or error is not valid UTF-8 (which JSON
 * cannot carry, and json_string() refuses too); the caller then answers
 * http_answer_fallback()'s 500.
 */
char *api_answer_render(const struct call *c,
			const struct future_snapshot *snaps, bool expired,
			int winner, unsigned *status, size_t *len);

/*
 * One job of a streamed answer: {"index", "id", "job", "state", and
 * "result" or "error"}.  A new value, or NULL when out of memory.
 */
json_t *api_answer_job_line(const struct call *c, size_t index,
			    const struct future_snapshot *s);

#endif
