/*
 * check_api_openapi.c - the OpenAPI document of a config (api_openapi.h):
 * the template loads, each declaration becomes the JSON Schema that says
 * what the daemon takes, a pattern goes into `pattern` only where ECMA-262
 * reads it as the daemon does, and the same config gives the same
 * document.  It also prints what a document costs to build and serialize
 * with the shipped config (the reason it is built per request).
 *
 * tests/system/test_openapi.py checks the served document and runs a real
 * OpenAPI validator on it.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_openapi.h"
#include "config.h"
#include "http.h"

#ifndef TEST_BUILDDIR
#error "TEST_BUILDDIR must name the build tree (see Makefile.am)"
#endif

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SHIPPED TEST_BUILDDIR "/etc/taskpoold.conf"

static char tmp_path[PATH_MAX];	/* $TMPDIR may be long */

/* Loads text as a config from a temporary file; fails if refused. */
static struct config *
load(const char *text)
{
	struct config_error err;
	struct config *c;
	const char *tmp = getenv("TMPDIR");
	FILE *fp;
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "%s/check_api_openapi.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	c = config_load(tmp_path, &err);
	unlink(tmp_path);
	ck_assert_msg(c != NULL, "refused: line %d: %s\n%s", err.line,
		      err.text, text);
	return c;
}

/* The document of a config text: a new object. */
static json_t *
document_of(const char *text)
{
	struct config *c = load(text);
	json_t *doc = api_openapi_document(c);

	config_unref(c);
	ck_assert_ptr_nonnull(doc);
	return doc;
}

/* doc.paths[path][method].parameters[i].schema, borrowed. */
static json_t *
param_schema(json_t *doc, const char *path, const char *method, size_t i)
{
	json_t *op = json_object_get(json_object_get(json_object_get(doc,
		"paths"), path), method);

	return json_object_get(json_array_get(json_object_get(op,
		"parameters"), i), "schema");
}

/* ---- the template and the document ------------------------------------- */

START_TEST(test_template_loads_and_the_version_is_filled_in)
{
	json_t *doc = document_of("");

	ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")),
			 "3.1.0");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
		doc, "info"), "version")), PACKAGE_VERSION);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(doc, "paths"),
					      "/healthz"));
	json_decref(doc);
}
END_TEST

START_TEST(test_the_same_config_gives_the_same_document)
{
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	json_t *a, *b;

	ck_assert_msg(c != NULL, "%s:%d: %s", err.file, err.line, err.text);
	a = api_openapi_document(c);
	b = api_openapi_document(c);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert(a != b);
	ck_assert(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	config_unref(c);
}
END_TEST

/* Not a test of speed: it prints the cost that decided for no cache. */
START_TEST(test_cost_of_a_document_with_the_shipped_config)
{
	enum { ROUNDS = 200 };
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	struct timespec t0, t1;
	size_t len = 0;
	double us;
	int i;

	ck_assert_msg(c != NULL, "%s:%d: %s", err.file, err.line, err.text);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < ROUNDS; i++) {
		char *body = http_json_dump(api_openapi_document(c), &len);

		ck_assert_ptr_nonnull(body);
		free(body);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	      (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / ROUNDS;
	printf("openapi: the shipped config's document (%zu bytes) built and "
	       "serialized in %.0f us\n", len, us);
	config_unref(c);
}
END_TEST

/* ---- declarations as JSON Schema ----------------------------------------- */

START_TEST(test_each_type_becomes_its_schema)
{
	json_t *doc = document_of(
		"[job a]\nkind = sleep\n"
		"param.n = int min=-2 max=9 default=3\n"
		"param.m = enum x|y\n"
		"param.b = bool default=yes\n"
		"param.s = string max=8\n"
		"[route /r]\njobs = a\n");
	json_t *want;

	want = json_pack("{s:s, s:s, s:i, s:i, s:i}", "type", "integer",
			 "format", "int64", "minimum", -2, "maximum", 9,
			 "default", 3);
	ck_assert(json_equal(param_schema(doc, "/r", "get", 0), want));
	json_decref(want);
	want = json_pack("{s:s, s:[s,s]}", "type", "string", "enum", "x",
			 "y");
	ck_assert(json_equal(param_schema(doc, "/r", "get", 1), want));
	json_decref(want);
	want = json_pack("{s:s, s:b}", "type", "boolean", "default", 1);
	ck_assert(json_equal(param_schema(doc, "/r", "get", 2), want));
	json_decref(want);
	want = param_schema(doc, "/r", "get", 3);
	ck_assert_int_eq(json_integer_value(json_object_get(want,
		"maxLength")), 8);
	ck_assert_str_eq(json_string_value(json_object_get(want, "pattern")),
			 "^(?!-)[^\\u0000-\\u001F\\u007F-\\u009F]*$");
	json_decref(doc);
}
END_TEST

START_TEST(test_a_secret_is_write_only_and_its_default_unsaid)
{
	json_t *doc = document_of(
		"[job a]\nkind = sleep\n"
		"param.t = string secret default=hushhush\n"
		"[route /r]\nmethod = POST\njobs = a\n");
	json_t *props = json_object_get(json_object_get(json_object_get(
		json_object_get(json_object_get(json_object_get(json_object_get(
		json_object_get(json_object_get(doc, "paths"), "/r"), "post"),
		"requestBody"), "content"), "application/json"), "schema"),
		"properties"), "t");
	char *text = json_dumps(doc, 0);

	ck_assert(json_is_true(json_object_get(props, "writeOnly")));
	ck_assert_str_eq(json_string_value(json_object_get(props, "format")),
			 "password");
	ck_assert_ptr_null(json_object_get(props, "default"));
	ck_assert_ptr_null(strstr(text, "hushhush"));
	free(text);
	json_decref(doc);
}
END_TEST

START_TEST(test_a_name_two_jobs_declare_takes_both_declarations)
{
	json_t *doc = document_of(
		"[job a]\nkind = sleep\nparam.x = int min=1 default=1\n"
		"[job b]\nkind = sleep\nparam.x = int max=5\n"
		"[route /r]\njobs = a b a\n");
	json_t *op = json_object_get(json_object_get(json_object_get(doc,
		"paths"), "/r"), "get");
	json_t *x = json_array_get(json_object_get(op, "parameters"), 0);
	json_t *all = json_object_get(json_object_get(x, "schema"), "allOf");

	/* x once, then Prefer; required since b has no default. */
	ck_assert_uint_eq(json_array_size(json_object_get(op, "parameters")),
			  2);
	ck_assert(json_is_true(json_object_get(x, "required")));
	ck_assert_uint_eq(json_array_size(all), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(
		all, 0), "minimum")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(
		all, 1), "maximum")), 5);
	json_decref(doc);
}
END_TEST

/* ---- patterns ------------------------------------------------------------ */

static const struct {
	const char *ere;
	bool portable;		/* into `pattern`, as ^(ere)$ */
} patterns[] = {
	{ "[A-Za-z ]+", true },
	{ "[a-z]{2,4}(-[a-z0-9]+)?", true },
	{ "ab|cd", true },
	{ "-[a-z]+", true },
	{ "(a|b)*c{2}d{1,}", true },
	{ "^a$|b", true },
	{ "[[:digit:]]+", false },	/* a class ECMA lacks */
	{ "a.b", false },		/* '.' takes one byte here */
	{ "[^a]+", false },		/* as does a negated bracket */
	{ "a\\.b", false },		/* backslashes: other escapes */
	{ "\xc3\xa9+", false },		/* '+' repeats the last byte here */
	{ "a+?", false },		/* (a+)? here, a lazy a+ there */
	{ "a]", false },		/* a lone ']': a syntax error there */
	{ "a}", false },
	{ "[]a]", false },
	{ "a\tb", false },
};

START_TEST(test_a_pattern_goes_into_json_schema_only_where_it_reads_alike)
{
	char text[256];
	json_t *doc, *s, *pattern;

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\nparam.p = "
		 "string pattern=%s\n[route /r]\njobs = a\n",
		 patterns[_i].ere);
	doc = document_of(text);
	s = param_schema(doc, "/r", "get", 0);
	pattern = json_object_get(s, "pattern");
	if (patterns[_i].portable) {
		char want[64];

		snprintf(want, sizeof(want), "^(%s)$", patterns[_i].ere);
		ck_assert_msg(pattern != NULL, "%s: no pattern",
			      patterns[_i].ere);
		ck_assert_str_eq(json_string_value(pattern), want);
	} else {
		ck_assert_msg(pattern == NULL, "%s: pattern %s",
			      patterns[_i].ere, json_string_value(pattern));
	}
	/* Either way the description says it, as the daemon reads it. */
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(s,
		"description")), patterns[_i].ere));
	json_decref(doc);
}
END_TEST

static Suite *
api_openapi_suite(void)
{
	Suite *s = suite_create("api_openapi");
	TCase *tc = tcase_create("document");

	tcase_add_test(tc, test_template_loads_and_the_version_is_filled_in);
	tcase_add_test(tc, test_the_same_config_gives_the_same_document);
	tcase_add_test(tc, test_cost_of_a_document_with_the_shipped_config);
	suite_add_tcase(s, tc);
	tc = tcase_create("schemas");
	tcase_add_test(tc, test_each_type_becomes_its_schema);
	tcase_add_test(tc, test_a_secret_is_write_only_and_its_default_unsaid);
	tcase_add_test(tc, test_a_name_two_jobs_declare_takes_both_declarations);
	tcase_add_loop_test(tc,
		test_a_pattern_goes_into_json_schema_only_where_it_reads_alike,
		0, NELEMS(patterns));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(api_openapi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
