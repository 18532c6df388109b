/*
 * api_post.h - POST /jobs: an ad-hoc run of configured jobs, described by
 * a JSON body (taskpoold(8), "POST /jobs"):
 *
 *   {"jobs": [{"job": "task1"}, {"job": "greet", "params": {"name": "Ada"}}],
 *    "wait": "all", "timeout": "30s", "losers": "detach"}
 *
 * `jobs` is required (1 to [server] max_run_jobs of them); `wait` (all,
 * first, any, none; default all), `timeout` (a duration, 1ms to 1h;
 * default 30s), `losers` and `on_disconnect` (detach or cancel; default
 * detach) are optional.  Anything else, or a parameter a job does not
 * take, is refused with 400 before any job starts.
 */
#ifndef TASKPOOLD_API_POST_H
#define TASKPOOLD_API_POST_H

#include <jansson.h>

#include "server.h"

struct auth_token;
struct call_spec;
struct config;
struct daemon;

/*
 * POST /jobs on req (the method checked), read against cfg (borrowed: the
 * config the request was admitted under, so that its token and its jobs
 * come from one config even when a reload lands meanwhile), who its bearer
 * token (borrowed from cfg; NULL: none), which answers 403 if who may not
 * run a job it names.  SERVER_LATER or SERVER_DONE.
 */
enum server_handled api_post_jobs(struct daemon *d,
				  struct server_request *req,
				  struct config *cfg,
				  const struct auth_token *who);

/*
 * The checks of POST /jobs on a parsed body (a JSON object, borrowed),
 * against cfg, into spec (zeroed by the caller): returns 0, 1 with
 * *errors a new array of {"pointer", "reason"} (the 400's `errors`), or
 * -1 when out of memory.  Either way spec->params[0..spec->njobs) hold new
 * objects or NULL, the caller's.  Apart from api_post_jobs() for the
 * fuzzer (tests/fuzz/fuzz_post.c), which has no request.
 */
int api_post_read_spec(const struct config *cfg, const json_t *body,
		       struct call_spec *spec, json_t **errors);

#endif
