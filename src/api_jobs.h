/*
 * api_jobs.h - job instances as resources: /jobs/{id}, and their listing
 * at /jobs.
 */
#ifndef TASKPOOLD_API_JOBS_H
#define TASKPOOLD_API_JOBS_H

#include "server.h"

struct daemon;

/* /jobs/{id}: GET or HEAD its record, DELETE to cancel it. */
enum server_handled api_job_resource(struct daemon *d,
				     struct server_request *req,
				     const char *id);

/*
 * GET or HEAD /jobs: the instances newest first, filtered by `state` and
 * `job`, paged with `limit` and `cursor` (api_list.h).  Answers 200 or
 * 400; 503 when out of memory.
 */
enum server_handled api_job_list(struct daemon *d, struct server_request *req);

#endif
