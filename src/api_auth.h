/*
 * api_auth.h - bearer tokens at the API's door: which resources need one,
 * the `Authorization: Bearer TOKEN` header (RFC 6750) checked against the
 * config's tokens (auth.h), and the 401 and 403 answers.
 *
 * With no tokens configured everything is open, as before tokens existed.
 * With tokens: /healthz stays open; /metrics and /openapi.json are open
 * only when [auth] says so; a configured route only with `auth = open`;
 * /jobs, /jobs/{id}, /runs, /runs/{id} and paths that match nothing
 * always need a token (so that a client without one cannot learn which
 * paths exist).
 */
#ifndef TASKPOOLD_API_AUTH_H
#define TASKPOOLD_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "config.h"
#include "server.h"

#define API_AUTH_REALM "taskpoold"

/*
 * Whether the resource needs a token under cfg: a built-in one by its
 * label (route NULL), a configured route, or (label and route NULL) a
 * path that matches nothing.
 */
bool api_auth_required(const struct config *cfg, const char *label,
		       const struct route *route);

/*
 * Whether req may go on to that resource.  Returns true with *who the
 * token req presented (borrowed from cfg), or NULL where none is needed;
 * or false having answered 401 (no, or no valid, bearer token) or 403
 * (the token may not use this route), with *handled set.
 */
bool api_auth_pass(struct server_request *req, const struct config *cfg,
		   const char *label, const struct route *route,
		   const struct auth_token **who,
		   enum server_handled *handled);

/*
 * Whether who (NULL: no limit) may cancel a job of this name: jobs=
 * limits the jobs a token controls, not only those it starts.  Returns 0,
 * or -1 having answered 403.
 */
int api_auth_cancel(struct server_request *req, const struct auth_token *who,
		    const char *job);

/*
 * Whether who (NULL: no limit) may run each of the n jobs.  Returns 0, or
 * -1 having answered 403 naming the first job it may not run.
 */
int api_auth_jobs(struct server_request *req, const struct auth_token *who,
		  const struct job_def *const *jobs, size_t n);

#endif
