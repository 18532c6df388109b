/*
 * check_log.c - the log writes one whole line per event: levels filter,
 * long messages are cut but still end in a newline, and control characters
 * from clients or files cannot forge a second line.
 *
 * Each test points stderr at a fresh temporary file and reads it back.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static FILE *capture;
static int saved_stderr = -1;

static void
setup(void)
{
	capture = tmpfile();
	ck_assert_ptr_nonnull(capture);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(capture), STDERR_FILENO), 0);
	log_set_level(LOG_LEVEL_INFO);
}

static void
teardown(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fclose(capture);
}

/* Everything logged so far, NUL-terminated (a new string), and its size. */
static char *
logged(size_t *len)
{
	long size;
	char *text;

	ck_assert_int_eq(fseek(capture, 0, SEEK_END), 0);
	size = ftell(capture);
	ck_assert_int_ge(size, 0);
	rewind(capture);
	text = calloc(1, (size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)size, capture),
			  (size_t)size);
	*len = (size_t)size;
	return text;
}

static size_t
count_char(const char *s, size_t len, char c)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

START_TEST(test_line_has_time_level_and_message)
{
	size_t len;
	char *text;

	log_info("hello %d", 42);
	text = logged(&len);
	/* 2026-11-23T10:00:00.123Z info: hello 42\n */
	ck_assert_uint_eq(len, 24 + strlen(" info: hello 42\n"));
	ck_assert_int_eq(text[4], '-');
	ck_assert_int_eq(text[10], 'T');
	ck_assert_int_eq(text[23], 'Z');
	ck_assert_str_eq(text + 24, " info: hello 42\n");
	free(text);
}
END_TEST

START_TEST(test_lines_below_the_level_are_dropped)
{
	size_t len;
	char *text;

	log_debug("not shown");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("shown");
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 1);
	ck_assert_ptr_nonnull(strstr(text, " debug: shown\n"));
	free(text);
}
END_TEST

START_TEST(test_warn_appends_the_errno_text)
{
	size_t len;
	char *text;

	errno = ENOENT;
	log_warn("open %s", "x.conf");
	text = logged(&len);
	ck_assert_ptr_nonnull(strstr(text, " warning: open x.conf: No such "
				     "file or directory\n"));
	free(text);
}
END_TEST

START_TEST(test_control_characters_cannot_forge_a_line)
{
	size_t len;
	char *text;

	log_warnx("GET /a\n2026-11-23T10:00:00.000Z info: forged\r\x7f\tend");
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 1);
	ck_assert_int_eq(text[len - 1], '\n');
	ck_assert_ptr_nonnull(strstr(text, "GET /a?2026-11-23T10:00:00.000Z "
				     "info: forged??\tend\n"));
	free(text);
}
END_TEST

START_TEST(test_long_message_is_cut_to_one_line_without_nul)
{
	static char big[5000];
	size_t len;
	char *text;

	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
	errno = EINVAL;
	log_warn("%s", big);
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 2);
	ck_assert_int_eq(text[len - 1], '\n');
	/* Before the fix the cut line ended in "x\0\n". */
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_uint_le(len, 2 * 2048);
	free(text);
}
END_TEST

START_TEST(test_format_time_is_rfc3339_utc_with_milliseconds)
{
	struct timespec ts = { 1795428000, 123999999 };	/* +0.123999999 s */
	char buf[LOG_TIME_MAX];

	ck_assert_uint_eq(log_format_time(buf, sizeof(buf), &ts), 24);
	ck_assert_str_eq(buf, "2026-11-23T10:00:00.123Z");
	ts.tv_nsec = 0;
	log_format_time(buf, sizeof(buf), &ts);
	ck_assert_str_eq(buf, "2026-11-23T10:00:00.000Z");
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_line_has_time_level_and_message);
	tcase_add_test(tc, test_lines_below_the_level_are_dropped);
	tcase_add_test(tc, test_warn_appends_the_errno_text);
	tcase_add_test(tc, test_control_characters_cannot_forge_a_line);
	tcase_add_test(tc, test_long_message_is_cut_to_one_line_without_nul);
	tcase_add_test(tc, test_format_time_is_rfc3339_utc_with_milliseconds);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
