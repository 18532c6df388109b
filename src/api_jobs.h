/*
 * api_jobs.h - job instances as resources: /jobs/{id}.
 */
#ifndef TASKPOOLD_API_JOBS_H
#define TASKPOOLD_API_JOBS_H

#include "server.h"

struct daemon;

/* /jobs/{id}: GET or HEAD its record, DELETE to cancel it. */
enum server_handled api_job_resource(struct daemon *d,
				     struct server_request *req,
				     const char *id);

#endif
