/*
 * check_auth.c - bearer tokens (auth.h): the tokens file's format and its
 * errors (which never quote a token), the file's permissions, the check
 * of a presented token, and the limits of a token; and the [auth]
 * section of the config that names the file (config.h).
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"

#define TOK_A "aB3dE5gH7jK9mN1pQ"	/* 17 characters */
#define TOK_B "zY8xW6vU4tS2rQ0pO_~+/=="

static char tmpdir[PATH_MAX / 2];

static void
setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_auth.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[PATH_MAX];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to tmpdir/name with mode; returns the path (static). */
static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static struct auth_table *
parse(const char *text, struct auth_error *err)
{
	return auth_parse(text, strlen(text), err);
}

/* text is refused at line with a reason holding want and no token. */
static void
refused(const char *text, int line, const char *want, const char *secret)
{
	struct auth_error err;

	ck_assert_ptr_null(parse(text, &err));
	ck_assert_int_eq(err.line, line);
	ck_assert_msg(strstr(err.text, want) != NULL, "'%s' lacks '%s'",
		      err.text, want);
	if (secret != NULL)
		ck_assert_msg(strstr(err.text, secret) == NULL,
			      "'%s' quotes the token", err.text);
}

START_TEST(test_names_tokens_limits_and_comments_are_read)
{
	struct auth_error err;
	struct auth_table *t = parse(
		"# clients\n"
		"\n"
		"  # indented comment\n"
		"ci " TOK_A "\n"
		"deploy\t" TOK_B "  routes=/deploy/{env},/runs/{id} jobs=a,b\r\n",
		&err);
	const struct auth_token *ci, *deploy;

	ck_assert_msg(t != NULL, "%d: %s", err.line, err.text);
	ck_assert_uint_eq(auth_count(t), 2);
	ci = auth_token_at(t, 0);
	deploy = auth_token_at(t, 1);
	ck_assert_str_eq(ci->name, "ci");
	ck_assert_int_eq(ci->line, 4);
	ck_assert_uint_eq(ci->nroutes, 0);
	ck_assert(auth_allows_route(ci, "/anything"));
	ck_assert(auth_allows_job(ci, "anything"));
	ck_assert_str_eq(deploy->name, "deploy");
	ck_assert_uint_eq(deploy->nroutes, 2);
	ck_assert_str_eq(deploy->routes[0], "/deploy/{env}");
	ck_assert_str_eq(deploy->routes[1], "/runs/{id}");
	ck_assert(auth_allows_route(deploy, "/runs/{id}"));
	ck_assert(!auth_allows_route(deploy, "/runs"));
	ck_assert(auth_allows_job(deploy, "b"));
	ck_assert(!auth_allows_job(deploy, "c"));
	ck_assert_ptr_null(auth_token_at(t, 2));
	auth_table_free(t);
}
END_TEST

START_TEST(test_check_finds_exactly_the_token_given)
{
	struct auth_error err;
	struct auth_table *t = parse("ci " TOK_A "\ndeploy " TOK_B "\n", &err);
	char near[] = TOK_A;

	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(auth_check(t, TOK_A, strlen(TOK_A))->name, "ci");
	ck_assert_str_eq(auth_check(t, TOK_B, strlen(TOK_B))->name, "deploy");
	/* A prefix, an extension, one byte off, at each end: none. */
	ck_assert_ptr_null(auth_check(t, TOK_A, strlen(TOK_A) - 1));
	ck_assert_ptr_null(auth_check(t, TOK_A "x", strlen(TOK_A) + 1));
	near[0] ^= 1;
	ck_assert_ptr_null(auth_check(t, near, strlen(near)));
	near[0] ^= 1;
	near[strlen(near) - 1] ^= 1;
	ck_assert_ptr_null(auth_check(t, near, strlen(near)));
	ck_assert_ptr_null(auth_check(t, "", 0));
	auth_table_free(t);
}
END_TEST

START_TEST(test_check_takes_tokens_of_the_longest_length)
{
	char line[AUTH_TOKEN_MAX + 16], tok[AUTH_TOKEN_MAX + 2];
	struct auth_error err;
	struct auth_table *t;
	size_t i;

	for (i = 0; i < AUTH_TOKEN_MAX + 1; i++)
		tok[i] = "abcdefgh"[i % 8];
	tok[AUTH_TOKEN_MAX] = '\0';
	snprintf(line, sizeof(line), "long %s\n", tok);
	t = parse(line, &err);
	ck_assert_msg(t != NULL, "%s", err.text);
	ck_assert_ptr_nonnull(auth_check(t, tok, AUTH_TOKEN_MAX));
	tok[AUTH_TOKEN_MAX] = 'a';
	ck_assert_ptr_null(auth_check(t, tok, AUTH_TOKEN_MAX + 1));
	auth_table_free(t);
	tok[AUTH_TOKEN_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "long %s\n", tok);
	refused(line, 1, "257 characters", tok);
}
END_TEST

START_TEST(test_bad_lines_are_refused_without_quoting_the_token)
{
	refused("ci\n", 1, "expected NAME TOKEN", NULL);
	/* Swapped: the token passes for a name, and is not quoted. */
	refused("\n\n" TOK_A " ci\n", 3, "the token has 2 characters", TOK_A);
	refused(TOK_A "!x " TOK_B "\n", 1, "bad name", TOK_B);
	refused("ci short-t0ken\n", 1, "the token has 11 characters",
		"short-t0ken");
	refused("ci aaaaaaaaaaaaaaaaaaaaaaaa\n", 1, "distinct", "aaaaaaaaaa");
	refused("ci " TOK_A "*x\n", 1, "not an RFC 6750 bearer token", TOK_A);
	refused("ci abcdefgh=ijklmnop\n", 1, "not an RFC 6750", "abcdefgh");
	refused("ci " TOK_A " " TOK_B "\n", 1, "neither routes= nor jobs=",
		TOK_B);
	refused("ci " TOK_A " routes=/a routes=/b\n", 1, "given twice", TOK_A);
	refused("ci " TOK_A " jobs=a,,b\n", 1, "empty entry", TOK_A);
	refused("ci " TOK_A "\nci " TOK_B "\n", 2, "the name is already used on "
		"line 1", TOK_B);
	refused("ci " TOK_A "\nother " TOK_A "\n", 2, "also that of line 1",
		TOK_A);
	refused("# nothing\n\n", 0, "no token", NULL);
	refused("", 0, "no token", NULL);
}
END_TEST

START_TEST(test_nul_and_long_lines_are_refused)
{
	struct auth_error err;
	char big[AUTH_LINE_MAX + 64];
	const char text[] = "ci " TOK_A "\nx\0y " TOK_B "\n";

	ck_assert_ptr_null(auth_parse(text, sizeof(text) - 1, &err));
	ck_assert_int_eq(err.line, 2);
	ck_assert_str_eq(err.text, "line has a NUL byte");
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "ci " TOK_A, strlen("ci " TOK_A));
	ck_assert_ptr_null(parse(big, &err));
	ck_assert_int_eq(err.line, 1);
	ck_assert_msg(strstr(err.text, "line too long") != NULL, "%s",
		      err.text);
}
END_TEST

START_TEST(test_b64token_alphabet)
{
	ck_assert(auth_b64token("aZ09-._~+/", 10));
	ck_assert(auth_b64token("abc==", 5));
	ck_assert(!auth_b64token("=abc", 4));
	ck_assert(!auth_b64token("ab=c", 4));
	ck_assert(!auth_b64token("ab c", 4));
	ck_assert(!auth_b64token("ab\"c", 4));
	ck_assert(!auth_b64token("", 0));
	ck_assert(!auth_b64token("ab\0c", 4));
}
END_TEST

START_TEST(test_file_needs_mode_0600_or_stricter)
{
	struct auth_error err;
	struct auth_table *t;
	static const mode_t refused_modes[] = { 0644, 0640, 0604, 0620, 0602 };
	size_t i;

	t = auth_load(write_file("tokens", "ci " TOK_A "\n", 0600), &err);
	ck_assert_msg(t != NULL, "%s", err.text);
	auth_table_free(t);
	t = auth_load(write_file("tokens", "ci " TOK_A "\n", 0400), &err);
	ck_assert_ptr_nonnull(t);
	auth_table_free(t);
	for (i = 0; i < sizeof(refused_modes) / sizeof(*refused_modes); i++) {
		t = auth_load(write_file("tokens", "ci " TOK_A "\n",
					 refused_modes[i]), &err);
		ck_assert_ptr_null(t);
		ck_assert_int_eq(err.line, 0);
		ck_assert_msg(strstr(err.text, "group or others") != NULL,
			      "%s", err.text);
	}
	ck_assert_ptr_null(auth_load(tmpdir, &err));
	ck_assert_str_eq(err.text, "not a regular file");
	ck_assert_ptr_null(auth_load("/nonexistent/tokens", &err));
	ck_assert_str_eq(err.text, "No such file or directory");
}
END_TEST

/* ---- the [auth] section of the config ---------------------------------- */

#define JOBS \
	"[job a]\nkind = sleep\nduration = 0\n" \
	"[job b]\nkind = sleep\nduration = 0\n" \
	"[route /a]\njobs = a\n"

static struct config *
load(const char *conf, struct config_error *err)
{
	return config_load(write_file("taskpoold.conf", conf, 0644), err);
}

START_TEST(test_config_reads_the_tokens_file_and_auth_keys)
{
	char conf[PATH_MAX + 512];
	struct config_error err;
	struct config *c;

	write_file("tokens", "ci " TOK_A " routes=/a,/jobs jobs=a\n", 0600);
	snprintf(conf, sizeof(conf), "[auth]\ntokens = %s/tokens\n"
		 "metrics = open\n" JOBS "auth = open\n", tmpdir);
	c = load(conf, &err);
	ck_assert_msg(c != NULL, "%s:%d: %s", err.file, err.line, err.text);
	ck_assert_ptr_nonnull(c->auth.tokens);
	ck_assert(c->auth.metrics_open);
	ck_assert(!c->auth.openapi_open);
	ck_assert(c->routes[0].auth_open);
	config_unref(c);
	/* Without [auth]: no tokens, as before tokens existed. */
	c = load(JOBS, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_null(c->auth.tokens);
	ck_assert(!c->routes[0].auth_open);
	config_unref(c);
}
END_TEST

/*
 * conf (with @ for tmpdir, at most once) is refused at file (NULL: the
 * config), line.
 */
static void
config_refused(const char *conf, const char *file, int line,
	       const char *want)
{
	char text[PATH_MAX + 1024], path[PATH_MAX];
	const char *at = strchr(conf, '@');
	struct config_error err;

	if (at == NULL)
		snprintf(text, sizeof(text), "%s", conf);
	else
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - conf),
			 conf, tmpdir, at + 1);
	ck_assert_ptr_null(load(text, &err));
	snprintf(path, sizeof(path), "%s/%s", tmpdir,
		 file != NULL ? file : "taskpoold.conf");
	ck_assert_str_eq(err.file, path);
	ck_assert_int_eq(err.line, line);
	ck_assert_msg(strstr(err.text, want) != NULL, "'%s' lacks '%s'",
		      err.text, want);
	ck_assert_msg(strstr(err.text, TOK_A) == NULL, "%s", err.text);
}

START_TEST(test_config_refuses_bad_auth)
{
	write_file("tokens", "ci " TOK_A "\n", 0600);
	config_refused("[auth]\ntokens = " TOK_A "\n", NULL, 2,
		       "absolute path of the tokens file");
	config_refused("[auth]\nmetrics = yes\n", NULL, 2, "open or token");
	config_refused("[auth]\nrealm = x\n", NULL, 2, "unknown key");
	config_refused("[auth]\nmetrics = open\n", NULL, 1,
		       "[auth] without tokens");
	config_refused(JOBS "auth = token\n", NULL, 9, "no tokens");
	config_refused(JOBS "auth = maybe\n", NULL, 9, "open or token");
	config_refused("[auth]\ntokens = @/tokens\n[auth]\n", NULL, 3,
		       "appears twice");
	write_file("tokens", "ci " TOK_A "\n", 0640);
	config_refused("\n[auth]\ntokens = @/tokens\n", NULL, 3,
		       "group or others have access (mode 0640)");
	config_refused("[auth]\ntokens = @/none\n", NULL, 2,
		       "No such file");
	write_file("tokens", "ci " TOK_A "\nci2 x\n", 0600);
	config_refused("[auth]\ntokens = @/tokens\n", "tokens", 2,
		       "has 1 characters");
	write_file("tokens", "ci " TOK_A " routes=/a,/b\n", 0600);
	config_refused("[auth]\ntokens = @/tokens\n" JOBS, "tokens", 1,
		       "names '/b', which is neither");
	write_file("tokens", "ci " TOK_A " jobs=a,c\n", 0600);
	config_refused("[auth]\ntokens = @/tokens\n" JOBS, "tokens", 1,
		       "unknown job 'c'");
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("tokens");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names_tokens_limits_and_comments_are_read);
	tcase_add_test(tc, test_check_finds_exactly_the_token_given);
	tcase_add_test(tc, test_check_takes_tokens_of_the_longest_length);
	tcase_add_test(tc, test_bad_lines_are_refused_without_quoting_the_token);
	tcase_add_test(tc, test_nul_and_long_lines_are_refused);
	tcase_add_test(tc, test_b64token_alphabet);
	tcase_add_test(tc, test_file_needs_mode_0600_or_stricter);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config_reads_the_tokens_file_and_auth_keys);
	tcase_add_test(tc, test_config_refuses_bad_auth);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
