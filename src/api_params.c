/*
 * api_params.c - see api_params.h.
 *
 * This file only gathers: the values of the path, the query string and the
 * body become one list of param_input, in that order, and params.c does
 * every check.  So a name given twice is refused whatever its sources, and
 * the same rules hold wherever a value came from.  The list is bounded
 * (PARAMS_INPUT_MAX and one more, to say which went past it), so a request
 * of many thousand values costs no more than one of 257.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_json.h"
#include "api_params.h"
#include "http.h"
#include "params.h"

struct gather {
	struct param_input in[PARAMS_INPUT_MAX + 1];
	size_t n;
};

/* server_query_fn: one argument into the list; stops when it is full. */
static int
add_query_argument(void *arg, const char *key, size_t key_len,
		   const char *value, size_t value_len)
{
	struct gather *g = arg;
	struct param_input *in = &g->in[g->n++];

	in->name = key;
	in->name_len = key_len;
	in->text = value != NULL ? value : "";	/* "?verbose": empty */
	in->text_len = value != NULL ? value_len : 0;
	in->json = NULL;
	in->source = PARAM_FROM_QUERY;
	return g->n == PARAMS_INPUT_MAX + 1;
}

bool
api_params_shown(const void *route, const char *key, size_t key_len)
{
	return params_loggable(route, key, key_len);
}

bool
api_params_is_json(const char *type)
{
	static const char json[] = "application/json";

	if (type == NULL)
		return false;
	type += strspn(type, " \t");
	return !strncasecmp(type, json, sizeof(json) - 1) &&
	       strchr("; \t", type[sizeof(json) - 1]) != NULL;
}

/*
 * The body, when there is one: *object a new JSON object, its members
 * appended to g.  Returns 0, or answers req (400, 415) and returns -1.
 */
static int
read_body(struct server_request *req, struct gather *g, json_t **object)
{
	size_t len;
	const char *body = server_request_body(req, &len);
	const char *key;
	char detail[256];
	json_t *v;

	*object = NULL;
	if (len == 0)
		return 0;
	if (!api_params_is_json(server_request_header(req, "Content-Type"))) {
		server_respond_problem(req, 415, "a request body holds "
				       "parameters, as a JSON object with "
				       "Content-Type: application/json");
		return -1;
	}
	*object = api_json_load_object(body, len, "a JSON object of "
				       "parameters", detail, sizeof(detail));
	if (*object == NULL) {
		server_request_set_reason(req, "bad_json");
		server_respond_problem(req, 400, detail);
		return -1;
	}
	json_object_foreach(*object, key, v) {
		struct param_input *in = &g->in[g->n];

		if (g->n == PARAMS_INPUT_MAX + 1)
			break;
		in->name = key;
		in->name_len = strlen(key);
		in->json = v;
		in->source = PARAM_FROM_BODY;
		g->n++;
	}
	return 0;
}

/* Answers the refusal: 400 naming the first, with all in `errors`. */
static void
respond_refused(struct server_request *req, json_t *errors)
{
	json_t *first = json_array_get(errors, 0), *problem;
	size_t n = json_array_size(errors), len;
	unsigned status = 400;
	char detail[256], more[48] = "";
	char *body;

	if (n > 1)
		snprintf(more, sizeof(more), " (and %zu more)", n - 1);
	snprintf(detail, sizeof(detail), "parameter '%s' %s%s",
		 json_string_value(json_object_get(first, "param")),
		 json_string_value(json_object_get(first, "reason")), more);
	problem = http_problem_new(400, detail);
	if (problem != NULL && json_object_set_new(problem, "errors", errors))
		json_decref(problem), problem = NULL;
	else if (problem == NULL)
		json_decref(errors);
	body = http_answer_body(problem, &status, &len);
	server_request_set_reason(req, "bad_parameter");
	server_respond(req, status, HTTP_PROBLEM_JSON, body, len);
}

int
api_params_read(struct server_request *req, const struct route *route,
		json_t **params)
{
	struct gather gather, *g = &gather;	/* 12 KiB of an HTTP thread's
						 * stack, for one call */
	json_t *body = NULL, *errors = NULL;
	int rc = -1;

	g->n = params_from_path(route, server_request_path(req), g->in,
				PARAMS_INPUT_MAX + 1);
	if (g->n <= PARAMS_INPUT_MAX)
		server_request_query(req, add_query_argument, g);
	if (g->n > PARAMS_INPUT_MAX || read_body(req, g, &body) == 0) {
		rc = params_resolve(route, g->in, g->n, params, &errors);
		if (rc < 0)
			server_respond_problem(req, 503, "out of memory");
		else if (rc > 0)
			respond_refused(req, errors);
		rc = rc == 0 ? 0 : -1;
	}
	json_decref(body);
	return rc;
}
