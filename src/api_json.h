/*
 * api_json.h - what the API's resources share: answering (a JSON value,
 * a problem, a 405) and the JSON pieces of answers (times, results, a job
 * instance's link and record).
 *
 * The builders never drop a piece silently: api_object_set() and
 * api_array_append() steal the value they are given and, on any failure
 * (including a NULL object or value from an earlier step), free the
 * container and return NULL.  Chained, one failure makes the whole answer
 * NULL, which api_respond_json() answers with 500, never with a shorter
 * answer.
 */
#ifndef TASKPOOLD_API_JSON_H
#define TASKPOOLD_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "future.h"
#include "job.h"
#include "json_out.h"
#include "server.h"

/*
 * Answers req with value (stolen; NULL answers 500): as problem+json for
 * a status of 400 and over.  Returns SERVER_DONE.
 */
enum server_handled api_respond_json(struct server_request *req,
				     unsigned status, json_t *value);
/* Answers with a problem document (detail copied, may be NULL). */
enum server_handled api_respond_problem(struct server_request *req,
					unsigned status, const char *detail);
/* 405 with an Allow header of `allow`. */
enum server_handled api_method_not_allowed(struct server_request *req,
					   const char *allow);
/*
 * The deepest JSON body taken (a POST /jobs run, a route's parameters):
 * {"jobs": [{"params": {"p": [...]}}]} is 4.  Deeper ones are refused
 * before they are parsed.
 */
#define API_JSON_MAX_DEPTH 16
#define API_JSON_DEPTH_TEXT "16"

/*
 * How deep the arrays and objects of JSON text nest (0 for a scalar), by
 * its brackets outside strings; no more than API_JSON_MAX_DEPTH + 1, where
 * it stops counting.  Text that is not JSON gets some number: the parser
 * refuses it later.  Can't fail.
 */
unsigned api_json_depth(const char *text, size_t len);

/*
 * The body of a request that must be a JSON object (len bytes at text,
 * which may be NULL when len is 0), loaded as every resource loads one:
 * refused when it nests deeper than API_JSON_MAX_DEPTH (before it is
 * parsed), is not valid JSON (a duplicate key, invalid UTF-8) or is not
 * an object.  Returns a new object, or NULL with detail (size bytes) the
 * 400's detail in printable ASCII, "the body must be " and `object` when
 * it is some other value.  The fuzzer calls it too (tests/fuzz).
 */
json_t *api_json_load_object(const char *text, size_t len,
			     const char *object, char *detail, size_t size);

/* GET or HEAD: a read of a resource that is safe to read. */
bool api_is_read(struct server_request *req);

/* o[key] = v and a[] += v, stealing v; see the top of this file. */
json_t *api_object_set(json_t *o, const char *key, json_t *v);
json_t *api_array_append(json_t *a, json_t *v);

/* New values: RFC 3339 UTC with milliseconds (null for 0); s or null. */
json_t *api_json_time(int64_t ns);
json_t *api_json_string_or_null(const char *s);
/*
 * A job's result as answers show it: the JSON value of a JSON result,
 * else a string; null for none.  A new value.
 */
json_t *api_json_result(const struct future_snapshot *s);

/* {"id", "job", "href"}: a pointer to a job instance.  A new value. */
json_t *api_job_link(const struct job_instance *inst);

/*
 * The same two written into a document (json_out.h), byte for byte as the
 * values above dump: api_json_result_out() appends s's result (a result
 * that is not valid UTF-8 fails o, as json_string() fails);
 * api_job_link_members() appends the members of inst's link, `"id": ...,
 * "job": ..., "href": ...`, without braces, so that a job's state can
 * follow them in the same object.
 */
void api_json_result_out(struct json_out *o,
			 const struct future_snapshot *s);
void api_job_link_members(struct json_out *o,
			  const struct job_instance *inst);
/*
 * The full record of a job instance, as GET /jobs/{id} shows it, from one
 * snapshot of its future.  A new value.
 */
json_t *api_job_record(struct job_instance *inst);
/* The same from a snapshot s of inst's future, borrowed (a listing's). */
json_t *api_job_record_of(const struct job_instance *inst,
			  const struct future_snapshot *s);
/*
 * What both build on, and the store's records too (api_stored.h): the
 * record of job instance `id` of job `job` from snapshot s, with the twin
 * it joined (NULL: none) and its params (stolen; secrets already "***").
 * A new value, or NULL.
 */
json_t *api_job_record_build(const char *id, const char *job,
			     const struct future_snapshot *s,
			     const char *joined, json_t *params);

#endif
