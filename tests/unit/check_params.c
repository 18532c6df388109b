/*
 * check_params.c - a request's parameter values against the declared
 * ones (params.h): each type and option, each refusal and its reason,
 * and how a route's jobs share a request's values.
 *
 * The declarations come from a real config file, loaded once per test,
 * so that what is checked is what the daemon checks.  Values are given as
 * the API gathers them: text (query, path) or JSON values (a body).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_json.h"
#include "config.h"
#include "params.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char config_text[] =
	"[job greet]\n"
	"kind = sleep\n"
	"param.name = string max=32 pattern=[A-Za-z ]+\n"
	"param.times = int min=1 max=5 default=1\n"
	"param.mode = enum fast|slow default=fast\n"
	"param.verbose = bool default=false\n"
	"param.token = string secret default=t\n"
	"[job free]\n"
	"kind = sleep\n"
	"param.text = string max=8 default=x\n"
	"param.n = int default=0\n"
	"param.times = string default=one\n"
	"[job pat]\n"
	"kind = sleep\n"
	"param.alt = string default=ab pattern=ab|cd\n"
	"param.flag = string default=-v pattern=-[a-z]+\n"
	"[job plain]\n"
	"kind = sleep\n"
	"[route /greet]\n"
	"jobs = greet\n"
	"[route /both]\n"
	"jobs = greet free\n"
	"[route /free/{text}]\n"
	"jobs = free\n"
	"[route /plain]\n"
	"jobs = plain\n";

static char path[64];
static struct config *cfg;

static void
setup(void)
{
	struct config_error err;
	const char *tmp = getenv("TMPDIR");
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "%s/check_params.XXXXXX",
		 tmp != NULL && *tmp != '\0' && strlen(tmp) < 32 ? tmp :
		 "/tmp");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_eq(fputs(config_text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	cfg = config_load(path, &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
}

static void
teardown(void)
{
	config_unref(cfg);
	unlink(path);
}

static const struct param_decl *
decl(const char *job, const char *name)
{
	const struct param_decl *d =
		config_job_param(config_find_job(cfg, job), name);

	ck_assert_ptr_nonnull(d);
	return d;
}

static struct param_input
text_len(const char *name, const char *text, size_t len)
{
	struct param_input in = {
		name, strlen(name), text, len, NULL, PARAM_FROM_QUERY,
	};

	return in;
}

static struct param_input
text(const char *name, const char *value)
{
	return text_len(name, value, strlen(value));
}

static struct param_input
jvalue(const char *name, const json_t *v)
{
	struct param_input in = {
		name, strlen(name), NULL, 0, v, PARAM_FROM_BODY,
	};

	return in;
}

/* Checks in against job's declaration of its name; the reason on a "no". */
static const char *
refusal(const char *job, struct param_input in)
{
	static char why[160];
	json_t *out = (json_t *)1;

	ck_assert_int_eq(param_value_check(decl(job, in.name), &in, &out, why,
					   sizeof(why)), 1);
	ck_assert_ptr_null(out);
	return why;
}

/* Checks in against job's declaration; the typed value, as JSON text. */
static char *
accepted(const char *job, struct param_input in)
{
	char why[160] = "";
	json_t *out = NULL;
	char *s;

	ck_assert_msg(param_value_check(decl(job, in.name), &in, &out, why,
					sizeof(why)) == 0, "refused: %s", why);
	s = json_dumps(out, JSON_ENCODE_ANY);
	json_decref(out);
	ck_assert_ptr_nonnull(s);
	return s;
}

#define ck_accepts(job, in, json) do {					\
	char *got_ = accepted((job), (in));				\
	ck_assert_str_eq(got_, (json));					\
	free(got_);							\
} while (0)

#define ck_refuses(job, in, reason)					\
	ck_assert_str_eq(refusal((job), (in)), (reason))

/* ---- strings ----------------------------------------------------------------- */

START_TEST(test_string_up_to_max_bytes_is_taken_as_a_json_string)
{
	ck_accepts("free", text("text", "abcdefgh"), "\"abcdefgh\"");
	ck_accepts("free", text("text", ""), "\"\"");
}
END_TEST

START_TEST(test_string_over_max_bytes_is_refused)
{
	ck_refuses("free", text("text", "abcdefghi"),
		   "is longer than 8 bytes");
}
END_TEST

START_TEST(test_string_max_counts_bytes_not_characters)
{
	ck_accepts("free", text("text", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
		   "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"");
	ck_refuses("free", text("text", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9z"),
		   "is longer than 8 bytes");
}
END_TEST

static const char *const not_utf8[] = {
	"\xff", "a\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
	"\xf4\x90\x80\x80", "\x80",
};

START_TEST(test_string_that_is_not_utf8_is_refused)
{
	ck_refuses("free", text("text", not_utf8[_i]), "is not valid UTF-8");
}
END_TEST

START_TEST(test_string_without_pattern_may_not_start_with_a_dash)
{
	ck_refuses("free", text("text", "-rf"), "may not start with '-'");
	ck_accepts("free", text("text", "a-b"), "\"a-b\"");
}
END_TEST

static const char *const with_control[] = {
	"a\nb", "a\rb", "\tx", "x\x1b", "x\x7f", "x\xc2\x85",
};

START_TEST(test_string_without_pattern_may_not_hold_control_characters)
{
	ck_refuses("free", text("text", with_control[_i]),
		   "may not hold control characters");
}
END_TEST

START_TEST(test_string_with_a_nul_byte_is_refused_with_or_without_pattern)
{
	ck_refuses("free", text_len("text", "a\0b", 3),
		   "may not hold a NUL character");
	ck_refuses("pat", text_len("alt", "ab\0", 3),
		   "may not hold a NUL character");
}
END_TEST

START_TEST(test_pattern_must_match_the_whole_value)
{
	ck_accepts("greet", text("name", "Ann Lee"), "\"Ann Lee\"");
	ck_refuses("greet", text("name", "Ann1"),
		   "does not match the pattern [A-Za-z ]+");
	ck_refuses("greet", text("name", "1Ann"),
		   "does not match the pattern [A-Za-z ]+");
	ck_refuses("greet", text("name", ""),
		   "does not match the pattern [A-Za-z ]+");
}
END_TEST

START_TEST(test_pattern_alternatives_are_anchored_as_a_group)
{
	ck_accepts("pat", text("alt", "cd"), "\"cd\"");
	ck_refuses("pat", text("alt", "abcd"),
		   "does not match the pattern ab|cd");
	ck_refuses("pat", text("alt", "abd"),
		   "does not match the pattern ab|cd");
}
END_TEST

START_TEST(test_pattern_may_allow_a_leading_dash)
{
	ck_accepts("pat", text("flag", "-v"), "\"-v\"");
}
END_TEST

START_TEST(test_string_from_json_must_be_a_json_string)
{
	json_t *s = json_string("hi"), *n = json_integer(3);

	ck_accepts("free", jvalue("text", s), "\"hi\"");
	ck_refuses("free", jvalue("text", n), "must be a string");
	json_decref(s);
	json_decref(n);
}
END_TEST

START_TEST(test_json_string_with_a_nul_is_refused)
{
	json_t *s = json_stringn("a\0b", 3);

	ck_refuses("free", jvalue("text", s), "may not hold a NUL character");
	json_decref(s);
}
END_TEST

/* ---- ints -------------------------------------------------------------------- */

START_TEST(test_int_in_range_is_taken_as_a_json_integer)
{
	ck_accepts("greet", text("times", "1"), "1");
	ck_accepts("greet", text("times", "5"), "5");
	ck_accepts("greet", text("times", "003"), "3");
}
END_TEST

START_TEST(test_int_outside_min_and_max_is_refused)
{
	ck_refuses("greet", text("times", "0"),
		   "must be an integer from 1 to 5");
	ck_refuses("greet", text("times", "6"),
		   "must be an integer from 1 to 5");
	ck_refuses("greet", text("times", "-1"),
		   "must be an integer from 1 to 5");
}
END_TEST

static const char *const not_decimal[] = {
	"", "-", "abc", "1.5", "1e3", "0x10", "+1", " 1", "1 ", "--1", "1-",
};

START_TEST(test_int_that_is_not_decimal_text_is_refused)
{
	ck_refuses("greet", text("times", not_decimal[_i]),
		   "must be a decimal integer");
}
END_TEST

START_TEST(test_int_without_bounds_takes_the_64_bit_range)
{
	ck_accepts("free", text("n", "-9223372036854775808"),
		   "-9223372036854775808");
	ck_accepts("free", text("n", "9223372036854775807"),
		   "9223372036854775807");
}
END_TEST

START_TEST(test_int_overflow_is_refused_as_out_of_range)
{
	const char *range = "must be an integer from -9223372036854775808 "
			    "to 9223372036854775807";

	ck_refuses("free", text("n", "9223372036854775808"), range);
	ck_refuses("free", text("n", "-9223372036854775809"), range);
	ck_refuses("free", text("n", "123456789012345678901234567890123"),
		   range);
	ck_refuses("greet", text("times", "99999999999999999999"),
		   "must be an integer from 1 to 5");
}
END_TEST

START_TEST(test_int_from_json_must_be_a_json_integer)
{
	json_t *i = json_integer(4), *r = json_real(4.0);
	json_t *s = json_string("4"), *b = json_true();

	ck_accepts("greet", jvalue("times", i), "4");
	ck_refuses("greet", jvalue("times", r),
		   "must be an integer from 1 to 5");
	ck_refuses("greet", jvalue("times", s),
		   "must be an integer from 1 to 5");
	ck_refuses("greet", jvalue("times", b),
		   "must be an integer from 1 to 5");
	json_decref(i);
	json_decref(r);
	json_decref(s);
	json_decref(b);
}
END_TEST

START_TEST(test_json_integer_outside_the_bounds_is_refused)
{
	json_t *i = json_integer(6);

	ck_refuses("greet", jvalue("times", i),
		   "must be an integer from 1 to 5");
	json_decref(i);
}
END_TEST

/* ---- enums and bools ----------------------------------------------------------- */

START_TEST(test_enum_takes_one_of_its_choices_exactly)
{
	json_t *s = json_string("fast"), *n = json_integer(1);

	ck_accepts("greet", text("mode", "slow"), "\"slow\"");
	ck_accepts("greet", jvalue("mode", s), "\"fast\"");
	ck_refuses("greet", text("mode", "SLOW"), "must be one of fast, slow");
	ck_refuses("greet", text("mode", "slo"), "must be one of fast, slow");
	ck_refuses("greet", text("mode", ""), "must be one of fast, slow");
	ck_refuses("greet", jvalue("mode", n), "must be one of fast, slow");
	json_decref(s);
	json_decref(n);
}
END_TEST

static const struct { const char *text, *json; } bool_texts[] = {
	{ "true", "true" }, { "1", "true" }, { "yes", "true" },
	{ "false", "false" }, { "0", "false" }, { "no", "false" },
};

START_TEST(test_bool_takes_true_false_1_0_yes_no_as_text)
{
	ck_accepts("greet", text("verbose", bool_texts[_i].text),
		   bool_texts[_i].json);
}
END_TEST

static const char *const not_bool[] = { "", "TRUE", "on", "2", "y", "truee" };

START_TEST(test_bool_refuses_other_text)
{
	ck_refuses("greet", text("verbose", not_bool[_i]),
		   "must be true, false, 1, 0, yes or no");
}
END_TEST

START_TEST(test_bool_from_json_must_be_a_json_boolean)
{
	json_t *t = json_true(), *f = json_false();
	json_t *s = json_string("true"), *n = json_integer(1);

	ck_accepts("greet", jvalue("verbose", t), "true");
	ck_accepts("greet", jvalue("verbose", f), "false");
	ck_refuses("greet", jvalue("verbose", s), "must be true or false");
	ck_refuses("greet", jvalue("verbose", n), "must be true or false");
	json_decref(t);
	json_decref(f);
	json_decref(s);
	json_decref(n);
}
END_TEST

/* ---- a request: params_resolve() ------------------------------------------------- */

static const struct route *
route(const char *p)
{
	const struct route *r = config_find_route(cfg, p);

	ck_assert_ptr_nonnull(r);
	return r;
}

/* Expects a refusal; returns the errors as compact JSON text (freed by
 * the caller). */
static char *
resolve_refused(const char *rpath, const struct param_input *in, size_t n)
{
	json_t *out[CONFIG_ROUTE_JOBS_MAX] = { NULL }, *errors = NULL;
	char *s;

	ck_assert_int_eq(params_resolve(route(rpath), in, n, out, &errors), 1);
	ck_assert_ptr_null(out[0]);
	s = json_dumps(errors, JSON_COMPACT);
	json_decref(errors);
	return s;
}

#define ck_resolve_refuses(rpath, in, n, json) do {			\
	char *got_ = resolve_refused((rpath), (in), (n));		\
	ck_assert_str_eq(got_, (json));					\
	free(got_);							\
} while (0)

/* Expects success; checks job i's object against the JSON text want. */
static void
resolve_ok(const char *rpath, const struct param_input *in, size_t n,
	   const char *const *want)
{
	const struct route *r = route(rpath);
	json_t *out[CONFIG_ROUTE_JOBS_MAX], *errors = NULL, *w;
	size_t i;

	ck_assert_int_eq(params_resolve(r, in, n, out, &errors), 0);
	for (i = 0; i < r->njobs; i++) {
		char *got;

		if (want[i] == NULL) {	/* a job without parameters */
			ck_assert_ptr_null(out[i]);
			continue;
		}
		got = json_dumps(out[i], JSON_COMPACT | JSON_SORT_KEYS);

		w = json_loads(want[i], 0, NULL);
		ck_assert_msg(json_equal(out[i], w), "job %zu: %s", i, got);
		free(got);
		json_decref(w);
		json_decref(out[i]);
	}
}

START_TEST(test_defaults_fill_every_declared_parameter_with_its_type)
{
	struct param_input in[] = { text("name", "Ann") };
	const char *want[] = {
		"{\"name\": \"Ann\", \"times\": 1, \"mode\": \"fast\", "
		"\"verbose\": false, \"token\": \"t\"}",
	};

	resolve_ok("/greet", in, NELEMS(in), want);
}
END_TEST

START_TEST(test_each_job_takes_the_values_it_declares_in_its_own_type)
{
	struct param_input in[] = {
		text("name", "Ann"), text("times", "2"), text("text", "hi"),
	};
	const char *want[] = {
		"{\"name\": \"Ann\", \"times\": 2, \"mode\": \"fast\", "
		"\"verbose\": false, \"token\": \"t\"}",
		"{\"text\": \"hi\", \"n\": 0, \"times\": \"2\"}",
	};

	resolve_ok("/both", in, NELEMS(in), want);
}
END_TEST

/* No object for a job that declares nothing: job_new() shares one. */
START_TEST(test_route_without_declarations_gives_no_objects)
{
	const char *want[] = { NULL };

	resolve_ok("/plain", NULL, 0, want);
}
END_TEST

START_TEST(test_parameter_no_job_declares_is_refused)
{
	struct param_input in[] = { text("name", "Ann"), text("text", "x") };

	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"text\",\"reason\":\"is not declared by any job "
		"of this route\"}]");
}
END_TEST

START_TEST(test_missing_required_parameter_is_refused)
{
	ck_resolve_refuses("/greet", NULL, 0,
		"[{\"param\":\"name\",\"reason\":\"is required\"}]");
}
END_TEST

START_TEST(test_same_name_twice_is_refused_naming_both_sources)
{
	json_t *v = json_string("Bo");
	struct param_input in[] = { text("name", "Ann"), jvalue("name", v) };

	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"name\",\"reason\":\"is given more than once "
		"(query and body)\"}]");
	json_decref(v);
}
END_TEST

START_TEST(test_same_name_three_times_is_one_error)
{
	struct param_input in[] = {
		text("name", "A"), text("name", "B"), text("name", "C"),
	};

	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"name\",\"reason\":\"is given more than once "
		"(query and query)\"}]");
}
END_TEST

START_TEST(test_path_value_and_query_value_of_one_name_are_refused)
{
	struct param_input in[2];

	ck_assert_uint_eq(params_from_path(route("/free/x"), "/free/x", in,
					   1), 1);
	in[1] = text("text", "y");
	ck_resolve_refuses("/free/x", in, NELEMS(in),
		"[{\"param\":\"text\",\"reason\":\"is given more than once "
		"(path and query)\"}]");
}
END_TEST

START_TEST(test_every_refusal_is_listed_in_the_order_found)
{
	struct param_input in[] = {
		text("times", "9"), text("x", "1"), text("mode", "no"),
	};

	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"times\",\"reason\":\"must be an integer from 1 "
		"to 5\"},{\"param\":\"x\",\"reason\":\"is not declared by any "
		"job of this route\"},{\"param\":\"mode\",\"reason\":\"must be "
		"one of fast, slow\"},{\"param\":\"name\",\"reason\":\"is "
		"required\"}]");
}
END_TEST

START_TEST(test_value_one_job_refuses_is_refused_even_if_another_takes_it)
{
	struct param_input in[] = { text("name", "Ann"), text("times", "two") };

	ck_resolve_refuses("/both", in, NELEMS(in),
		"[{\"param\":\"times\",\"reason\":\"must be a decimal "
		"integer\"}]");
}
END_TEST

START_TEST(test_names_in_errors_are_printable_and_cut)
{
	char long_name[101];
	struct param_input in[2];

	memset(long_name, 'x', 100);
	long_name[100] = '\0';
	in[0] = text_len("a\x01\xff", "1", 1);
	in[1] = text(long_name, "1");
	ck_resolve_refuses("/plain", in, NELEMS(in),
		"[{\"param\":\"a??\",\"reason\":\"is not declared by any job "
		"of this route\"},{\"param\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\",\"reason\":\"is not "
		"declared by any job of this route\"}]");
}
END_TEST

START_TEST(test_name_with_a_nul_inside_is_not_a_declared_one)
{
	struct param_input in[] = { text_len("name", "Ann", 3) };

	in[0].name = "name\0x";
	in[0].name_len = 6;
	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"name?x\",\"reason\":\"is not declared by any "
		"job of this route\"},{\"param\":\"name\",\"reason\":\"is "
		"required\"}]");
}
END_TEST

START_TEST(test_more_values_than_the_limit_are_refused_at_the_first_past_it)
{
	struct param_input in[PARAMS_INPUT_MAX + 1];
	size_t i;

	for (i = 0; i < NELEMS(in); i++)
		in[i] = text(i == PARAMS_INPUT_MAX ? "last" : "name", "Ann");
	ck_resolve_refuses("/greet", in, NELEMS(in),
		"[{\"param\":\"last\",\"reason\":\"is past the 256 values a "
		"request may hold\"}]");
}
END_TEST

START_TEST(test_path_segments_become_values_named_by_the_route)
{
	struct param_input in[2];
	const char *want[] = { "{\"text\": \"hi\", \"n\": 0, \"times\": \"one\"}" };

	ck_assert_uint_eq(params_from_path(route("/free/hi"), "/free/hi", in,
					   NELEMS(in)), 1);
	ck_assert_uint_eq(in[0].name_len, 4);
	ck_assert_int_eq(memcmp(in[0].name, "text", 4), 0);
	ck_assert_uint_eq(in[0].text_len, 2);
	ck_assert_int_eq(in[0].source, PARAM_FROM_PATH);
	resolve_ok("/free/hi", in, 1, want);
}
END_TEST

START_TEST(test_redacted_copy_shows_secrets_as_stars_and_leaves_the_original)
{
	const struct job_def *def = config_find_job(cfg, "greet");
	json_t *p = json_pack("{s:s, s:s, s:i}", "name", "Ann", "token", "s3",
			      "times", 2);
	json_t *r = params_redacted(def, p);

	ck_assert_str_eq(json_string_value(json_object_get(r, "token")), "***");
	ck_assert_str_eq(json_string_value(json_object_get(r, "name")), "Ann");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "times")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(p, "token")), "s3");
	json_decref(r);
	json_decref(p);
}
END_TEST

/* ---- names ----------------------------------------------------------------------- */

START_TEST(test_names_are_1_to_64_of_letters_digits_and_underscores)
{
	ck_assert(param_name_valid("a_Z9", 4));
	ck_assert(param_name_valid("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				   "xxxxxxxxxxxxxxxxxxxxxxxx", 64));
	ck_assert(!param_name_valid("", 0));
	ck_assert(!param_name_valid("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				    "xxxxxxxxxxxxxxxxxxxxxxxxx", 65));
	ck_assert(!param_name_valid("a-b", 3));
	ck_assert(!param_name_valid("a.b", 3));
	ck_assert(!param_name_valid("a\0b", 3));
}
END_TEST

/* The bound on nesting that request bodies are held to (api_json.h). */
START_TEST(test_json_depth_counts_brackets_outside_strings)
{
	static const char deep[] = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]";
	static const char nested[] = "{\"a\": [1, {}]}";
	static const char quoted[] = "{\"[[[\": \"\\\"[\"}";

	ck_assert_uint_eq(api_json_depth("42", 2), 0);
	ck_assert_uint_eq(api_json_depth(nested, strlen(nested)), 3);
	ck_assert_uint_eq(api_json_depth(quoted, strlen(quoted)), 1);
	ck_assert_uint_eq(api_json_depth("[][][]", 6), 1);
	ck_assert_uint_eq(api_json_depth(deep, strlen(deep)),
			  API_JSON_MAX_DEPTH + 1);
	ck_assert_uint_eq(api_json_depth("]]]}", 4), 0);
	ck_assert_uint_eq(api_json_depth(NULL, 0), 0);
}
END_TEST

/* The loader of every JSON body (POST /jobs, a route's parameters). */
START_TEST(test_json_body_loader_refuses_deep_duplicate_and_non_objects)
{
	static const char deep[] = "{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}";
	static const char dup[] = "{\"a\": 1, \"a\": 2}";
	static const char bad_utf8[] = "{\"a\": \"\xff\"}";
	char detail[256];
	json_t *v;

	ck_assert_ptr_null(api_json_load_object(deep, strlen(deep), "X",
						detail, sizeof(detail)));
	ck_assert_str_eq(detail, "the body nests arrays and objects deeper "
			 "than " API_JSON_DEPTH_TEXT);
	ck_assert_ptr_null(api_json_load_object(dup, strlen(dup), "X",
						detail, sizeof(detail)));
	ck_assert_msg(!strncmp(detail, "the body is not valid JSON: duplicate",
			       37), "%s", detail);
	ck_assert_ptr_null(api_json_load_object("42", 2, "an object of X",
						detail, sizeof(detail)));
	ck_assert_str_eq(detail, "the body must be an object of X");
	ck_assert_ptr_null(api_json_load_object(NULL, 0, "X", detail,
						sizeof(detail)));
	ck_assert_ptr_null(api_json_load_object(bad_utf8, strlen(bad_utf8),
						"X", detail, sizeof(detail)));
	for (const char *p = detail; *p != '\0'; p++)
		ck_assert(*p >= 0x20 && *p <= 0x7e);
	v = api_json_load_object(deep + 5, strlen(deep) - 6, "X", detail,
				 sizeof(detail));
	ck_assert_ptr_null(v);	/* an array: 16 deep, but not an object */
	v = api_json_load_object("{\"a\": [1]}", 10, "X", detail,
				 sizeof(detail));
	ck_assert(json_is_object(v));
	json_decref(v);
}
END_TEST

static Suite *
params_suite(void)
{
	Suite *s = suite_create("params");
	TCase *tc = tcase_create("values");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_depth_counts_brackets_outside_strings);
	tcase_add_test(tc, test_json_body_loader_refuses_deep_duplicate_and_non_objects);
	tcase_add_test(tc, test_string_up_to_max_bytes_is_taken_as_a_json_string);
	tcase_add_test(tc, test_string_over_max_bytes_is_refused);
	tcase_add_test(tc, test_string_max_counts_bytes_not_characters);
	tcase_add_loop_test(tc, test_string_that_is_not_utf8_is_refused, 0,
			    NELEMS(not_utf8));
	tcase_add_test(tc, test_string_without_pattern_may_not_start_with_a_dash);
	tcase_add_loop_test(tc, test_string_without_pattern_may_not_hold_control_characters,
			    0, NELEMS(with_control));
	tcase_add_test(tc, test_string_with_a_nul_byte_is_refused_with_or_without_pattern);
	tcase_add_test(tc, test_pattern_must_match_the_whole_value);
	tcase_add_test(tc, test_pattern_alternatives_are_anchored_as_a_group);
	tcase_add_test(tc, test_pattern_may_allow_a_leading_dash);
	tcase_add_test(tc, test_string_from_json_must_be_a_json_string);
	tcase_add_test(tc, test_json_string_with_a_nul_is_refused);
	tcase_add_test(tc, test_int_in_range_is_taken_as_a_json_integer);
	tcase_add_test(tc, test_int_outside_min_and_max_is_refused);
	tcase_add_loop_test(tc, test_int_that_is_not_decimal_text_is_refused,
			    0, NELEMS(not_decimal));
	tcase_add_test(tc, test_int_without_bounds_takes_the_64_bit_range);
	tcase_add_test(tc, test_int_overflow_is_refused_as_out_of_range);
	tcase_add_test(tc, test_int_from_json_must_be_a_json_integer);
	tcase_add_test(tc, test_json_integer_outside_the_bounds_is_refused);
	tcase_add_test(tc, test_enum_takes_one_of_its_choices_exactly);
	tcase_add_loop_test(tc, test_bool_takes_true_false_1_0_yes_no_as_text,
			    0, NELEMS(bool_texts));
	tcase_add_loop_test(tc, test_bool_refuses_other_text, 0,
			    NELEMS(not_bool));
	tcase_add_test(tc, test_bool_from_json_must_be_a_json_boolean);
	suite_add_tcase(s, tc);

	tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_fill_every_declared_parameter_with_its_type);
	tcase_add_test(tc, test_each_job_takes_the_values_it_declares_in_its_own_type);
	tcase_add_test(tc, test_route_without_declarations_gives_no_objects);
	tcase_add_test(tc, test_parameter_no_job_declares_is_refused);
	tcase_add_test(tc, test_missing_required_parameter_is_refused);
	tcase_add_test(tc, test_same_name_twice_is_refused_naming_both_sources);
	tcase_add_test(tc, test_same_name_three_times_is_one_error);
	tcase_add_test(tc, test_path_value_and_query_value_of_one_name_are_refused);
	tcase_add_test(tc, test_every_refusal_is_listed_in_the_order_found);
	tcase_add_test(tc, test_value_one_job_refuses_is_refused_even_if_another_takes_it);
	tcase_add_test(tc, test_names_in_errors_are_printable_and_cut);
	tcase_add_test(tc, test_name_with_a_nul_inside_is_not_a_declared_one);
	tcase_add_test(tc, test_more_values_than_the_limit_are_refused_at_the_first_past_it);
	tcase_add_test(tc, test_path_segments_become_values_named_by_the_route);
	tcase_add_test(tc, test_redacted_copy_shows_secrets_as_stars_and_leaves_the_original);
	tcase_add_test(tc, test_names_are_1_to_64_of_letters_digits_and_underscores);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(params_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
