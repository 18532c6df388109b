/*
 * config_jobs.c - [job NAME] and [route PATH] sections: see
 * config_private.h and taskpoold.conf(5).
 *
 * [job] sections are collected as raw key/value/line triples and given
 * meaning once the file is read, because `kind` decides which keys are
 * valid and may come after them: the kind, found in the table of kinds,
 * parses its own keys into the definition's kind_data.  Route job lists
 * are resolved last, since a route may name a job defined further down.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_private.h"
#include "kinds/kinds.h"
#include "params.h"

/*
 * Route paths: "/" or "/seg/seg", segments of [A-Za-z0-9_.~-], or a whole
 * segment "{name}" naming a parameter (params.h's names).
 */
static bool
valid_route_path(const char *s)
{
	size_t n = strlen(s), i, close;

	if (n == 0 || n > CONFIG_PATH_MAX || s[0] != '/')
		return false;
	if (n > 1 && s[n - 1] == '/')
		return false;
	for (i = 1; i < n; i++) {
		if (s[i] == '/' && s[i - 1] == '/')
			return false;
		if (s[i] == '{' && s[i - 1] == '/') {
			close = strcspn(s + i, "}/");
			if (s[i + close] != '}' ||
			    (s[i + close + 1] != '/' && s[i + close + 1]) ||
			    !param_name_valid(s + i + 1, close - 1))
				return false;
			i += close;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && !strchr("/_.~-", s[i]))
			return false;
	}
	return true;
}

/*
 * Whether two route paths take the same requests: the same segments, a
 * `{name}` (whatever its name) where the other has one.
 */
static bool
same_route_shape(const char *a, const char *b)
{
	size_t na, nb;

	while (*a == '/' && *b == '/') {
		a++, b++;
		na = strcspn(a, "/");
		nb = strcspn(b, "/");
		if (*a == '{' && *b == '{')
			;
		else if (na != nb || memcmp(a, b, na) || *a == '{' || *b == '{')
			return false;
		a += na, b += nb;
	}
	return *a == *b;
}

/* Paths the daemon serves itself; a route may not take them. */
static bool
reserved_route_path(const char *s)
{
	return !strcmp(s, "/jobs") || !strncmp(s, "/jobs/", 6) ||
	       !strcmp(s, "/runs") || !strncmp(s, "/runs/", 6) ||
	       !strcmp(s, "/healthz") || !strcmp(s, "/metrics") ||
	       !strcmp(s, "/openapi.json");
}

/* [job NAME]: a new job definition with its defaults.  0 or -1. */
static int
begin_job_section(struct parser *p, const char *name)
{
	struct job_def *def;
	size_t i;

	if (!config_name_valid(name)) {
		parser_error(p, p->line, "bad job name '%s' (use 1 to %d of "
			     "A-Z a-z 0-9 _ . -)", name, CONFIG_NAME_MAX);
		return -1;
	}
	for (i = 0; i < p->cfg->njobs; i++) {
		if (!strcmp(p->cfg->jobs[i].name, name)) {
			parser_error(p, p->line, "job '%s' is already defined "
				     "at line %d", name, p->cfg->jobs[i].line);
			return -1;
		}
	}
	if (RESERVE(p->cfg->jobs, p->cfg->njobs) ||
	    RESERVE(p->raw_jobs, p->cfg->njobs))
		goto nomem;
	def = &p->cfg->jobs[p->cfg->njobs];
	memset(def, 0, sizeof(*def));
	memset(&p->raw_jobs[p->cfg->njobs], 0, sizeof(p->raw_jobs[0]));
	p->cfg->njobs++;
	def->line = p->line;
	def->timeout_ns = 60 * NS_PER_S;
	if ((def->name = strdup(name)) == NULL)
		goto nomem;
	p->section = SECTION_JOB;
	return 0;
nomem:
	parser_error(p, p->line, "out of memory");
	return -1;
}

/* [route PATH]: a new route with its defaults.  0 or -1. */
static int
begin_route_section(struct parser *p, const char *path)
{
	size_t i, n = p->cfg->nroutes;
	struct route *r;

	if (!valid_route_path(path)) {
		parser_error(p, p->line, "bad route path '%s' (an absolute "
			     "path of segments of A-Z a-z 0-9 _ . ~ - or "
			     "{name}, at most %d characters)", path,
			     CONFIG_PATH_MAX);
		return -1;
	}
	if (reserved_route_path(path)) {
		parser_error(p, p->line, "route path '%s' is reserved for the "
			     "daemon's own API", path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(p->cfg->routes[i].path, path)) {
			parser_error(p, p->line, "route '%s' is already "
				     "defined at line %d", path,
				     p->cfg->routes[i].line);
			return -1;
		}
		if (same_route_shape(p->cfg->routes[i].path, path)) {
			parser_error(p, p->line, "route '%s' takes the same "
				     "paths as '%s' at line %d", path,
				     p->cfg->routes[i].path,
				     p->cfg->routes[i].line);
			return -1;
		}
	}
	if (RESERVE(p->cfg->routes, n) || RESERVE(p->route_jobs, n) ||
	    RESERVE(p->route_jobs_line, n))
		goto nomem;
	r = &p->cfg->routes[n];
	memset(r, 0, sizeof(*r));	/* losers, on_disconnect: detach */
	p->route_jobs[n] = NULL;
	p->route_jobs_line[n] = 0;
	p->cfg->nroutes++;
	r->line = p->line;
	r->wait = RUN_WAIT_ALL;
	r->timeout_ns = 30 * NS_PER_S;
	if ((r->path = strdup(path)) == NULL ||
	    (r->method = strdup("GET")) == NULL)
		goto nomem;
	p->section = SECTION_ROUTE;
	return 0;
nomem:
	parser_error(p, p->line, "out of memory");
	return -1;
}

int
config_jobs_begin(struct parser *p, const char *header)
{
	if (!strncmp(header, "job ", 4))
		return begin_job_section(p, header + 4);
	if (!strncmp(header, "route ", 6))
		return begin_route_section(p, header + 6);
	return 1;
}

static int
key_job(struct parser *p, const char *key, const char *value)
{
	struct raw_job *raw = &p->raw_jobs[p->cfg->njobs - 1];
	struct raw_kv *kv;

	if (RESERVE(raw->kvs, raw->nkvs)) {
		parser_error(p, p->line, "out of memory");
		return -1;
	}
	kv = &raw->kvs[raw->nkvs];
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->line = p->line;
	raw->nkvs++;
	if (kv->key == NULL || kv->value == NULL) {
		parser_error(p, p->line, "out of memory");
		return -1;
	}
	return 0;
}

static int
key_route(struct parser *p, const char *key, const char *value)
{
	size_t n = p->cfg->nroutes - 1;
	struct route *r = &p->cfg->routes[n];
	int policy;

	if (!strcmp(key, "method")) {
		static const char *const methods[] = {
			"GET", "POST", "PUT", "PATCH", "DELETE",
		};
		size_t i;

		for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
			if (!strcmp(value, methods[i]))
				return parser_set_string(p, &r->method, value);
		return parser_bad_value(p, key, value, "GET, POST, PUT, PATCH "
					"or DELETE");
	}
	if (!strcmp(key, "jobs")) {
		p->route_jobs_line[n] = p->line;
		return parser_set_string(p, &p->route_jobs[n], value);
	}
	if (!strcmp(key, "wait")) {
		if ((policy = run_policy_parse(value)) < 0)
			return parser_bad_value(p, key, value, "all, first, "
						"any or none");
		r->wait = (enum run_policy)policy;
		return 0;
	}
	if (!strcmp(key, "timeout")) {
		if (config_parse_duration(value, &r->timeout_ns) ||
		    r->timeout_ns < NS_PER_MS ||
		    r->timeout_ns > 3600 * NS_PER_S)
			return parser_bad_value(p, key, value, "a duration "
						"from 1ms to 1h");
		return 0;
	}
	if (!strcmp(key, "losers")) {
		if (!strcmp(value, "detach"))
			r->losers = ROUTE_LOSERS_DETACH;
		else if (!strcmp(value, "cancel"))
			r->losers = ROUTE_LOSERS_CANCEL;
		else
			return parser_bad_value(p, key, value, "detach or "
						"cancel");
		return 0;
	}
	if (!strcmp(key, "on_disconnect")) {
		if (!strcmp(value, "detach"))
			r->on_disconnect = ROUTE_DISCONNECT_DETACH;
		else if (!strcmp(value, "cancel"))
			r->on_disconnect = ROUTE_DISCONNECT_CANCEL;
		else
			return parser_bad_value(p, key, value, "detach or "
						"cancel");
		return 0;
	}
	if (!strcmp(key, "auth")) {
		if (strcmp(value, "open") && strcmp(value, "token"))
			return parser_bad_value(p, key, value, "open or token");
		r->auth_open = !strcmp(value, "open");
		r->auth_line = p->line;
		return 0;
	}
	return parser_unknown_key(p, "route", key);
}

int
config_jobs_key(struct parser *p, const char *key, const char *value)
{
	switch (p->section) {
	case SECTION_JOB:	return key_job(p, key, value);
	case SECTION_ROUTE:	return key_route(p, key, value);
	default:		return -1;
	}
}

/* ---- once the file is read ----------------------------------------------- */

/* Gives def the kind that its section's `kind` key names.  0 or -1. */
static int
find_job_kind(struct parser *p, struct job_def *def,
	      const struct raw_job *raw)
{
	size_t i;

	for (i = 0; i < raw->nkvs; i++) {
		if (strcmp(raw->kvs[i].key, "kind"))
			continue;
		def->kind = job_kind_find(raw->kvs[i].value);
		if (def->kind == NULL) {
			parser_error(p, raw->kvs[i].line, "unknown job kind "
				     "'%s' (known: %s)", raw->kvs[i].value,
				     job_kind_names());
			return -1;
		}
	}
	if (def->kind == NULL) {
		parser_error(p, def->line, "job '%s' has no kind", def->name);
		return -1;
	}
	return 0;
}

/*
 * One key of a job other than its kind: one that every kind has (timeout,
 * max_concurrent, coalesce), or its kind's.
 */
static int
apply_job_key(struct parser *p, struct job_def *def, const struct raw_kv *kv)
{
	char why[192];
	int rc;

	if (!strcmp(kv->key, "timeout")) {
		if (config_parse_duration(kv->value, &def->timeout_ns) ||
		    def->timeout_ns < NS_PER_MS) {
			parser_error(p, kv->line, "bad value '%s' for timeout "
				     "(expected a duration from 1ms to 7d)",
				     kv->value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(kv->key, "max_concurrent")) {
		if (config_parse_uint(kv->value, 0, 100000,
				      &def->max_concurrent)) {
			parser_error(p, kv->line, "bad value '%s' for "
				     "max_concurrent (expected 0 to 100000)",
				     kv->value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(kv->key, "coalesce")) {
		if (config_parse_bool(kv->value, &def->coalesce)) {
			parser_error(p, kv->line, "bad value '%s' for "
				     "coalesce (expected yes or no)",
				     kv->value);
			return -1;
		}
		return 0;
	}
	rc = def->kind->parse(def, kv->key, kv->value, why, sizeof(why));
	if (rc == 1) {
		parser_error(p, kv->line, "unknown key '%s' for a job of "
			     "kind %s", kv->key, def->kind->name);
		return -1;
	}
	if (rc < 0) {
		parser_error(p, kv->line, "%s", why);
		return -1;
	}
	return 0;
}

static bool
is_param_key(const char *key)
{
	return !strncmp(key, "param.", 6);
}

static int
finish_job(struct parser *p, struct job_def *def, const struct raw_job *raw)
{
	char why[192];
	size_t i;

	if (find_job_kind(p, def, raw))
		return -1;
	/* Declarations first: a kind's keys and check refer to them. */
	for (i = 0; i < raw->nkvs; i++)
		if (is_param_key(raw->kvs[i].key) &&
		    config_params_key(p, def, &raw->kvs[i]))
			return -1;
	for (i = 0; i < raw->nkvs; i++)
		if (strcmp(raw->kvs[i].key, "kind") &&
		    !is_param_key(raw->kvs[i].key) &&
		    apply_job_key(p, def, &raw->kvs[i]))
			return -1;
	if (def->kind->check(def, why, sizeof(why))) {
		parser_error(p, def->line, "job '%s': %s", def->name, why);
		return -1;
	}
	return 0;
}

/*
 * Each `{name}` of r's path: once in it, declared by at least one of its
 * jobs, and not secret in any (the path is in log lines).  0 or -1.
 */
static int
check_route_params(struct parser *p, const struct route *r)
{
	struct param_input seg[CONFIG_PATH_MAX / 2];
	size_t n = params_from_path(r, r->path, seg, CONFIG_PATH_MAX / 2);
	size_t i, j, k;
	char name[PARAM_NAME_MAX + 1];

	for (i = 0; i < n; i++) {
		const struct param_decl *d = NULL, *any = NULL;

		snprintf(name, sizeof(name), "%.*s", (int)seg[i].name_len,
			 seg[i].name);
		for (j = 0; j < i; j++)
			if (seg[j].name_len == seg[i].name_len &&
			    !memcmp(seg[j].name, name, seg[i].name_len))
				break;
		if (j < i) {
			parser_error(p, r->line, "route '%s' has {%s} twice",
				     r->path, name);
			return -1;
		}
		for (k = 0; k < r->njobs; k++) {
			if ((d = config_job_param(r->jobs[k], name)) == NULL)
				continue;
			any = d;
			if (d->secret)
				break;
		}
		if (any == NULL || (d != NULL && d->secret)) {
			parser_error(p, r->line, any == NULL ? "route '%s': "
				     "no job of the route declares {%s}" :
				     "route '%s': {%s} is a secret parameter, "
				     "and paths are logged", r->path, name);
			return -1;
		}
	}
	return 0;
}

static int
finish_route(struct parser *p, struct route *r, char *jobs, int line)
{
	char *tok, *save = NULL;
	const struct job_def *def;

	if (jobs == NULL) {
		parser_error(p, r->line, "route '%s' has no jobs", r->path);
		return -1;
	}
	for (tok = strtok_r(jobs, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		def = config_find_job(p->cfg, tok);
		if (def == NULL) {
			parser_error(p, line, "route '%s' names unknown job "
				     "'%s'", r->path, tok);
			return -1;
		}
		if (r->njobs == CONFIG_ROUTE_JOBS_MAX) {
			parser_error(p, line, "route '%s' has more than %d "
				     "jobs", r->path, CONFIG_ROUTE_JOBS_MAX);
			return -1;
		}
		if (RESERVE(r->jobs, r->njobs)) {
			parser_error(p, line, "out of memory");
			return -1;
		}
		r->jobs[r->njobs++] = def;
	}
	if (r->njobs == 0) {
		parser_error(p, line, "route '%s' has an empty job list",
			     r->path);
		return -1;
	}
	return check_route_params(p, r);
}

/*
 * Refuses limits that contradict each other: settings each valid alone
 * that together make part of the file unusable.  Limits that are merely
 * slack (a pool queue deeper than max_jobs can hold) are not refused.
 * Each rule is in taskpoold.conf(5), "Limits checked together".
 */
static int
check_limits(struct parser *p)
{
	const struct config *c = p->cfg;
	char where[32] = "the default";
	size_t i;

	if (p->max_jobs_line > 0)
		snprintf(where, sizeof(where), "line %d", p->max_jobs_line);
	/* A request registers all its route's jobs before any can finish. */
	for (i = 0; i < c->nroutes; i++) {
		const struct route *r = &c->routes[i];

		if (r->njobs > c->registry.max_jobs) {
			parser_error(p, p->route_jobs_line[i], "route '%s' "
				     "starts %zu jobs a request, more than "
				     "max_jobs = %u (%s) holds", r->path,
				     r->njobs, c->registry.max_jobs, where);
			return -1;
		}
	}
	return 0;
}

int
config_jobs_finish(struct parser *p)
{
	struct config *c = p->cfg;
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (finish_job(p, &c->jobs[i], &p->raw_jobs[i]))
			return -1;
	for (i = 0; i < c->nroutes; i++)
		if (finish_route(p, &c->routes[i], p->route_jobs[i],
				 p->route_jobs_line[i]))
			return -1;
	return check_limits(p);
}

void
config_jobs_forget(struct parser *p)
{
	size_t i, j;

	if (p->raw_jobs != NULL) {
		for (i = 0; i < p->cfg->njobs; i++) {
			for (j = 0; j < p->raw_jobs[i].nkvs; j++) {
				free(p->raw_jobs[i].kvs[j].key);
				free(p->raw_jobs[i].kvs[j].value);
			}
			free(p->raw_jobs[i].kvs);
		}
	}
	free(p->raw_jobs);
	if (p->route_jobs != NULL)
		for (i = 0; i < p->cfg->nroutes; i++)
			free(p->route_jobs[i]);
	free(p->route_jobs);
	free(p->route_jobs_line);
}
