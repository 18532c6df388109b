/*
 * fuzz_post.c - a request's run: the body of POST /jobs
 * (api_post_read_spec(), as api_post_jobs() calls it) and a route's
 * parameters from its path, query string and JSON body (params.c, as
 * api_params_read() gathers them), against one fixed config whose jobs
 * declare a parameter of every type.  Both bodies go through the loader
 * of the daemon (api_json_load_object(): the depth check before the
 * parser, duplicate keys refused).
 *
 * An input is two fields, cut at the first '\n' (fuzz.h): the request
 * target ("/jobs", or a route path with a query string) and the body.
 *
 * Properties besides "no crash, no leak, no hang": a body refused has a
 * detail in printable ASCII, one taken nests no deeper than
 * API_JSON_MAX_DEPTH; out of memory (-1) is
 * never the answer to a bad request (it would be a 503 for a client's
 * mistake); a refusal lists at least one error, each a JSON pointer and a
 * reason in valid UTF-8 (json_dumps() takes it); an accepted run has
 * 1 to max_run_jobs jobs, and each job's values are all its declared
 * parameters, each of its declared type and within its bounds.
 */
#include <jansson.h>
#include <stdio.h>

#include "api_json.h"
#include "api_post.h"
#include "api_start.h"
#include "config.h"
#include "fuzz.h"
#include "params.h"

static const char config_text[] =
	"[server]\n"
	"max_run_jobs = 4\n"
	"[job greet]\n"
	"kind = sleep\n"
	"duration = 1ms\n"
	"param.name = string max=16 pattern=[A-Za-z ]+\n"
	"param.times = int min=1 max=5 default=1\n"
	"param.mode = enum fast|slow default=fast\n"
	"param.verbose = bool default=false\n"
	"param.token = string secret default=none\n"
	"[job echo]\n"
	"kind = sleep\n"
	"duration = 1ms\n"
	"param.text = string max=64\n"
	"param.n = int default=-3\n"
	"[job plain]\n"
	"kind = sleep\n"
	"duration = 1ms\n"
	"[route /greet/{name}]\n"
	"jobs = greet plain\n"
	"[route /echo]\n"
	"jobs = echo\n"
	"[route /both/{text}]\n"
	"jobs = greet echo\n";

static struct config *cfg;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_error err;

	(void)argc;
	(void)argv;
	cfg = config_load_buffer("fuzz_post.conf", config_text,
				 sizeof(config_text) - 1, &err);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_post: %s:%d: %s\n", err.file, err.line,
			err.text);
		abort();
	}
	return 0;
}

/* v is a value that declaration d allows. */
static void
check_value(const struct param_decl *d, const json_t *v)
{
	size_t i;

	FUZZ_ASSERT(v != NULL);
	switch (d->type) {
	case PARAM_STRING:
		FUZZ_ASSERT(json_is_string(v));
		FUZZ_ASSERT(json_string_length(v) <= d->max_len ||
			    json_equal(v, d->default_value));
		FUZZ_ASSERT(strlen(json_string_value(v)) ==
			    json_string_length(v));
		break;
	case PARAM_INT:
		FUZZ_ASSERT(json_is_integer(v));
		FUZZ_ASSERT(json_integer_value(v) >= d->min &&
			    json_integer_value(v) <= d->max);
		break;
	case PARAM_ENUM:
		FUZZ_ASSERT(json_is_string(v));
		for (i = 0; i < d->nchoices; i++)
			if (!strcmp(json_string_value(v), d->choices[i]))
				break;
		FUZZ_ASSERT(i < d->nchoices);
		break;
	case PARAM_BOOL:
		FUZZ_ASSERT(json_is_boolean(v));
		break;
	}
}

/* values is def's object: every declared parameter, nothing else. */
static void
check_values(const struct job_def *def, const json_t *values)
{
	size_t i;

	/* None at all for a job that declares none (params_resolve()). */
	if (def->nparams == 0) {
		FUZZ_ASSERT(values == NULL);
		return;
	}
	FUZZ_ASSERT(json_is_object(values));
	FUZZ_ASSERT(json_object_size(values) == def->nparams);
	for (i = 0; i < def->nparams; i++)
		check_value(&def->params[i],
			    json_object_get(values, def->params[i].name));
}

/* A refusal: a non-empty array of objects of valid UTF-8 strings. */
static void
check_errors(json_t *errors, const char *key)
{
	size_t i;
	json_t *e;
	char *text;

	FUZZ_ASSERT(json_is_array(errors) && json_array_size(errors) > 0);
	json_array_foreach(errors, i, e) {
		FUZZ_ASSERT(json_is_string(json_object_get(e, key)));
		FUZZ_ASSERT(json_is_string(json_object_get(e, "reason")));
	}
	text = json_dumps(errors, 0);
	FUZZ_ASSERT(text != NULL);
	free(text);
}

/* How deep v's arrays and objects nest (0 for a scalar). */
static unsigned
depth(const json_t *v)
{
	unsigned deepest = 0, d;
	const char *key;
	json_t *e;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, e)
			if ((d = depth(e)) > deepest)
				deepest = d;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if ((d = depth(e)) > deepest)
				deepest = d;
	} else {
		return 0;
	}
	return deepest + 1;
}

/*
 * The body (len bytes) as api_post_jobs() and api_params_read() load it
 * (api_json_load_object()): a new object, or NULL.  A refusal has a
 * detail in printable ASCII; an object taken nests no deeper than
 * API_JSON_MAX_DEPTH, which the check before the parser promised.
 */
static json_t *
load_body(const char *body, size_t len)
{
	char detail[256], *p;
	json_t *json;

	memset(detail, 0, sizeof(detail));
	json = api_json_load_object(len > 0 ? body : NULL, len, "an object",
				    detail, sizeof(detail));
	if (json == NULL) {
		FUZZ_ASSERT(detail[0] != '\0');
		for (p = detail; *p != '\0'; p++)
			FUZZ_ASSERT(*p >= 0x20 && *p <= 0x7e);
		return NULL;
	}
	FUZZ_ASSERT(json_is_object(json));
	FUZZ_ASSERT(depth(json) <= API_JSON_MAX_DEPTH);
	FUZZ_ASSERT(api_json_depth(body, len) <= API_JSON_MAX_DEPTH);
	return json;
}

/* POST /jobs with body. */
static void
fuzz_post_jobs(const char *body, size_t len)
{
	struct call_spec spec;
	json_t *json, *errors = NULL;
	size_t i;
	int rc;

	if ((json = load_body(body, len)) == NULL)
		return;
	memset(&spec, 0, sizeof(spec));
	rc = api_post_read_spec(cfg, json, &spec, &errors);
	json_decref(json);
	FUZZ_ASSERT(rc == 0 || rc == 1);
	if (rc == 0) {
		FUZZ_ASSERT(errors == NULL);
		FUZZ_ASSERT(spec.njobs >= 1 &&
			    spec.njobs <= cfg->server.max_run_jobs);
		for (i = 0; i < spec.njobs; i++)
			check_values(spec.jobs[i], spec.params[i]);
	} else {
		check_errors(errors, "pointer");
	}
	for (i = 0; i < spec.njobs; i++)
		json_decref(spec.params[i]);
	json_decref(errors);
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) in place (a bad escape stays); the new length. */
static size_t
percent_decode(char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 &&
		    hex(s[i + 2]) >= 0) {
			s[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
			i += 2;
		} else {
			s[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	return o;
}

/*
 * The query string q (n bytes) into in[] from *nin, as MHD hands it to
 * api_params.c: '&'-separated, "name=value" or a bare "name",
 * percent-decoded (a value may hold a NUL).  Stops when in[] is full.
 */
static void
gather_query(char *q, size_t n, struct param_input *in, size_t *nin,
	     size_t max)
{
	char *end = q + n, *amp, *eq;

	while (q < end && *nin < max) {
		struct param_input *p = &in[*nin];

		amp = memchr(q, '&', (size_t)(end - q));
		if (amp == NULL)
			amp = end;
		eq = memchr(q, '=', (size_t)(amp - q));
		p->name = q;
		p->name_len = percent_decode(q, (size_t)((eq ? eq : amp) - q));
		p->text = eq != NULL ? eq + 1 : "";
		p->text_len = eq != NULL ?
			      percent_decode(eq + 1, (size_t)(amp - eq - 1)) : 0;
		p->json = NULL;
		p->source = PARAM_FROM_QUERY;
		if (p->name_len > 0)
			(*nin)++;
		q = amp + 1;
	}
}

/* A request to a route: target (path?query) and a JSON body. */
static void
fuzz_route(char *target, size_t tlen, const char *body, size_t blen)
{
	struct param_input in[PARAMS_INPUT_MAX + 1];
	json_t *out[CONFIG_ROUTE_JOBS_MAX], *json = NULL, *errors = NULL, *v;
	char *query = memchr(target, '?', tlen);
	const struct route *route;
	const char *key;
	size_t nin, i;
	int rc;

	if (query != NULL)
		*query++ = '\0';
	if (strlen(target) != (size_t)((query ? query - 1 : target + tlen) -
				       target))
		return;	/* a NUL in the path: MHD would not get that far */
	if ((route = config_find_route(cfg, target)) == NULL)
		return;
	nin = params_from_path(route, target, in, PARAMS_INPUT_MAX + 1);
	if (query != NULL)
		gather_query(query, (size_t)(target + tlen - query), in, &nin,
			     PARAMS_INPUT_MAX + 1);
	if (blen > 0) {
		if ((json = load_body(body, blen)) == NULL)
			return;
		json_object_foreach(json, key, v) {
			if (nin == PARAMS_INPUT_MAX + 1)
				break;
			in[nin].name = key;
			in[nin].name_len = strlen(key);
			in[nin].json = v;
			in[nin].source = PARAM_FROM_BODY;
			nin++;
		}
	}
	rc = params_resolve(route, in, nin, out, &errors);
	FUZZ_ASSERT(rc == 0 || rc == 1);
	if (rc == 0) {
		for (i = 0; i < route->njobs; i++) {
			check_values(route->jobs[i], out[i]);
			json_decref(out[i]);
		}
	} else {
		check_errors(errors, "param");
	}
	json_decref(errors);
	json_decref(json);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *field[2];
	size_t len[2];

	if (fuzz_fields(data, size, &copy, field, len, 2) == 0)
		return 0;
	if (!strcmp(field[0], "/jobs"))
		fuzz_post_jobs(field[1], len[1]);
	else
		fuzz_route(field[0], len[0], field[1], len[1]);
	free(copy);
	return 0;
}
