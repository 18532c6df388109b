/*
 * api.c - see api.h.  Which resource a request is for; the resources are
 * in api_jobs.c (job instances), api_call.c (runs of configured routes),
 * with the JSON pieces of the answers in api_json.c.
 */
#include <string.h>

#include "api.h"
#include "api_call.h"
#include "api_jobs.h"
#include "api_json.h"
#include "api_metrics.h"
#include "api_openapi.h"
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

enum server_handled
api_handle(struct server_request *req, void *arg)
{
	struct daemon *d = arg;
	const char *path = server_request_path(req);
	const struct route *route;
	struct config *cfg;
	enum server_handled handled;

	/* Labels for the metrics: what matched, never the raw path. */
	if (!strcmp(path, "/jobs") && api_is_read(req)) {
		server_request_set_label(req, "/jobs");
		return api_job_list(d, req);
	}
	if (!strncmp(path, "/jobs/", 6) && path[6] != '\0' &&
	    strchr(path + 6, '/') == NULL) {
		server_request_set_label(req, "/jobs/{id}");
		return api_job_resource(d, req, path + 6);
	}
	if (!strcmp(path, "/healthz")) {
		server_request_set_label(req, "/healthz");
		return get_health(d, req);
	}
	if (!strcmp(path, "/metrics")) {
		server_request_set_label(req, "/metrics");
		return api_metrics_get(d, req);
	}
	if (!strcmp(path, "/openapi.json")) {
		server_request_set_label(req, "/openapi.json");
		return api_openapi_resource(d, req);
	}

	cfg = daemon_config(d);
	route = config_find_route(cfg, path);
	if (route != NULL)	/* the config may go: a lasting copy */
		server_request_set_label(req, api_metrics_route_label(
			&d->metrics, route->path));
	if (atomic_load(&d->stopping)) {
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
		handled = api_call_route(d, req, cfg, route);
	config_unref(cfg);
	return handled;
}
