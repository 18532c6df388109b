/*
 * api_call.h - runs of configured routes: jobs started, waited for with
 * the route's policy and deadline, and answered.
 */
#ifndef TASKPOOLD_API_CALL_H
#define TASKPOOLD_API_CALL_H

#include "config.h"
#include "server.h"

struct daemon;

/*
 * Starts route's jobs for req (route found in cfg for req's path, method
 * checked).  Returns SERVER_LATER, or SERVER_DONE having answered an
 * error.
 */
enum server_handled api_call_route(struct daemon *d,
				   struct server_request *req,
				   struct config *cfg,
				   const struct route *route);

#endif
