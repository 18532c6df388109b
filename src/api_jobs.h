/*
 * api_jobs.h - job instances as resources: /jobs/{id}, and their listing
 * at /jobs.
 */
#ifndef TASKPOOLD_API_JOBS_H
#define TASKPOOLD_API_JOBS_H

#include "server.h"

struct daemon;

struct auth_token;

/*
 * /jobs/{id}: GET or HEAD its record, DELETE to cancel it if who (the
 * request's token, borrowed; NULL: none needed) may run its job, else 403.
 */
enum server_handled api_job_resource(struct daemon *d,
				     struct server_request *req,
				     const char *id,
				     const struct auth_token *who);

/*
 * GET or HEAD /jobs: the instances newest first, filtered by `state` and
 * `job`, paged with `limit` and `cursor` (api_list.h).  Answers 200 or
 * 400; 503 when out of memory.
 */
enum server_handled api_job_list(struct daemon *d, struct server_request *req);

#endif
