/*
 * api_auth.c - see api_auth.h.
 *
 * What the 401 and 403 answers say follows RFC 6750, section 3: a request
 * without bearer credentials gets a challenge with the realm alone, one
 * whose token is malformed or unknown adds error="invalid_token", and a
 * token that may not do what was asked gets 403 with
 * error="insufficient_scope".  A malformed token gets 401 rather than the
 * 400 that RFC 6750 suggests: to the client it is a token that does not
 * work, and no answer or log line quotes it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_auth.h"
#include "api_json.h"

bool
api_auth_required(const struct config *cfg, const char *label,
		  const struct route *route)
{
	if (cfg->auth.tokens == NULL)
		return false;
	if (route != NULL)
		return !route->auth_open;
	if (label == NULL)
		return true;
	if (!strcmp(label, "/healthz"))
		return false;
	if (!strcmp(label, "/metrics"))
		return !cfg->auth.metrics_open;
	if (!strcmp(label, "/openapi.json"))
		return !cfg->auth.openapi_open;
	return true;
}

/*
 * The token of an `Authorization: Bearer TOKEN` header value: its start
 * and *len, or NULL when the header is absent or of another scheme.  A
 * Bearer header with no token gives a zero length.
 */
static const char *
bearer_token(const char *value, size_t *len)
{
	size_t n;

	*len = 0;
	if (value == NULL || strncasecmp(value, "Bearer", 6) != 0 ||
	    (value[6] != ' ' && value[6] != '\0'))
		return NULL;
	for (value += 6; *value == ' '; value++)
		;
	n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	*len = n;
	return value;
}

static enum server_handled
unauthorized(struct server_request *req, bool given)
{
	server_request_set_reason(req, "unauthorized");
	server_add_header(req, "WWW-Authenticate", given ?
			  "Bearer realm=\"" API_AUTH_REALM "\", "
			  "error=\"invalid_token\"" :
			  "Bearer realm=\"" API_AUTH_REALM "\"");
	return api_respond_problem(req, 401, given ?
				   "the bearer token is not valid" :
				   "this resource needs a bearer token "
				   "(Authorization: Bearer TOKEN)");
}

static enum server_handled
forbidden(struct server_request *req, const char *detail)
{
	server_request_set_reason(req, "forbidden");
	server_add_header(req, "WWW-Authenticate", "Bearer realm=\""
			  API_AUTH_REALM "\", error=\"insufficient_scope\"");
	return api_respond_problem(req, 403, detail);
}

bool
api_auth_pass(struct server_request *req, const struct config *cfg,
	      const char *label, const struct route *route,
	      const struct auth_token **who, enum server_handled *handled)
{
	const char *token;
	char detail[CONFIG_PATH_MAX + 64];
	size_t len;

	*who = NULL;
	if (!api_auth_required(cfg, label, route))
		return true;
	token = bearer_token(server_request_header(req, "Authorization"),
			     &len);
	if (token != NULL && auth_b64token(token, len))
		*who = auth_check(cfg->auth.tokens, token, len);
	if (*who == NULL) {
		*handled = unauthorized(req, token != NULL);
		return false;
	}
	if (route != NULL)
		label = route->path;
	if (label != NULL && !auth_allows_route(*who, label)) {
		snprintf(detail, sizeof(detail), "this token may not use %s",
			 label);
		*handled = forbidden(req, detail);
		return false;
	}
	return true;
}

int
api_auth_cancel(struct server_request *req, const struct auth_token *who,
		const char *job)
{
	char detail[CONFIG_NAME_MAX + 64];

	if (who == NULL || auth_allows_job(who, job))
		return 0;
	snprintf(detail, sizeof(detail), "this token may not cancel job '%s'",
		 job);
	forbidden(req, detail);
	return -1;
}

int
api_auth_jobs(struct server_request *req, const struct auth_token *who,
	      const struct job_def *const *jobs, size_t n)
{
	char detail[CONFIG_NAME_MAX + 64];
	size_t i;

	for (i = 0; who != NULL && i < n; i++) {
		if (auth_allows_job(who, jobs[i]->name))
			continue;
		snprintf(detail, sizeof(detail), "this token may not run job "
			 "'%s'", jobs[i]->name);
		forbidden(req, detail);
		return -1;
	}
	return 0;
}
