/*
 * api.c - see api.h.  Which resource a request is for; the resources are
 * in api_jobs.c (job instances and their listing), api_runs.c (runs),
 * api_auth.c (which need a bearer token, and the 401 and 403 answers),
 * api_start.c (starting and answering a run: a configured route, or
 * POST /jobs from api_post.c), api_metrics.c and api_openapi.c, with the
 * JSON pieces of the answers in api_json.c.
 */
#include <stdbool.h>
#include <string.h>

#include "api.h"
#include "api_auth.h"
#include "api_start.h"
#include "api_jobs.h"
#include "api_json.h"
#include "api_metrics.h"
#include "api_openapi.h"
#include "api_params.h"
#include "api_post.h"
#include "api_runs.h"
#include "daemon.h"

static enum server_handled
get_health(struct daemon *d, struct server_request *req)
{
	struct registry_counts n;

	if (!api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD");
	n = registry_counts(d->registry);
	return api_respond_json(req, 200, json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I}", "status",
		atomic_load(&d->stopping) ? "stopping" : "ok",
		"jobs_live", (json_int_t)n.live,
		"jobs_finished", (json_int_t)n.finished,
		"queued", (json_int_t)pool_queued(d->pool),
		"timers", (json_int_t)timer_pending(d->timer),
		"clients_gone", (json_int_t)server_clients_gone(
			server_request_server(req))));
}

/*
 * Whether req is refused because the daemon is stopping: a request on a
 * connection kept alive is, but not the first of its connection.  Such a
 * connection was accepted before the server stopped accepting, and its
 * client sent the request at once: it is owed an answer as much as a
 * request that came in earlier (under socket activation, the next daemon
 * never sees it), and daemon_stop() waits a while for it.
 */
static bool
refused_stopping(struct daemon *d, struct server_request *req)
{
	return atomic_load(&d->stopping) && !server_request_first(req);
}

/* /jobs: GET lists the jobs, POST starts an ad-hoc run as who may. */
static enum server_handled
jobs_collection(struct daemon *d, struct server_request *req,
		struct config *cfg, const struct auth_token *who)
{
	if (api_is_read(req))
		return api_job_list(d, req);
	if (strcmp(server_request_method(req), "POST") != 0)
		return api_method_not_allowed(req, "GET, HEAD, POST");
	if (!refused_stopping(d, req))
		return api_post_jobs(d, req, cfg, who);
	server_request_set_reason(req, "stopping");
	server_add_header(req, "Retry-After", "1");
	return api_respond_problem(req, 503, "the daemon is stopping");
}

/* "/prefix/ID" with one segment after the prefix: ID, else NULL. */
static const char *
resource_id(const char *path, const char *prefix, size_t n)
{
	if (strncmp(path, prefix, n) != 0 || path[n] == '\0' ||
	    strchr(path + n, '/') != NULL)
		return NULL;
	return path + n;
}

/*
 * Labels req (its metrics label: what matched, never the raw path), then
 * whether it may go on to that resource under cfg (api_auth.h): true,
 * else false having answered 401 or 403 in *handled.
 */
static bool
admit(struct server_request *req, const struct config *cfg,
      const char *label, const struct auth_token **who,
      enum server_handled *handled)
{
	server_request_set_label(req, label);
	return api_auth_pass(req, cfg, label, NULL, who, handled);
}

/*
 * The daemon's own resources: serves req under cfg (borrowed) and returns
 * true, or returns false when path is none of them.  Reads are answered
 * while the daemon stops; what starts jobs is not.
 */
static bool
built_in(struct daemon *d, struct server_request *req, const char *path,
	 struct config *cfg, enum server_handled *handled)
{
	const struct auth_token *who;
	const char *id;

	if ((id = resource_id(path, "/jobs/", 6)) != NULL) {
		if (admit(req, cfg, "/jobs/{id}", &who, handled))
			*handled = api_job_resource(d, req, id, who);
		return true;
	}
	if ((id = resource_id(path, "/runs/", 6)) != NULL) {
		if (admit(req, cfg, "/runs/{id}", &who, handled))
			*handled = api_run_resource(d, req, id);
		return true;
	}
	if (!strcmp(path, "/runs")) {
		if (admit(req, cfg, "/runs", &who, handled))
			*handled = api_runs_list(d, req);
		return true;
	}
	if (!strcmp(path, "/healthz")) {
		server_request_set_label(req, "/healthz");
		*handled = get_health(d, req);
		return true;
	}
	if (!strcmp(path, "/metrics")) {
		if (admit(req, cfg, "/metrics", &who, handled))
			*handled = api_metrics_get(d, req);
		return true;
	}
	if (!strcmp(path, "/openapi.json")) {
		if (admit(req, cfg, "/openapi.json", &who, handled))
			*handled = api_openapi_resource(d, req);
		return true;
	}
	if (!strcmp(path, "/jobs")) {
		if (admit(req, cfg, "/jobs", &who, handled))
			*handled = jobs_collection(d, req, cfg, who);
		return true;
	}
	return false;
}

enum server_handled
api_handle(struct server_request *req, void *arg)
{
	struct daemon *d = arg;
	const char *path = server_request_path(req);
	const struct auth_token *who;
	const struct route *route;
	struct config *cfg = daemon_config(d);
	enum server_handled handled;

	if (built_in(d, req, path, cfg, &handled)) {
		config_unref(cfg);
		return handled;
	}
	route = config_find_route(cfg, path);
	if (route != NULL) {	/* the config may go: a lasting copy */
		server_request_set_label(req, api_metrics_route_label(
			&d->metrics, route->path));
		/* Whatever the answer: 405, 400, 503 or the run's. */
		server_request_log_query(req, api_params_shown, route);
	}
	if (!api_auth_pass(req, cfg, NULL, route, &who, &handled)) {
		config_unref(cfg);
		return handled;
	}
	if (refused_stopping(d, req)) {
		config_unref(cfg);
		server_request_set_reason(req, "stopping");
		server_add_header(req, "Retry-After", "1");
		return api_respond_problem(req, 503, "the daemon is stopping");
	}
	if (route == NULL)
		handled = api_respond_problem(req, 404, "no such resource");
	else if (strcmp(server_request_method(req), route->method) != 0)
		handled = api_method_not_allowed(req, route->method);
	else
		handled = api_start_route(d, req, cfg, route, who);
	config_unref(cfg);
	return handled;
}
