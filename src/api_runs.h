/*
 * api_runs.h - runs as resources: GET /runs/{id} and GET /runs.
 */
#ifndef TASKPOOLD_API_RUNS_H
#define TASKPOOLD_API_RUNS_H

#include "server.h"

struct daemon;

/* /runs/{id}: GET or HEAD its record. */
enum server_handled api_run_resource(struct daemon *d,
				     struct server_request *req,
				     const char *id);

/* /runs?limit=&cursor=: GET or HEAD, newest first. */
enum server_handled api_runs_list(struct daemon *d,
				  struct server_request *req);

#endif
