/*
 * api_openapi_auth.c - the bearer tokens in the OpenAPI document: see
 * api_openapi.h.
 *
 * With tokens configured, the document declares an HTTP bearer security
 * scheme, and each operation that needs a token (api_auth_required(),
 * the same rule as the dispatch) lists it under `security`, with its 401
 * and 403 answers.  Operations that stay open (/healthz, and whatever
 * [auth] or `auth = open` opens) list none: the document has no
 * top-level `security`, so that is what "open" reads as.  Without tokens
 * the document is as it was before tokens existed.
 */
#include <string.h>

#include "api_auth.h"
#include "api_openapi.h"
#include "config.h"

static const char *const methods[] = {
	"get", "put", "post", "delete", "options", "head", "patch", "trace",
};

/* A problem+json response described by text: a new object, or NULL. */
static json_t *
problem_response(const char *text, const char *challenge)
{
	return json_pack("{s:s, s:{s:{s:s, s:{s:s, s:[s]}}}, s:{s:{s:{s:s}}}}",
			 "description", text,
			 "headers", "WWW-Authenticate", "description",
			 "The challenge (RFC 6750, section 3).", "schema",
			 "type", "string", "examples", challenge,
			 "content", "application/problem+json", "schema",
			 "$ref", "#/components/schemas/Problem");
}

/* securitySchemes.bearer, and the Unauthorized and Forbidden answers. */
static int
add_components(json_t *doc)
{
	json_t *components = json_object_get(doc, "components");
	json_t *responses = json_object_get(components, "responses");

	if (!json_is_object(responses))
		return -1;
	return json_object_set_new(components, "securitySchemes", json_pack(
		"{s:{s:s, s:s, s:s}}", "bearer", "type", "http", "scheme",
		"bearer", "description", "A token of the tokens file that "
		"[auth] tokens names (taskpoold.conf(5)): `Authorization: "
		"Bearer TOKEN`.")) ||
	       json_object_set_new(responses, "Unauthorized", problem_response(
		"No bearer token, or not a valid one; nothing ran.",
		"Bearer realm=\"" API_AUTH_REALM "\", "
		"error=\"invalid_token\"")) ||
	       json_object_set_new(responses, "Forbidden", problem_response(
		"The token may not use this route, or run one of the jobs "
		"asked for; nothing ran.", "Bearer realm=\"" API_AUTH_REALM
		"\", error=\"insufficient_scope\"")) ? -1 : 0;
}

/* The route whose path is exactly path, or NULL (a built-in). */
static const struct route *
route_of(const struct config *cfg, const char *path)
{
	size_t i;

	for (i = 0; i < cfg->nroutes; i++)
		if (!strcmp(cfg->routes[i].path, path))
			return &cfg->routes[i];
	return NULL;
}

/* Marks op as needing a token: 0, or -1 when out of memory. */
static int
secure(json_t *op)
{
	json_t *responses = json_object_get(op, "responses");

	if (!json_is_object(responses))
		return -1;
	return json_object_set_new(op, "security", json_pack("[{s:[]}]",
							      "bearer")) ||
	       json_object_set_new(responses, "401", json_pack(
		"{s:s}", "$ref", "#/components/responses/Unauthorized")) ||
	       json_object_set_new(responses, "403", json_pack(
		"{s:s}", "$ref", "#/components/responses/Forbidden")) ? -1 : 0;
}

int
api_openapi_add_security(json_t *doc, const struct config *cfg)
{
	json_t *paths = json_object_get(doc, "paths"), *item;
	const char *path;
	size_t i;

	if (cfg->auth.tokens == NULL)
		return 0;
	if (add_components(doc) != 0)
		return -1;
	json_object_foreach(paths, path, item) {
		const struct route *r = route_of(cfg, path);

		if (!api_auth_required(cfg, r != NULL ? NULL : path, r))
			continue;
		for (i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
			json_t *op = json_object_get(item, methods[i]);

			if (op != NULL && secure(op) != 0)
				return -1;
		}
	}
	return 0;
}
