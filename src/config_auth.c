/*
 * config_auth.c - the [auth] section: the tokens file (auth.h) and which
 * of the daemon's own resources stay open when tokens are configured.
 * See config_private.h and taskpoold.conf(5).
 *
 * The tokens file is read with the config, on start and on each reload:
 * a file that is refused refuses the whole config, so a reload keeps the
 * running config and its tokens.
 */
#include <string.h>

#include "auth.h"
#include "config_private.h"

/*
 * The labels of the daemon's own resources (api.c) that a token's
 * `routes=` may name, beside the configured routes.
 */
static const char *const built_in_labels[] = {
	"/jobs", "/jobs/{id}", "/runs", "/runs/{id}", "/metrics",
	"/openapi.json", "/healthz",
};

int
config_auth_begin(struct parser *p, const char *header)
{
	if (strcmp(header, "auth") != 0)
		return 1;
	if (p->auth_line != 0) {
		parser_error(p, p->line, "section [auth] appears twice");
		return -1;
	}
	p->auth_line = p->line;
	p->section = SECTION_AUTH;
	return 0;
}

/* `open` or `token` for key into *open: 0 or -1. */
static int
open_or_token(struct parser *p, const char *key, const char *value,
	      bool *open)
{
	if (strcmp(value, "open") && strcmp(value, "token"))
		return parser_bad_value(p, key, value, "open or token");
	*open = !strcmp(value, "open");
	return 0;
}

int
config_auth_key(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;

	if (!strcmp(key, "tokens")) {
		/* Not quoted: a token written here by mistake would be. */
		if (value[0] != '/') {
			parser_error(p, p->line, "tokens must be the absolute "
				     "path of the tokens file");
			return -1;
		}
		p->tokens_line = p->line;
		return parser_set_string(p, &c->auth.tokens_path, value);
	}
	if (!strcmp(key, "metrics"))
		return open_or_token(p, key, value, &c->auth.metrics_open);
	if (!strcmp(key, "openapi"))
		return open_or_token(p, key, value, &c->auth.openapi_open);
	return parser_unknown_key(p, "auth", key);
}

/* An error in the tokens file itself: TOKENSFILE:LINE: text. */
static int
tokens_file_error(struct parser *p, int line, const char *text)
{
	if (p->failed)
		return -1;
	parser_error(p, line, "%s", text);
	snprintf(p->err->file, sizeof(p->err->file), "%s",
		 p->cfg->auth.tokens_path);
	return -1;
}

/* Whether path is a built-in label or a configured route's path. */
static bool
route_known(const struct config *c, const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(built_in_labels) / sizeof(*built_in_labels);
	     i++)
		if (!strcmp(built_in_labels[i], path))
			return true;
	for (i = 0; i < c->nroutes; i++)
		if (!strcmp(c->routes[i].path, path))
			return true;
	return false;
}

/*
 * Each token's limits name what exists: 0, or -1 at the token's line
 * (which the text does not quote: see auth.h).
 */
static int
check_limits(struct parser *p, const struct auth_table *t)
{
	char text[256];
	size_t i, j;

	for (i = 0; i < auth_count(t); i++) {
		const struct auth_token *tok = auth_token_at(t, i);

		for (j = 0; j < tok->nroutes; j++) {
			if (route_known(p->cfg, tok->routes[j]))
				continue;
			snprintf(text, sizeof(text), "routes= names '%s', "
				 "which is neither a [route] of %s nor one of "
				 "/jobs, /jobs/{id}, /runs, /runs/{id}, "
				 "/metrics, /openapi.json", tok->routes[j],
				 p->path);
			return tokens_file_error(p, tok->line, text);
		}
		for (j = 0; j < tok->njobs; j++) {
			if (config_find_job(p->cfg, tok->jobs[j]) != NULL)
				continue;
			snprintf(text, sizeof(text), "jobs= names unknown "
				 "job '%s'", tok->jobs[j]);
			return tokens_file_error(p, tok->line, text);
		}
	}
	return 0;
}

/* Without tokens: nothing may ask for one. */
static int
check_no_tokens(struct parser *p)
{
	size_t i;

	if (p->auth_line != 0) {
		parser_error(p, p->auth_line, "[auth] without tokens (name "
			     "the tokens file: tokens = PATH)");
		return -1;
	}
	for (i = 0; i < p->cfg->nroutes; i++) {
		const struct route *r = &p->cfg->routes[i];

		if (r->auth_line != 0 && !r->auth_open) {
			parser_error(p, r->auth_line, "auth = token, but no "
				     "tokens are configured ([auth] tokens)");
			return -1;
		}
	}
	return 0;
}

int
config_auth_finish(struct parser *p)
{
	struct config *c = p->cfg;
	struct auth_error err;

	if (c->auth.tokens_path == NULL)
		return check_no_tokens(p);
	c->auth.tokens = auth_load(c->auth.tokens_path, &err);
	if (c->auth.tokens == NULL && err.line == 0) {
		parser_error(p, p->tokens_line, "tokens file %s: %s",
			     c->auth.tokens_path, err.text);
		return -1;
	}
	if (c->auth.tokens == NULL)
		return tokens_file_error(p, err.line, err.text);
	return check_limits(p, c->auth.tokens);
}
