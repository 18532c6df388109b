/*
 * check_access_log.c - the access log's line: its fields in their order,
 * one space apart, none holding a space; a method and a target escaped so
 * that no byte from a client can break the line or forge a field; query
 * values shown only when the caller says so; long fields cut with a mark.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "access_log.h"

/* The line for target t and these fields, as access_log_format() writes. */
static const char *
line_of(const struct access_log_target *t, const char *method)
{
	static char buf[ACCESS_LOG_LINE_MAX];
	struct access_log_entry e = {
		.client = "127.0.0.1:52344",
		.status = 200,
		.bytes = 27,
		.duration_ns = 1234567,
		.method = method,
		.target = t,
	};
	size_t len = access_log_format(buf, sizeof(buf), &e);

	ck_assert_uint_eq(len, strlen(buf));
	return buf;
}

START_TEST(test_fields_in_order)
{
	struct access_log_target t;

	access_log_target_init(&t);
	access_log_target_path(&t, "/greet/bob", 10);
	access_log_target_arg(&t, "times", 5, "3", 1, true);
	access_log_target_arg(&t, "token", 5, "hunter2", 7, false);
	ck_assert_str_eq(line_of(&t, "GET"), "access: 127.0.0.1:52344 200 27 "
			 "1.234ms GET /greet/bob?times=3&token=***");
}
END_TEST

START_TEST(test_duration_has_three_decimals_and_rounds_down)
{
	static char buf[ACCESS_LOG_LINE_MAX];
	struct access_log_target t;
	struct access_log_entry e = {
		.client = NULL, .status = 499, .bytes = 0,
		.duration_ns = 12000999999LL, .method = "HEAD", .target = &t,
	};

	access_log_target_init(&t);
	access_log_target_path(&t, "/", 1);
	access_log_format(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "access: - 499 0 12000.999ms HEAD /");
	e.duration_ns = 999;
	access_log_format(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "access: - 499 0 0.000ms HEAD /");
}
END_TEST

START_TEST(test_path_bytes_that_could_break_the_line_are_escaped)
{
	static const char path[] = "/a b\"c\\d\ne\r\tf%g?h#i*j\x7f\xc3\xa9/k";
	struct access_log_target t;

	access_log_target_init(&t);
	access_log_target_path(&t, path, sizeof(path) - 1);
	ck_assert_str_eq(line_of(&t, "GET"), "access: 127.0.0.1:52344 200 27 "
			 "1.234ms GET /a%20b%22c%5Cd%0Ae%0D%09f%25g%3Fh%23i"
			 "%2Aj%7F%C3%A9/k");
}
END_TEST

START_TEST(test_path_keeps_what_a_uri_path_may_hold)
{
	static const char path[] = "/AZaz09-._~!$&'()+,;=:@/x";
	struct access_log_target t;

	access_log_target_init(&t);
	access_log_target_path(&t, path, sizeof(path) - 1);
	ck_assert_str_eq(line_of(&t, "GET") + strlen("access: 127.0.0.1:52344 "
			 "200 27 1.234ms GET "), path);
}
END_TEST

START_TEST(test_query_separators_in_names_and_values_are_escaped)
{
	struct access_log_target t;

	access_log_target_init(&t);
	access_log_target_path(&t, "/r", 2);
	/* A decoded %00, '&', '=', '+' and "***" cannot forge anything. */
	access_log_target_arg(&t, "a&b=c", 5, "x=y&z", 5, true);
	access_log_target_arg(&t, "n\0l", 3, "+ ***", 5, true);
	access_log_target_arg(&t, "flag", 4, NULL, 0, false);
	access_log_target_arg(&t, "s", 1, "", 0, false);
	ck_assert_str_eq(line_of(&t, "GET") + strlen("access: 127.0.0.1:52344 "
			 "200 27 1.234ms GET "), "/r?a%26b%3Dc=x%3Dy%26z&"
			 "n%00l=%2B%20%2A%2A%2A&flag&s=***");
}
END_TEST

START_TEST(test_method_is_escaped)
{
	struct access_log_target t;

	access_log_target_init(&t);
	access_log_target_path(&t, "/", 1);
	ck_assert_str_eq(line_of(&t, "GE T\"\n"), "access: 127.0.0.1:52344 200 "
			 "27 1.234ms GE%20T%22%0A /");
}
END_TEST

START_TEST(test_long_target_and_method_are_cut_with_a_mark)
{
	static char path[3 * ACCESS_LOG_TARGET_MAX], method[200];
	struct access_log_target t;
	const char *line, *target;

	memset(path, '"', sizeof(path));	/* each one takes 3 bytes */
	path[0] = '/';
	memset(method, 'M', sizeof(method) - 1);
	access_log_target_init(&t);
	access_log_target_path(&t, path, sizeof(path));
	access_log_target_arg(&t, "k", 1, "v", 1, true);
	line = line_of(&t, method);
	target = strrchr(line, ' ') + 1;
	ck_assert_uint_le(strlen(target), ACCESS_LOG_TARGET_MAX);
	ck_assert_str_eq(target + strlen(target) - 7, "%22#cut");
	/* Cut at a whole escape: the '%' of each is 3 before the next. */
	ck_assert_uint_eq((strlen(target) - 1 - 4) % 3, 0);
	ck_assert_ptr_null(strchr(target, '?'));
	ck_assert_ptr_nonnull(strstr(line, " MMMM"));
	ck_assert_uint_eq(strcspn(strstr(line, " MMMM") + 1, " "),
			  ACCESS_LOG_METHOD_MAX);
	ck_assert_ptr_nonnull(strstr(line, "MMMM#cut /"));
}
END_TEST

START_TEST(test_client_addresses)
{
	char buf[ACCESS_LOG_CLIENT_MAX];
	struct sockaddr_in in4 = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	in4.sin_port = htons(52344);
	inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
	in6.sin6_port = htons(8080);
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	ck_assert_str_eq(access_log_client(buf, (struct sockaddr *)&in4),
			 "127.0.0.1:52344");
	ck_assert_str_eq(access_log_client(buf, (struct sockaddr *)&in6),
			 "[2001:db8::1]:8080");
	ck_assert_ptr_null(access_log_client(buf, (struct sockaddr *)&un));
	ck_assert_ptr_null(access_log_client(buf, NULL));
}
END_TEST

static Suite *
access_log_suite(void)
{
	Suite *s = suite_create("access_log");
	TCase *tc = tcase_create("line");

	tcase_add_test(tc, test_fields_in_order);
	tcase_add_test(tc, test_duration_has_three_decimals_and_rounds_down);
	tcase_add_test(tc, test_path_bytes_that_could_break_the_line_are_escaped);
	tcase_add_test(tc, test_path_keeps_what_a_uri_path_may_hold);
	tcase_add_test(tc, test_query_separators_in_names_and_values_are_escaped);
	tcase_add_test(tc, test_method_is_escaped);
	tcase_add_test(tc, test_long_target_and_method_are_cut_with_a_mark);
	tcase_add_test(tc, test_client_addresses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(access_log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
