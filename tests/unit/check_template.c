/*
 * check_template.c - `{name}` holes in job settings: what parses, what is
 * refused at load, and what each escape writes for each type of value.
 *
 * The definitions are built by hand with the declarations a template is
 * checked against; the values are objects as validation makes them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kinds/template.h"
#include "params.h"

static struct param_decl decls[] = {
	{ .name = "name", .type = PARAM_STRING },
	{ .name = "n", .type = PARAM_INT },
	{ .name = "on", .type = PARAM_BOOL },
};
static const struct job_def def = {
	.name = "t", .nparams = 3, .params = decls,
};

/* Renders text with params (a JSON object text) as esc says. */
static char *
render(const char *text, const char *params, enum template_escape esc)
{
	json_t *p = json_loads(params, 0, NULL);
	struct template *t;
	char why[128], *out;

	ck_assert_ptr_nonnull(p);
	t = template_parse(text, &def, why, sizeof(why));
	ck_assert_msg(t != NULL, "%s", why);
	out = template_render(t, p, esc, NULL);
	template_free(t);
	json_decref(p);
	ck_assert_ptr_nonnull(out);
	return out;
}

static void
assert_renders(const char *text, const char *params, enum template_escape esc,
	       const char *want)
{
	char *out = render(text, params, esc);

	ck_assert_str_eq(out, want);
	free(out);
}

START_TEST(test_text_without_holes_is_kept_whole)
{
	char why[128];
	struct template *t = template_parse("plain {text", &def, why,
					    sizeof(why));

	ck_assert_ptr_nonnull(t);
	ck_assert(!template_has_holes(t));
	template_free(t);
	assert_renders("plain text", "{}", TEMPLATE_RAW, "plain text");
	assert_renders("", "{}", TEMPLATE_RAW, "");
}
END_TEST

START_TEST(test_braces_that_are_not_holes_are_literal)
{
	assert_renders("{\"a\": {name}, \"b\": {}}", "{\"name\": \"x\"}",
		       TEMPLATE_JSON, "{\"a\": \"x\", \"b\": {}}");
	assert_renders("{ name} {name }{", "{\"name\": \"x\"}", TEMPLATE_RAW,
		       "{ name} {name }{");
}
END_TEST

START_TEST(test_raw_writes_the_value_as_is_even_shell_syntax)
{
	assert_renders("Hello, {name}!", "{\"name\": \"; rm -rf / $(id) `id`\"}",
		       TEMPLATE_RAW, "Hello, ; rm -rf / $(id) `id`!");
}
END_TEST

START_TEST(test_holes_next_to_each_other_and_repeated)
{
	assert_renders("{name}{n}{name}", "{\"name\": \"a\", \"n\": 7}",
		       TEMPLATE_RAW, "a7a");
}
END_TEST

START_TEST(test_url_percent_encodes_all_but_unreserved)
{
	assert_renders("http://h/x?q={name}",
		       "{\"name\": \"a b&c=d/\\u00e9~._-\"}", TEMPLATE_URL,
		       "http://h/x?q=a%20b%26c%3Dd%2F%C3%A9~._-");
}
END_TEST

START_TEST(test_json_quotes_strings_and_writes_numbers_and_booleans)
{
	assert_renders("[{name}, {n}, {on}]",
		       "{\"name\": \"q\\\"\\n\", \"n\": -3, \"on\": true}",
		       TEMPLATE_JSON, "[\"q\\\"\\n\", -3, true]");
}
END_TEST

START_TEST(test_raw_writes_integers_in_decimal_and_booleans_as_words)
{
	assert_renders("{n} {on}", "{\"n\": 1234567890123, \"on\": false}",
		       TEMPLATE_RAW, "1234567890123 false");
}
END_TEST

START_TEST(test_an_undeclared_hole_is_refused_with_its_name)
{
	char why[128];

	ck_assert_ptr_null(template_parse("x {nope} y", &def, why,
					  sizeof(why)));
	ck_assert_str_eq(why, "{nope} names no declared parameter (declare "
			 "it with param.nope)");
}
END_TEST

START_TEST(test_a_missing_value_fails_the_render)
{
	struct template *t;
	json_t *p = json_object();
	char why[128];

	t = template_parse("{name}", &def, why, sizeof(why));
	ck_assert_ptr_nonnull(t);
	ck_assert(template_has_holes(t));
	ck_assert_ptr_null(template_render(t, p, TEMPLATE_RAW, NULL));
	json_object_set_new(p, "name", json_real(1.5));
	ck_assert_ptr_null(template_render(t, p, TEMPLATE_RAW, NULL));
	template_free(t);
	json_decref(p);
}
END_TEST

START_TEST(test_render_reports_the_length_of_values_with_nul)
{
	struct template *t;
	json_t *p = json_pack("{s:s%}", "name", "a\0b", (size_t)3);
	char why[128], *out;
	size_t len;

	t = template_parse("<{name}>", &def, why, sizeof(why));
	ck_assert_ptr_nonnull(t);
	out = template_render(t, p, TEMPLATE_RAW, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(out, "<a\0b>", 5), 0);
	free(out);
	template_free(t);
	json_decref(p);
}
END_TEST

static Suite *
template_suite(void)
{
	Suite *s = suite_create("template");
	TCase *tc = tcase_create("parse and render");

	tcase_add_test(tc, test_text_without_holes_is_kept_whole);
	tcase_add_test(tc, test_braces_that_are_not_holes_are_literal);
	tcase_add_test(tc, test_raw_writes_the_value_as_is_even_shell_syntax);
	tcase_add_test(tc, test_holes_next_to_each_other_and_repeated);
	tcase_add_test(tc, test_url_percent_encodes_all_but_unreserved);
	tcase_add_test(tc, test_json_quotes_strings_and_writes_numbers_and_booleans);
	tcase_add_test(tc, test_raw_writes_integers_in_decimal_and_booleans_as_words);
	tcase_add_test(tc, test_an_undeclared_hole_is_refused_with_its_name);
	tcase_add_test(tc, test_a_missing_value_fails_the_render);
	tcase_add_test(tc, test_render_reports_the_length_of_values_with_nul);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(template_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
