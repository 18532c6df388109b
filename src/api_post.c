/*
 * api_post.c - see api_post.h.  The body becomes a call_spec, checked
 * whole: every mistake is listed in the 400's `errors` (each with a JSON
 * pointer to the member it is about), and no job starts unless there is
 * none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_auth.h"
#include "api_start.h"
#include "api_json.h"
#include "api_params.h"
#include "api_post.h"
#include "daemon.h"
#include "http.h"
#include "params.h"

#define DEFAULT_TIMEOUT_NS (30 * INT64_C(1000000000))

/* Appends {"pointer", "reason"} to *errors; -1 when out of memory. */
static int
add_error(json_t **errors, const char *pointer, const char *reason)
{
	json_t *e;

	if (*errors == NULL && (*errors = json_array()) == NULL)
		return -1;
	e = api_object_set(json_object(), "pointer", json_string(pointer));
	e = api_object_set(e, "reason", json_string(reason));
	return e != NULL && json_array_append_new(*errors, e) == 0 ? 0 : -1;
}

/* "detach" or "cancel" at body[key]; 0, or an error added. */
static int
read_detach_cancel(const json_t *body, const char *key, bool *cancel,
		   json_t **errors)
{
	const json_t *v = json_object_get(body, key);
	char pointer[32];

	*cancel = false;
	if (v == NULL)
		return 0;
	if (json_is_string(v) && !strcmp(json_string_value(v), "cancel"))
		*cancel = true;
	else if (!json_is_string(v) || strcmp(json_string_value(v), "detach"))
		return snprintf(pointer, sizeof(pointer), "/%s", key),
		       add_error(errors, pointer, "must be \"detach\" or "
				 "\"cancel\"");
	return 0;
}

/* The run's own members: wait, timeout, losers, on_disconnect. */
static int
read_policy(const json_t *body, struct call_spec *spec, json_t **errors)
{
	const json_t *v;
	bool cancel;
	int p;

	spec->wait = RUN_WAIT_ALL;
	spec->timeout_ns = DEFAULT_TIMEOUT_NS;
	if ((v = json_object_get(body, "wait")) != NULL &&
	    (!json_is_string(v) ||
	     (p = run_policy_parse(json_string_value(v))) < 0)) {
		if (add_error(errors, "/wait", "must be \"all\", \"first\", "
			      "\"any\" or \"none\""))
			return -1;
	} else if (v != NULL) {
		spec->wait = (enum run_policy)p;
	}
	if ((v = json_object_get(body, "timeout")) != NULL &&
	    (!json_is_string(v) ||
	     config_parse_duration(json_string_value(v), &spec->timeout_ns) ||
	     spec->timeout_ns < 1000000 ||
	     spec->timeout_ns > 3600 * INT64_C(1000000000))) {
		if (add_error(errors, "/timeout", "must be a duration from "
			      "1ms to 1h, such as \"30s\""))
			return -1;
	}
	if (read_detach_cancel(body, "losers", &cancel, errors))
		return -1;
	spec->losers = cancel ? ROUTE_LOSERS_CANCEL : ROUTE_LOSERS_DETACH;
	if (read_detach_cancel(body, "on_disconnect", &cancel, errors))
		return -1;
	spec->on_disconnect = cancel ? ROUTE_DISCONNECT_CANCEL :
			      ROUTE_DISCONNECT_DETACH;
	return 0;
}

/*
 * Job i of the body: its definition and its parameters, checked as a
 * route's are (params_resolve() on a route of that one job).  0, or -1
 * when out of memory; a refusal adds errors.
 */
static int
read_job(const struct config *cfg, const json_t *item, size_t i,
	 struct call_spec *spec, json_t **errors)
{
	struct param_input in[PARAMS_INPUT_MAX + 1];
	const json_t *name = json_object_get(item, "job");
	const json_t *params = json_object_get(item, "params");
	const json_t *v, *e;
	struct route one;
	json_t *perrs = NULL;
	char pointer[64];
	const char *key;
	size_t n = 0, k;
	int rc;

	snprintf(pointer, sizeof(pointer), "/jobs/%zu", i);
	if (!json_is_object(item))
		return add_error(errors, pointer, "must be an object "
				 "{\"job\": NAME, \"params\": {...}}");
	json_object_foreach((json_t *)item, key, v) {
		if (strcmp(key, "job") && strcmp(key, "params")) {
			snprintf(pointer, sizeof(pointer), "/jobs/%zu", i);
			if (add_error(errors, pointer, "has a member other "
				      "than \"job\" and \"params\""))
				return -1;
		}
	}
	snprintf(pointer, sizeof(pointer), "/jobs/%zu/job", i);
	if (!json_is_string(name))
		return add_error(errors, pointer, "must be the name of a "
				 "configured job");
	spec->jobs[i] = config_find_job(cfg, json_string_value(name));
	if (spec->jobs[i] == NULL)
		return add_error(errors, pointer, "names no configured job");
	snprintf(pointer, sizeof(pointer), "/jobs/%zu/params", i);
	if (params != NULL && !json_is_object(params))
		return add_error(errors, pointer, "must be an object");
	json_object_foreach((json_t *)params, key, v) {
		if (n == PARAMS_INPUT_MAX + 1)
			break;
		in[n].name = key;
		in[n].name_len = strlen(key);
		in[n].json = v;
		in[n].source = PARAM_FROM_BODY;
		n++;
	}
	memset(&one, 0, sizeof(one));
	one.path = (char *)"/jobs";
	one.njobs = 1;
	one.jobs = &spec->jobs[i];
	rc = params_resolve(&one, in, n, &spec->params[i], &perrs);
	if (rc <= 0)
		return rc;
	json_array_foreach(perrs, k, e) {
		char why[320];

		snprintf(pointer, sizeof(pointer), "/jobs/%zu/params/%s", i,
			 json_string_value(json_object_get(e, "param")));
		snprintf(why, sizeof(why), "%s", json_string_value(
			 json_object_get(e, "reason")));
		if (add_error(errors, pointer, why)) {
			json_decref(perrs);
			return -1;
		}
	}
	json_decref(perrs);
	return 0;
}

/* The body's members other than those of api_post.h: each an error. */
static int
check_members(const json_t *body, json_t **errors)
{
	static const char *const known[] = {
		"jobs", "wait", "timeout", "losers", "on_disconnect",
	};
	char pointer[80];
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)body, key, v) {
		size_t n;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcmp(key, known[i]))
				break;
		if (i < sizeof(known) / sizeof(known[0]))
			continue;
		/*
		 * At most 64 bytes, cut before a character, never inside:
		 * json_string() refuses what is not UTF-8, and that failure
		 * reads as out of memory (503).
		 */
		n = strnlen(key, 65);
		if (n > 64)
			for (n = 64; n > 0 && ((unsigned char)key[n] & 0xc0) ==
			     0x80; n--)
				;
		snprintf(pointer, sizeof(pointer), "/%.*s", (int)n, key);
		if (add_error(errors, pointer, "is not a member of a run"))
			return -1;
	}
	return 0;
}

/* Answers 400 naming the first error, with all in `errors`. */
static enum server_handled
refuse(struct server_request *req, json_t *errors)
{
	json_t *first = json_array_get(errors, 0);
	char detail[256];

	server_request_set_reason(req, "bad_run");
	snprintf(detail, sizeof(detail), "%s %s%s",
		 json_string_value(json_object_get(first, "pointer")),
		 json_string_value(json_object_get(first, "reason")),
		 json_array_size(errors) > 1 ? " (and more)" : "");
	for (char *p = detail; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return api_respond_json(req, 400, api_object_set(
		http_problem_new(400, detail), "errors", errors));
}

int
api_post_read_spec(const struct config *cfg, const json_t *body,
		   struct call_spec *spec, json_t **errors)
{
	const json_t *jobs = json_object_get(body, "jobs");
	char why[96];
	size_t i;

	if (check_members(body, errors) || read_policy(body, spec, errors))
		return -1;
	if (!json_is_array(jobs) || json_array_size(jobs) == 0 ||
	    json_array_size(jobs) > cfg->server.max_run_jobs) {
		snprintf(why, sizeof(why), "must be an array of 1 to %u jobs",
			 cfg->server.max_run_jobs);
		return add_error(errors, "/jobs", why) ? -1 : 1;
	}
	spec->njobs = json_array_size(jobs);
	for (i = 0; i < spec->njobs; i++)
		if (read_job(cfg, json_array_get(jobs, i), i, spec, errors))
			return -1;
	return *errors != NULL;
}

enum server_handled
api_post_jobs(struct daemon *d, struct server_request *req,
	      struct config *cfg, const struct auth_token *who)
{
	const char *type = server_request_header(req, "Content-Type");
	struct call_spec spec;
	json_t *body, *errors = NULL;
	char detail[256];
	const char *text;
	size_t len, i;
	int rc;

	text = server_request_body(req, &len);
	if (!api_params_is_json(type))
		return api_respond_problem(req, 415, "POST /jobs takes a JSON "
					   "body with Content-Type: "
					   "application/json");
	body = api_json_load_object(text, len, "a JSON object", detail,
				    sizeof(detail));
	if (body == NULL) {
		server_request_set_reason(req, "bad_json");
		return api_respond_problem(req, 400, detail);
	}
	memset(&spec, 0, sizeof(spec));
	spec.label = "/jobs";
	rc = api_post_read_spec(cfg, body, &spec, &errors);
	json_decref(body);
	if (rc != 0) {
		for (i = 0; i < spec.njobs; i++)
			json_decref(spec.params[i]);
		if (rc < 0) {
			json_decref(errors);
			return api_respond_problem(req, 503, "out of memory");
		}
		return refuse(req, errors);
	}
	if (api_auth_jobs(req, who, spec.jobs, spec.njobs) != 0) {
		for (i = 0; i < spec.njobs; i++)
			json_decref(spec.params[i]);
		return SERVER_DONE;
	}
	spec.who = who;
	return api_start_call(d, req, cfg, &spec);
}
