/*
 * fuzz_template.c - the templates of the job kinds: an exec job's argv
 * and env (exec_config.c: the command split into words, each word a
 * template) and an http job's URL, header and body (http_kind.c), parsed
 * and checked as the config loader does, then rendered with a request's
 * values, validated as a request's are (param_value_check()).
 *
 * An input is nine fields, cut at '\n' (fuzz.h): the exec command's
 * arguments (after the program, /bin/true), an env value, the url, a
 * header value, the body, then the values of the parameters s (a string),
 * raw (a string that may hold control characters), n (an int), e (an
 * enum) and b (a bool).  A value its declaration refuses is replaced by a
 * valid stand-in, so every input renders.
 *
 * Properties besides "no crash, no leak, no hang": a value never splits or
 * joins argv elements (one argument per word of the command, whatever the
 * values hold); a rendered header never holds a control character (no
 * header injection); a value in a URL hole comes out percent-encoded
 * (only RFC 3986 unreserved bytes and %XX) and decodes back to itself; a
 * value in a JSON hole comes out as JSON that parses back to the value.
 */
#include <jansson.h>
#include <stdio.h>
#ifdef HAVE_LIBCURL
#include <curl/curl.h>
#endif

#include "config.h"
#include "config_private.h"
#include "fuzz.h"
#include "kinds/exec.h"
#include "kinds/http_kind.h"
#include "kinds/kinds.h"
#include "kinds/template.h"
#include "params.h"

static const char config_text[] =
	"[job t]\n"
	"kind = sleep\n"
	"param.s = string max=256\n"
	"param.raw = string max=256 pattern=.*\n"
	"param.n = int\n"
	"param.e = enum fast|slow|x.y-z\n"
	"param.b = bool\n";

static struct config *cfg;
static const struct job_def *job;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_error err;
	char why[256];

	(void)argc;
	(void)argv;
	if (kinds_global_init(why, sizeof(why)) != 0) {
		fprintf(stderr, "fuzz_template: %s\n", why);
		abort();
	}
	cfg = config_load_buffer("fuzz_template.conf", config_text,
				 sizeof(config_text) - 1, &err);
	if (cfg == NULL) {
		fprintf(stderr, "fuzz_template: %s:%d: %s\n", err.file,
			err.line, err.text);
		abort();
	}
	job = config_find_job(cfg, "t");
	return 0;
}

enum { F_ARGS, F_ENV, F_URL, F_HEADER, F_BODY, F_VALUES, NFIELDS = F_VALUES + 5 };

/*
 * The job's values: field text for each declared parameter, checked as
 * a query argument is; a refused one becomes a valid stand-in.  A new
 * object.
 */
static json_t *
make_params(char **field, const size_t *len)
{
	static const char *const stand_in[] = { "x", "x", "1", "fast", "yes" };
	json_t *o = json_object(), *v;
	struct param_input in;
	char why[256];
	size_t i;

	FUZZ_ASSERT(o != NULL && job->nparams == 5);
	for (i = 0; i < job->nparams; i++) {
		memset(&in, 0, sizeof(in));
		in.name = job->params[i].name;
		in.name_len = strlen(in.name);
		in.text = field[F_VALUES + i];
		in.text_len = len[F_VALUES + i];
		in.source = PARAM_FROM_QUERY;
		if (param_value_check(&job->params[i], &in, &v, why,
				      sizeof(why)) != 0) {
			in.text = stand_in[i];
			in.text_len = strlen(stand_in[i]);
			FUZZ_ASSERT(param_value_check(&job->params[i], &in, &v,
						      why, sizeof(why)) == 0);
		}
		FUZZ_ASSERT(json_object_set_new(o, in.name, v) == 0);
	}
	return o;
}

/* A job definition of kind `kind` with t's parameters, no settings. */
static struct job_def
bare_job(const struct job_kind *kind)
{
	struct job_def def;

	memset(&def, 0, sizeof(def));
	def.name = (char *)"t";
	def.kind = kind;
	def.nparams = job->nparams;
	def.params = job->params;
	return def;
}

/* Config text as the loader lets it through to a kind (no control char). */
static bool
config_value_ok(const char *s, size_t len)
{
	return strlen(s) == len && config_text_problem(s) == NULL;
}

/* The exec job: one argv element per word, whatever the values. */
static void
fuzz_exec(char **field, const size_t *len, const json_t *params)
{
	struct job_def def = bare_job(&job_kind_exec);
	char command[4200], why[512], **argv = NULL, **envp = NULL;
	const struct exec_def *ed;
	size_t i;

	if (!config_value_ok(field[F_ARGS], len[F_ARGS]) ||
	    !config_value_ok(field[F_ENV], len[F_ENV]) ||
	    len[F_ARGS] > 4000)
		return;
	snprintf(command, sizeof(command), "/bin/true %s", field[F_ARGS]);
	if (job_kind_exec.parse(&def, "command", command, why, sizeof(why)) ||
	    job_kind_exec.parse(&def, "env.FUZZ", field[F_ENV], why,
				sizeof(why)) ||
	    job_kind_exec.check(&def, why, sizeof(why)))
		goto out;
	ed = def.kind_data;
	FUZZ_ASSERT(exec_render(ed, params, &argv, &envp) == 0);
	for (i = 0; argv[i] != NULL; i++)
		if (!strcmp(ed->words[i], "{s}"))
			FUZZ_ASSERT(!strcmp(argv[i], json_string_value(
				json_object_get(params, "s"))));
	FUZZ_ASSERT(i == ed->nwords);
	FUZZ_ASSERT(!strcmp(argv[0], "/bin/true"));
	FUZZ_ASSERT(envp[0] != NULL && !strncmp(envp[0], "FUZZ=", 5) &&
		    envp[1] == NULL);
	exec_words_free(argv);
	exec_words_free(envp);
out:
	job_kind_exec.free(def.kind_data);
}

#ifdef HAVE_LIBCURL
/* The http job: no header line holds a control character. */
static void
fuzz_http(char **field, const size_t *len, const json_t *params)
{
	struct job_def def = bare_job(&job_kind_http);
	struct http_request req;
	struct curl_slist *l;
	char why[512];
	const char *s;

	if (!config_value_ok(field[F_URL], len[F_URL]) ||
	    !config_value_ok(field[F_HEADER], len[F_HEADER]) ||
	    !config_value_ok(field[F_BODY], len[F_BODY]))
		return;
	if (job_kind_http.parse(&def, "url", field[F_URL], why, sizeof(why)) ||
	    job_kind_http.parse(&def, "header.X-Fuzz", field[F_HEADER], why,
				sizeof(why)) ||
	    (len[F_BODY] > 0 &&
	     (job_kind_http.parse(&def, "method", "POST", why, sizeof(why)) ||
	      job_kind_http.parse(&def, "body", field[F_BODY], why,
				  sizeof(why)))) ||
	    job_kind_http.check(&def, why, sizeof(why)))
		goto out;
	if (http_request_render(def.kind_data, params, &req, why,
				sizeof(why)) == 0) {
		FUZZ_ASSERT(req.url != NULL);
		for (l = (struct curl_slist *)req.headers; l; l = l->next)
			for (s = l->data; *s != '\0'; s++)
				FUZZ_ASSERT((unsigned char)*s >= 0x20 ||
					    *s == '\t');
		FUZZ_ASSERT(req.body == NULL ||
			    strlen(req.body) == req.body_len);
		http_request_clear(&req);
	}
out:
	job_kind_http.free(def.kind_data);
}
#else
/* Built without libcurl, the http kind refuses every job at load. */
static void
fuzz_http(char **field, const size_t *len, const json_t *params)
{
	(void)field;
	(void)len;
	(void)params;
}
#endif

static int
unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Each value alone in a URL hole and in a JSON hole round-trips. */
static void
fuzz_escapes(const json_t *params)
{
	struct template *t;
	const char *name;
	char why[256], *out, *o;
	json_t *v, *back;
	size_t i, n;

	json_object_foreach((json_t *)params, name, v) {
		char text[80];

		snprintf(text, sizeof(text), "{%s}", name);
		t = template_parse(text, job, why, sizeof(why));
		FUZZ_ASSERT(t != NULL && template_has_holes(t));
		out = template_render(t, params, TEMPLATE_JSON, &n);
		FUZZ_ASSERT(out != NULL && strlen(out) == n);
		back = json_loads(out, JSON_DECODE_ANY, NULL);
		FUZZ_ASSERT(back != NULL && json_equal(back, v));
		json_decref(back);
		free(out);
		if (json_is_string(v)) {
			out = template_render(t, params, TEMPLATE_URL, &n);
			FUZZ_ASSERT(out != NULL);
			for (i = 0, o = out; i < n; i++) {
				if (out[i] == '%') {
					FUZZ_ASSERT(i + 2 < n);
					FUZZ_ASSERT(unhex(out[i + 1]) >= 0 &&
						    unhex(out[i + 2]) >= 0);
					*o++ = (char)(unhex(out[i + 1]) * 16 +
						      unhex(out[i + 2]));
					i += 2;
				} else {
					FUZZ_ASSERT(strchr("-._~", out[i]) ||
						    (out[i] >= '0' && out[i] <= '9') ||
						    (out[i] >= 'A' && out[i] <= 'Z') ||
						    (out[i] >= 'a' && out[i] <= 'z'));
					*o++ = out[i];
				}
			}
			FUZZ_ASSERT((size_t)(o - out) == json_string_length(v) &&
				    !memcmp(out, json_string_value(v),
					    json_string_length(v)));
			free(out);
		}
		template_free(t);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *field[NFIELDS];
	size_t len[NFIELDS];
	json_t *params;

	if (fuzz_fields(data, size, &copy, field, len, NFIELDS) == 0)
		return 0;
	params = make_params(field, len);
	fuzz_exec(field, len, params);
	fuzz_http(field, len, params);
	fuzz_escapes(params);
	json_decref(params);
	free(copy);
	return 0;
}
