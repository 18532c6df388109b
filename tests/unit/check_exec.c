/*
 * check_exec.c - kind exec's command line: how a command splits into
 * words, what is refused at load, and that a parameter's value stays one
 * literal argument whatever it holds (no shell is ever involved).
 *
 * Definitions are read through the kind's own parse and check operations
 * with declarations built by hand; values are objects as validation makes
 * them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kinds/exec.h"
#include "params.h"

static struct param_decl decls[] = {
	{ .name = "name", .type = PARAM_STRING },
	{ .name = "n", .type = PARAM_INT },
};

/* Splits command and checks the words against want (NULL-terminated). */
static void
assert_split(const char *command, const char *const *want)
{
	char **words, why[128];
	int n = exec_words_split(command, &words, why, sizeof(why)), i;

	ck_assert_msg(n >= 0, "%s: %s", command, why);
	for (i = 0; want[i] != NULL; i++) {
		ck_assert_ptr_nonnull(words[i]);
		ck_assert_str_eq(words[i], want[i]);
	}
	ck_assert_int_eq(n, i);
	ck_assert_ptr_null(words[i]);
	exec_words_free(words);
}

static void
assert_split_refused(const char *command, const char *reason)
{
	char **words = NULL, why[128];

	ck_assert_int_eq(exec_words_split(command, &words, why, sizeof(why)),
			 -1);
	ck_assert_ptr_null(words);
	ck_assert_str_eq(why, reason);
}

START_TEST(test_words_split_on_spaces_and_tabs)
{
	assert_split("/bin/echo a  b\tc ", (const char *[]){ "/bin/echo", "a",
		     "b", "c", NULL });
}
END_TEST

START_TEST(test_quotes_keep_spaces_and_take_two_escapes)
{
	assert_split("/bin/echo \"a b\" x\"y z\" \"\" \"q\\\"s\\\\t\\n\"",
		     (const char *[]){ "/bin/echo", "a b", "xy z", "",
		     "q\"s\\t\\n", NULL });
}
END_TEST

START_TEST(test_bad_commands_are_refused)
{
	assert_split_refused("/bin/echo \"open", "command has a \" without "
			     "its closing \"");
	assert_split_refused(" \t", "command is empty");
}
END_TEST

/* A definition with the two declarations and keys; check() passed. */
static struct job_def *
def_of(const char *const *kv)
{
	struct job_def *def = calloc(1, sizeof(*def));
	char why[256];
	size_t i;

	def->name = "t";
	def->nparams = 2;
	def->params = decls;
	def->timeout_ns = INT64_C(60000000000);
	for (i = 0; kv[i] != NULL; i += 2)
		ck_assert_msg(exec_parse(def, kv[i], kv[i + 1], why,
					 sizeof(why)) == 0, "%s", why);
	ck_assert_msg(exec_check(def, why, sizeof(why)) == 0, "%s", why);
	return def;
}

static void
def_free(struct job_def *def)
{
	exec_free(def->kind_data);
	free(def);
}

/* The reason parse or check gives for kv. */
static void
assert_refused(const char *const *kv, const char *reason)
{
	struct job_def def = { .name = "t", .nparams = 2, .params = decls };
	char why[256] = "";
	int rc = 0;
	size_t i;

	for (i = 0; kv[i] != NULL && rc == 0; i += 2)
		rc = exec_parse(&def, kv[i], kv[i + 1], why, sizeof(why));
	if (rc == 0)
		rc = exec_check(&def, why, sizeof(why));
	ck_assert_int_ne(rc, 0);
	ck_assert_str_eq(why, reason);
	exec_free(def.kind_data);
}

START_TEST(test_load_refuses_what_cannot_run)
{
	assert_refused((const char *[]){ "command", "echo hi", NULL },
		       "command 'echo' is not an absolute path");
	assert_refused((const char *[]){ "command", "/etc/passwd", NULL },
		       "command '/etc/passwd' is not an executable file");
	assert_refused((const char *[]){ "command", "/bin/{name}", NULL },
		       "command '/bin/{name}' is not an executable file");
	assert_refused((const char *[]){ "command", "/bin/echo {nope}", NULL },
		       "{nope} names no declared parameter (declare it with "
		       "param.nope)");
	assert_refused((const char *[]){ "output", "xml", NULL },
		       "bad value 'xml' for output (expected text or json)");
	assert_refused((const char *[]){ "env.1X", "a", NULL },
		       "bad environment variable name '1X' (use letters, "
		       "digits and _)");
	assert_refused((const char *[]){ "directory", "tmp", NULL },
		       "directory 'tmp' is not an absolute path to a "
		       "directory");
	assert_refused((const char *[]){ "user", "no-such-user-here", NULL },
		       "unknown user 'no-such-user-here'");
	assert_refused((const char *[]){ "output", "json", NULL },
		       "no command (an absolute path and its arguments)");
	ck_assert_int_eq(exec_parse(&(struct job_def){ 0 }, "shell", "x",
				    (char[8]){ 0 }, 8), 1);
}
END_TEST

/* argv of command run with the value of name. */
static char **
argv_with(const char *command, const char *value)
{
	struct job_def *def = def_of((const char *[]){ "command", command,
				     NULL });
	json_t *params = json_pack("{s:s, s:i}", "name", value, "n", 7);
	char **argv, **envp;

	ck_assert_int_eq(exec_render(def->kind_data, params, &argv, &envp),
			 0);
	ck_assert_ptr_null(envp[0]);
	exec_words_free(envp);
	json_decref(params);
	def_free(def);
	return argv;
}

static const char *const attacks[] = {
	"; rm -rf /", "$(id)", "`id`", "a b", "\"quoted\" 'single'",
	"line\nbreak", "-rf", "--help", "{n}", "*", "", "a\tb\\", NULL,
};

START_TEST(test_a_value_is_one_literal_argument_whatever_it_holds)
{
	size_t i;

	for (i = 0; attacks[i] != NULL; i++) {
		char **argv = argv_with("/bin/echo -n {name} end", attacks[i]);

		ck_assert_str_eq(argv[0], "/bin/echo");
		ck_assert_str_eq(argv[1], "-n");
		ck_assert_str_eq(argv[2], attacks[i]);
		ck_assert_str_eq(argv[3], "end");
		ck_assert_ptr_null(argv[4]);
		exec_words_free(argv);
	}
}
END_TEST

START_TEST(test_a_value_inside_a_quoted_word_stays_in_that_word)
{
	char **argv = argv_with("/bin/echo \"Hello, {name} ({n})\"",
				"; rm -rf / $(id)");

	ck_assert_str_eq(argv[1], "Hello, ; rm -rf / $(id) (7)");
	ck_assert_ptr_null(argv[2]);
	exec_words_free(argv);
}
END_TEST

START_TEST(test_env_holds_only_its_keys_with_values_filled_in)
{
	struct job_def *def = def_of((const char *[]){ "command", "/bin/env",
				     "env.GREETING", "hi {name}",
				     "env.N", "{n}", NULL });
	json_t *params = json_pack("{s:s, s:i}", "name", "x=y z", "n", 3);
	char **argv, **envp;

	ck_assert_int_eq(exec_render(def->kind_data, params, &argv, &envp),
			 0);
	ck_assert_str_eq(envp[0], "GREETING=hi x=y z");
	ck_assert_str_eq(envp[1], "N=3");
	ck_assert_ptr_null(envp[2]);
	exec_words_free(argv);
	exec_words_free(envp);
	json_decref(params);
	def_free(def);
}
END_TEST

START_TEST(test_text_is_made_valid_utf8)
{
	static const char in[] = "ok \xC3\xA9 \xFF \xC0\xAF \xED\xA0\x80 a\0b";
	char *s = exec_text_utf8(in, sizeof(in) - 1, false);

	ck_assert_str_eq(s, "ok \xC3\xA9 \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF"
			 "\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD a\xEF\xBF"
			 "\xBD" "b");
	free(s);
	s = exec_text_utf8("cut \xE2\x82", 6, true);
	ck_assert_str_eq(s, "cut ");
	free(s);
}
END_TEST

static Suite *
exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("command");

	tcase_add_test(tc, test_words_split_on_spaces_and_tabs);
	tcase_add_test(tc, test_quotes_keep_spaces_and_take_two_escapes);
	tcase_add_test(tc, test_bad_commands_are_refused);
	tcase_add_test(tc, test_load_refuses_what_cannot_run);
	tcase_add_test(tc, test_a_value_is_one_literal_argument_whatever_it_holds);
	tcase_add_test(tc, test_a_value_inside_a_quoted_word_stays_in_that_word);
	tcase_add_test(tc, test_env_holds_only_its_keys_with_values_filled_in);
	tcase_add_test(tc, test_text_is_made_valid_utf8);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(exec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
