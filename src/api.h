/*
 * api.h - the HTTP endpoints: configured routes, /jobs/{id}, /healthz.
 *
 * Resources and answers are described in taskpoold(8).  Every error is an
 * application/problem+json document (RFC 9457).
 */
#ifndef TASKPOOLD_API_H
#define TASKPOOLD_API_H

#include "server.h"

struct daemon;

/* The server's handler; arg is the struct daemon. */
enum server_handled api_handle(struct server_request *req, void *arg);

#endif
