/*
 * api_params.h - a route request's parameters, read from the request and
 * checked against the declarations of the route's jobs (params.h).
 *
 * They come from the route path's `{name}` segments, the query string and
 * a JSON object body; taskpoold.conf(5), "PARAMETERS", says what is
 * refused and how.
 */
#ifndef TASKPOOLD_API_PARAMS_H
#define TASKPOOLD_API_PARAMS_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "server.h"

/*
 * Reads req's parameters for route (which config_find_route() gave for
 * req's path).  Returns 0 with params[i] a new object of route->jobs[i]'s
 * values, or answers req (400 with an `errors` array, 415, or 503 when
 * out of memory) and returns -1.  Only during the handler call: it reads
 * the query string and the borrowed body.
 */
int api_params_read(struct server_request *req, const struct route *route,
		    json_t **params);

/*
 * server_reveal_fn for a request to route (arg, a const struct route *):
 * the access log shows a query value only for a parameter that a job of
 * the route declares and none declares secret (params_loggable()).
 */
bool api_params_shown(const void *route, const char *key, size_t key_len);

/* Whether a Content-Type is application/json, parameters aside. */
bool api_params_is_json(const char *type);

#endif
