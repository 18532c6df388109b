/*
 * api_openapi.c - see api_openapi.h.
 *
 * The document is the template (api_openapi_template) with info.version
 * filled in, one path per route of the config, and one schema per job for
 * the jobs that POST /jobs can run.  It is built for each request, from the
 * config that request holds: a config never changes, so the same config
 * always gives the same document, and a reload changes it for the next
 * request, with no cache to keep in step, no lock and no state in struct
 * daemon.  With the shipped config (30 KB) a build costs about 0.3 to 0.7
 * ms of one core and its serialization 0.2 to 0.3 ms (half of it the
 * template's parsing; tests/unit/check_api_openapi.c prints the sum): a
 * client fetches the document once, and a route's request that runs a job
 * costs more.
 *
 * A route's parameters are described as the daemon reads them
 * (api_params.c, params.c): `{name}` segments are path parameters; for
 * GET and DELETE routes the other declared parameters are query
 * parameters, for POST, PUT and PATCH routes members of a JSON object
 * body.  The daemon takes each of them from the query string or the body
 * alike, which OpenAPI cannot say of one parameter: the operation's
 * description says it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "api_openapi.h"
#include "daemon.h"
#include "log.h"
#include "params.h"

/* ---- the template -------------------------------------------------------- */

struct template_reader {
	size_t line;
	size_t offset;		/* into the current line */
};

/* json_load_callback_t: the template's lines, one after another. */
static size_t
read_template(void *buffer, size_t buflen, void *arg)
{
	struct template_reader *r = arg;
	const char *line;
	size_t n;

	while ((line = api_openapi_template[r->line]) != NULL &&
	       line[r->offset] == '\0') {
		r->line++;
		r->offset = 0;
	}
	if (line == NULL)
		return 0;
	n = strlen(line + r->offset);
	if (n > buflen)
		n = buflen;
	memcpy(buffer, line + r->offset, n);
	r->offset += n;
	return n;
}

/*
 * The template as a new object; NULL when out of memory, or when it does
 * not parse (a mistake in src/api_openapi.json, which the unit test
 * catches), with the reason logged.
 */
static json_t *
load_template(void)
{
	struct template_reader r = { 0, 0 };
	json_error_t err;
	json_t *doc;

	doc = json_load_callback(read_template, &r, JSON_REJECT_DUPLICATES,
				 &err);
	if (doc == NULL)
		log_warnx("openapi: src/api_openapi.json does not parse: %s "
			  "(line %d)", err.text, err.line);
	return doc;
}

/* {"$ref": "#/components/KIND/NAME"}: a new object, or NULL. */
static json_t *
ref(const char *kind, const char *name)
{
	return api_object_set(json_object(), "$ref",
			      json_sprintf("#/components/%s/%s", kind, name));
}

/* ---- parameters ------------------------------------------------------------ */

/* Whether a job of r before its k-th one declares name. */
static bool
declared_before(const struct route *r, size_t k, const char *name)
{
	size_t j;

	for (j = 0; j < k; j++)
		if (config_job_param(r->jobs[j], name) != NULL)
			return true;
	return false;
}

/* Whether r's path has the segment {name}. */
static bool
in_path(const struct route *r, const char *name)
{
	size_t n = strlen(name);
	const char *s;

	for (s = strchr(r->path, '{'); s != NULL; s = strchr(s + 1, '{'))
		if (!strncmp(s + 1, name, n) && s[n + 1] == '}')
			return true;
	return false;
}

/*
 * The schema of parameter name for route r: its declaration's, or allOf
 * the declarations when several of r's jobs declare it (a value must suit
 * each).  *required: some job has no default for it.  A new object, or
 * NULL.
 */
static json_t *
route_param_schema(const struct route *r, const char *name, bool *required)
{
	const struct param_decl *decls[CONFIG_ROUTE_JOBS_MAX];
	size_t n = 0, i, k;
	json_t *all;

	*required = false;
	for (k = 0; k < r->njobs; k++) {
		const struct param_decl *d = config_job_param(r->jobs[k], name);

		for (i = 0; d != NULL && i < n && decls[i] != d; i++)
			;
		if (d == NULL || i < n)	/* a job listed twice: once */
			continue;
		decls[n++] = d;
		*required |= d->default_value == NULL;
	}
	if (n == 1)
		return api_openapi_decl_schema(decls[0]);
	all = json_array();
	for (i = 0; i < n; i++)
		all = api_array_append(all, api_openapi_decl_schema(decls[i]));
	return api_object_set(json_object(), "allOf", all);
}

/* A Parameter Object; schema stolen.  A new object, or NULL. */
static json_t *
parameter(const char *name, const char *in, bool required, json_t *schema,
	  bool text_bool)
{
	json_t *p = json_object();

	p = api_object_set(p, "name", json_string(name));
	p = api_object_set(p, "in", json_string(in));
	p = api_object_set(p, "required", json_boolean(required));
	if (text_bool)
		p = api_object_set(p, "description", json_string(
			"As text: true, false, 1, 0, yes or no."));
	return api_object_set(p, "schema", schema);
}

/* ---- routes ---------------------------------------------------------------- */

static bool
method_has_body(const char *method)
{
	return !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	       !strcmp(method, "PATCH");
}

/* "a, b, c": the names of r's jobs, as a new string, or NULL. */
static json_t *
job_names(const struct route *r)
{
	size_t len = 1, i;
	char *text, *p;
	json_t *s;

	for (i = 0; i < r->njobs; i++)
		len += strlen(r->jobs[i]->name) + 2;
	if ((text = p = malloc(len)) == NULL)
		return NULL;
	for (i = 0; i < r->njobs; i++)
		p += sprintf(p, "%s%s", i > 0 ? ", " : "", r->jobs[i]->name);
	s = json_string(text);
	free(text);
	return s;
}

/* Seconds, as short as exact to the millisecond: "30", "1.5", "0.25". */
static void
format_seconds(char *buf, size_t len, int64_t ns)
{
	char *end;

	snprintf(buf, len, "%.3f", (double)ns / 1e9);
	end = buf + strlen(buf);
	while (end[-1] == '0')
		*--end = '\0';
	if (end[-1] == '.')
		end[-1] = '\0';
}

static const char *
wait_text(enum run_policy wait)
{
	switch (wait) {
	case RUN_WAIT_ALL:
		return "answers when every job is done, with all their "
		       "results in the listed order";
	case RUN_WAIT_FIRST:
		return "answers when the first listed job is done, with its "
		       "result; the others go on";
	case RUN_WAIT_ANY:
		return "answers when any job is done, with its result; the "
		       "others go on";
	case RUN_WAIT_NONE:
		return "answers 202 at once, with a link to each job";
	}
	return "answers";
}

/* The operation's description: a new string, or NULL. */
static json_t *
route_description(const struct route *r, json_t *names)
{
	char deadline[192] = "", secs[32];

	if (r->wait != RUN_WAIT_NONE) {
		format_seconds(secs, sizeof(secs), r->timeout_ns);
		snprintf(deadline, sizeof(deadline), " Past its deadline of "
			 "%s s it answers 504, and the jobs %s. If the "
			 "client hangs up while it waits, its jobs %s.", secs,
			 r->losers == ROUTE_LOSERS_CANCEL ? "still going are "
			 "cancelled" : "go on",
			 r->on_disconnect == ROUTE_DISCONNECT_CANCEL ?
			 "are cancelled" : "go on");
	}
	return json_sprintf("Starts one instance of each job (%s) and %s.%s "
		"A declared parameter that is not a path segment may come "
		"from the query string or from a JSON object body "
		"(Content-Type: application/json), once; in the query string "
		"a bool is true, false, 1, 0, yes or no. An undeclared, bad, "
		"repeated or missing parameter is refused with 400, and no "
		"job starts.", json_string_value(names), wait_text(r->wait),
		deadline);
}

/* "get_greet_name" for GET /greet/{name}, unique in used.  New, or NULL. */
static json_t *
operation_id(const struct route *r, json_t *used)
{
	char id[CONFIG_PATH_MAX + 32];
	size_t n = 0, base, k;
	const char *s;

	for (s = r->method; *s != '\0' && n < 16; s++)
		id[n++] = (char)(*s - 'A' + 'a');
	for (s = r->path; *s != '\0'; s++) {
		bool word = (*s >= 'a' && *s <= 'z') || (*s >= 'A' &&
			    *s <= 'Z') || (*s >= '0' && *s <= '9');

		if (word)
			id[n++] = *s;
		else if (n > 0 && id[n - 1] != '_')
			id[n++] = '_';
	}
	if (n > 0 && id[n - 1] == '_')
		n--;
	id[n] = '\0';
	base = n;
	for (k = 2; json_object_get(used, id) != NULL; k++)
		snprintf(id + base, sizeof(id) - base, "_%zu", k);
	if (json_object_set_new(used, id, json_true()))
		return NULL;
	return json_string(id);
}

/* The responses of a request to r: a new object, or NULL. */
static json_t *
route_responses(const struct route *r)
{
	json_t *res = json_object();

	if (r->wait == RUN_WAIT_NONE) {
		res = api_object_set(res, "202", ref("responses", "RunNone"));
	} else {
		res = api_object_set(res, "200", ref("responses",
			r->wait == RUN_WAIT_ALL ? "RunAll" : "RunOne"));
		res = api_object_set(res, "202", ref("responses", "RunAsync"));
	}
	res = api_object_set(res, "400", ref("responses", "BadRequest"));
	res = api_object_set(res, "405", ref("responses",
					     "MethodNotAllowed"));
	res = api_object_set(res, "413", ref("responses", "ContentTooLarge"));
	res = api_object_set(res, "415", ref("responses",
					     "UnsupportedMediaType"));
	if (!strcmp(r->method, "POST"))		/* Idempotency-Key */
		res = api_object_set(res, "422", ref("responses",
						     "UnprocessableContent"));
	if (r->wait != RUN_WAIT_NONE)
		res = api_object_set(res, "502", ref("responses",
						     "BadGateway"));
	res = api_object_set(res, "503", ref("responses",
					     "ServiceUnavailable"));
	if (r->wait != RUN_WAIT_NONE)
		res = api_object_set(res, "504", ref("responses",
						     "GatewayTimeout"));
	return res;
}

/* What the config says of r, for tools: a new object, or NULL. */
static json_t *
route_extension(const struct route *r)
{
	json_t *x = json_object(), *jobs = json_array();
	size_t i;

	for (i = 0; i < r->njobs; i++)
		jobs = api_array_append(jobs, json_string(r->jobs[i]->name));
	x = api_object_set(x, "jobs", jobs);
	x = api_object_set(x, "wait", json_string(run_policy_name(r->wait)));
	x = api_object_set(x, "timeout_s", json_real((double)r->timeout_ns /
						     1e9));
	x = api_object_set(x, "losers", json_string(
		r->losers == ROUTE_LOSERS_CANCEL ? "cancel" : "detach"));
	return api_object_set(x, "on_disconnect", json_string(
		r->on_disconnect == ROUTE_DISCONNECT_CANCEL ? "cancel" :
		"detach"));
}

/* {"required"?, "content": JSON object schema}; props stolen.  Or NULL. */
static json_t *
request_body(json_t *props, json_t *required)
{
	json_t *schema = json_pack("{s:s, s:b}", "type", "object",
				   "additionalProperties", 0);

	schema = api_object_set(schema, "properties", props);
	if (json_array_size(required) > 0)
		schema = api_object_set(schema, "required", json_incref(required));
	return json_pack("{s:b, s:{s:{s:o}}}", "required",
			 json_array_size(required) > 0, "content",
			 "application/json", "schema", schema);
}

/*
 * The parameters of r into *params (path and query) and *props with
 * *required (body members): each declared name once, in the order of
 * r's jobs and their declarations.  On failure one of them is NULL.
 */
static void
route_params(const struct route *r, json_t **params, json_t **props,
	     json_t **required)
{
	bool body = method_has_body(r->method), req;
	size_t k, i;

	for (k = 0; k < r->njobs; k++) {
		const struct job_def *def = r->jobs[k];

		for (i = 0; i < def->nparams; i++) {
			const struct param_decl *d = &def->params[i];
			json_t *schema;

			if (declared_before(r, k, d->name))
				continue;
			schema = route_param_schema(r, d->name, &req);
			if (in_path(r, d->name))
				*params = api_array_append(*params, parameter(
					d->name, "path", true, schema, false));
			else if (!body)
				*params = api_array_append(*params, parameter(
					d->name, "query", req, schema,
					d->type == PARAM_BOOL));
			else if ((*props = api_object_set(*props, d->name,
							  schema)) && req)
				*required = api_array_append(*required,
					json_string(d->name));
		}
	}
}

/* The Operation Object of r: a new object, or NULL. */
static json_t *
route_operation(const struct route *r, json_t *used_ids)
{
	json_t *params = json_array(), *props = json_object();
	json_t *required = json_array(), *names = job_names(r), *op;

	route_params(r, &params, &props, &required);
	params = api_array_append(params, ref("parameters", "Prefer"));
	if (!strcmp(r->method, "POST"))
		params = api_array_append(params, ref("parameters",
						       "IdempotencyKey"));
	op = json_pack("{s:[s]}", "tags", "routes");
	op = api_object_set(op, "operationId", operation_id(r, used_ids));
	op = api_object_set(op, "summary", names == NULL ? NULL : json_sprintf(
		"Runs %s (wait %s)", json_string_value(names),
		run_policy_name(r->wait)));
	op = api_object_set(op, "description", names == NULL ? NULL :
			    route_description(r, names));
	op = api_object_set(op, "parameters", params);
	if (props == NULL || required == NULL)
		op = api_object_set(op, "requestBody", NULL);
	else if (json_object_size(props) > 0)
		op = api_object_set(op, "requestBody",
				    request_body(json_incref(props), required));
	op = api_object_set(op, "responses", route_responses(r));
	op = api_object_set(op, "x-taskpoold", route_extension(r));
	json_decref(names);
	json_decref(props);
	json_decref(required);
	return op;
}

/* Adds r's path to paths: 0, or -1 when out of memory. */
static int
add_route(json_t *paths, const struct route *r, json_t *used_ids)
{
	char method[16];
	size_t i;
	json_t *item;

	for (i = 0; i < sizeof(method) - 1 && r->method[i] != '\0'; i++)
		method[i] = (char)(r->method[i] - 'A' + 'a');
	method[i] = '\0';
	/*
	 * A route that takes one of the template's paths replaces it: that
	 * is what the dispatch in api.c does with the paths that the config
	 * does not reserve.
	 */
	item = api_object_set(json_object(), method,
			      route_operation(r, used_ids));
	return item == NULL || json_object_set_new(paths, r->path, item) ?
	       -1 : 0;
}

/* ---- jobs, for POST /jobs ---------------------------------------------------- */

/*
 * The schema of def's params object, which POST /jobs takes for it:
 * a new object, or NULL.  *required: it has a parameter without default.
 */
static json_t *
job_params_schema(const struct job_def *def, bool *required)
{
	json_t *props = json_object(), *req = json_array(), *s;
	size_t i;

	for (i = 0; i < def->nparams; i++) {
		const struct param_decl *d = &def->params[i];

		props = api_object_set(props, d->name, api_openapi_decl_schema(d));
		if (d->default_value == NULL)
			req = api_array_append(req, json_string(d->name));
	}
	*required = json_array_size(req) > 0;
	s = json_pack("{s:s, s:s++, s:b}", "type", "object", "description",
		      "The parameters of job ", def->name, ".",
		      "additionalProperties", 0);
	s = api_object_set(s, "properties", props);
	if (*required || req == NULL)
		s = api_object_set(s, "required", req);
	else
		json_decref(req);
	return s;
}

/*
 * components.schemas["params.NAME"] for each job, and RunRequest's
 * `jobs` items as one of them.  0, or -1 when out of memory (or when the
 * template lacks RunRequest).
 */
static int
add_jobs(json_t *doc, const struct config *cfg)
{
	json_t *schemas = json_object_get(json_object_get(doc, "components"),
					  "schemas");
	json_t *jobs = json_object_get(json_object_get(json_object_get(
		schemas, "RunRequest"), "properties"), "jobs");
	json_t *one_of = json_array();
	char key[CONFIG_NAME_MAX + 16];
	size_t i;

	if (jobs == NULL || cfg->njobs == 0) {
		json_decref(one_of);
		return jobs == NULL ? -1 : 0;
	}
	for (i = 0; i < cfg->njobs; i++) {
		const struct job_def *def = &cfg->jobs[i];
		json_t *item;
		bool required;

		snprintf(key, sizeof(key), "params.%s", def->name);
		if (json_object_set_new(schemas, key, job_params_schema(def,
								      &required)))
			goto fail;
		item = json_pack("{s:s, s:[s], s:b, s:{s:{s:s}}}", "type",
				 "object", "required", "job",
				 "additionalProperties", 0, "properties",
				 "job", "const", def->name);
		item = api_object_set(item, "title", json_string(def->name));
		if (item == NULL || json_object_set_new(json_object_get(item,
			"properties"), "params", ref("schemas", key)) ||
		    (required && json_array_append_new(json_object_get(item,
			"required"), json_string("params")))) {
			json_decref(item);
			goto fail;
		}
		if ((one_of = api_array_append(one_of, item)) == NULL)
			return -1;
	}
	return json_object_set_new(jobs, "items", api_object_set(json_object(),
				   "oneOf", one_of)) ? -1 : 0;
fail:
	json_decref(one_of);
	return -1;
}

/* ---- the document ------------------------------------------------------------ */

json_t *
api_openapi_document(const struct config *cfg)
{
	json_t *doc = load_template(), *used = json_object();
	json_t *paths = json_object_get(doc, "paths");
	size_t i;

	if (doc == NULL || used == NULL || !json_is_object(paths) ||
	    json_object_set_new(json_object_get(doc, "info"), "version",
				json_string(PACKAGE_VERSION)))
		goto fail;
	for (i = 0; i < cfg->nroutes; i++)
		if (add_route(paths, &cfg->routes[i], used))
			goto fail;
	if (add_jobs(doc, cfg) || api_openapi_add_security(doc, cfg))
		goto fail;
	json_decref(used);
	return doc;
fail:
	json_decref(used);
	json_decref(doc);
	return NULL;
}

enum server_handled
api_openapi_resource(struct daemon *d, struct server_request *req)
{
	struct config *cfg;
	json_t *doc;

	if (!api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD");
	cfg = daemon_config(d);
	doc = api_openapi_document(cfg);
	config_unref(cfg);
	return api_respond_json(req, 200, doc);	/* NULL: 500 */
}
