/*
 * api_start.h - a run started for a request, and its answer delivered as
 * the request asks: plain, async fallback, or streamed (api_call.h says
 * what each is).
 */
#ifndef TASKPOOLD_API_START_H
#define TASKPOOLD_API_START_H

#include <jansson.h>

#include "config.h"
#include "run.h"
#include "server.h"

struct auth_token;
struct daemon;

/* What a request asks to run: from a route, or a POST /jobs body. */
struct call_spec {
	const char *label;		/* route path, "/jobs": borrowed */
	enum run_policy wait;
	int64_t timeout_ns;
	enum route_losers losers;
	enum route_on_disconnect on_disconnect;
	size_t njobs;
	const struct job_def *jobs[CONFIG_ROUTE_JOBS_MAX];	/* borrowed */
	json_t *params[CONFIG_ROUTE_JOBS_MAX];	/* owned, new objects */
	/*
	 * The bearer token of the request (borrowed from its config), or
	 * NULL: its name scopes the request's Idempotency-Key.
	 */
	const struct auth_token *who;
};

/*
 * Starts spec's jobs for req and waits as req asks (plain, async,
 * streamed).  spec->params are stolen, all of them, whatever happens.
 * cfg is the config spec was read from (a reference is taken).  Returns
 * SERVER_LATER, or SERVER_DONE having answered (an idempotent repeat,
 * 400/422 for a bad header, 503).
 */
enum server_handled api_start_call(struct daemon *d,
				   struct server_request *req,
				   struct config *cfg, struct call_spec *spec);

/*
 * Starts route's jobs for req (route found in cfg for req's path, method
 * checked, who the request's token, borrowed from cfg, or NULL): answers
 * 403 if who may not run one of them, else reads the request's
 * parameters, then api_start_call().
 */
enum server_handled api_start_route(struct daemon *d,
				   struct server_request *req,
				   struct config *cfg,
				   const struct route *route,
				   const struct auth_token *who);

#endif
