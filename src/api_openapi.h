/*
 * api_openapi.h - GET /openapi.json: an OpenAPI 3.1 document of the API,
 * with the routes of the config the daemon runs now.
 *
 * The daemon's own endpoints and the shared components come from a
 * template, src/api_openapi.json, compiled in at build time; the routes,
 * with their declared parameters, and the jobs that POST /jobs can run
 * come from the config.
 */
#ifndef TASKPOOLD_API_OPENAPI_H
#define TASKPOOLD_API_OPENAPI_H

#include <jansson.h>

#include "server.h"

struct config;
struct daemon;
struct param_decl;

/*
 * The lines of src/api_openapi.json, NULL-terminated (made by the build,
 * in api_openapi_json.c).
 */
extern const char *const api_openapi_template[];

/*
 * The document for cfg (borrowed for the call): a new object, or NULL when
 * out of memory.  Pure: the same config gives the same document.
 */
json_t *api_openapi_document(const struct config *cfg);

/*
 * The JSON Schema of what the daemon takes for declaration d (borrowed),
 * in a JSON body or as text: a new object, or NULL when out of memory.
 * A secret's is writeOnly, without its default.  (api_openapi_schema.c)
 */
json_t *api_openapi_decl_schema(const struct param_decl *d);

/*
 * With tokens in cfg: declares the bearer scheme in doc and marks each
 * operation that needs a token (api_auth.h) with it and its 401 and 403
 * answers.  Without tokens, nothing.  Returns 0, or -1 when out of
 * memory.  (api_openapi_auth.c)
 */
int api_openapi_add_security(json_t *doc, const struct config *cfg);

/* /openapi.json: GET or HEAD the document of the current config. */
enum server_handled api_openapi_resource(struct daemon *d,
					 struct server_request *req);

#endif
