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

#include "server.h"

struct auth_token;
struct daemon;

/*
 * POST /jobs on req (the method checked), who its bearer token (borrowed;
 * NULL: none), which answers 403 if who may not run a job it names.
 * SERVER_LATER or SERVER_DONE.
 */
enum server_handled api_post_jobs(struct daemon *d,
				  struct server_request *req,
				  const struct auth_token *who);

#endif
