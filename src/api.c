/*
 * api.c - see api.h.  Which resource a request is for; the resources are
 * in api_jobs.c (job instances and their listing), api_runs.c (runs),
 * api_start.c (starting and answering a run: a configured route, or
 * POST /jobs from api_post.c), api_metrics.c and api_openapi.c, with the
 * JSON pieces of the answers in api_json.c.
 */
#include <stdbool.h>
#include <string.h>

#include "api.h"
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

/* /jobs: GET lists the jobs, POST starts an ad-hoc run. */
static enum server_handled
jobs_collection(struct daemon *d, struct server_request *req)
{
	if (api_is_read(req))
		return api_job_list(d, req);
	if (strcmp(server_request_method(req), "POST") != 0)
		return api_method_not_allowed(req, "GET, HEAD, POST");
	if (!refused_stopping(d, req))
		return api_post_jobs(d, req);
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
 * The daemon's own resources: serves req and returns true, or returns
 * false when path is none of them.  Reads are answered while the daemon
 * stops; what starts jobs is not.  Each request gets its metrics label:
 * what matched, never the raw path.
 */
static bool
built_in(struct daemon *d, struct server_request *req, const char *path,
	 enum server_handled *handled)
{
	const char *id;

	if ((id = resource_id(path, "/jobs/", 6)) != NULL) {
		server_request_set_label(req, "/jobs/{id}");
		*handled = api_job_resource(d, req, id);
		return true;
	}
	if ((id = resource_id(path, "/runs/", 6)) != NULL) {
		server_request_set_label(req, "/runs/{id}");
		*handled = api_run_resource(d, req, id);
		return true;
	}
	if (!strcmp(path, "/runs")) {
		server_request_set_label(req, "/runs");
		*handled = api_runs_list(d, req);
		return true;
	}
	if (!strcmp(path, "/healthz")) {
		server_request_set_label(req, "/healthz");
		*handled = get_health(d, req);
		return true;
	}
	if (!strcmp(path, "/metrics")) {
		server_request_set_label(req, "/metrics");
		*handled = api_metrics_get(d, req);
		return true;
	}
	if (!strcmp(path, "/openapi.json")) {
		server_request_set_label(req, "/openapi.json");
		*handled = api_openapi_resource(d, req);
		return true;
	}
	if (!strcmp(path, "/jobs")) {
		server_request_set_label(req, "/jobs");
		*handled = jobs_collection(d, req);
		return true;
	}
	return false;
}

enum server_handled
api_handle(struct server_request *req, void *arg)
{
	struct daemon *d = arg;
	const char *path = server_request_path(req);
	const struct route *route;
	struct config *cfg;
	enum server_handled handled;

	if (built_in(d, req, path, &handled))
		return handled;
	cfg = daemon_config(d);
	route = config_find_route(cfg, path);
	if (route != NULL) {	/* the config may go: a lasting copy */
		server_request_set_label(req, api_metrics_route_label(
			&d->metrics, route->path));
		/* Whatever the answer: 405, 400, 503 or the run's. */
		server_request_log_query(req, api_params_shown, route);
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
		handled = api_start_route(d, req, cfg, route);
	config_unref(cfg);
	return handled;
}
