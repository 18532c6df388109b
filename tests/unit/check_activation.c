/*
 * check_activation.c - socket activation: the protocol parser written for
 * builds without libsystemd (run in every build), and what
 * activation_take_socket() accepts and refuses, with sockets put at fd 3
 * as a service manager puts them.  Each test runs in its own process
 * (Check forks), so moving fd 3 and the environment is harmless.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "activation.h"

/* ---- the parser ------------------------------------------------------------ */

START_TEST(test_parse_counts_what_is_passed_to_us)
{
	ck_assert_int_eq(activation_parse("4242", "1", 4242), 1);
	ck_assert_int_eq(activation_parse("4242", "2", 4242), 2);
	ck_assert_int_eq(activation_parse("2147483647", "2147483644",
					  2147483647), 2147483644);
}
END_TEST

START_TEST(test_parse_sees_nothing_for_another_process_or_unset)
{
	ck_assert_int_eq(activation_parse(NULL, NULL, 4242), 0);
	ck_assert_int_eq(activation_parse(NULL, "1", 4242), 0);
	ck_assert_int_eq(activation_parse("4242", NULL, 4242), 0);
	/* Another's: its LISTEN_FDS is not even looked at. */
	ck_assert_int_eq(activation_parse("4243", "1", 4242), 0);
	ck_assert_int_eq(activation_parse("4243", "garbage", 4242), 0);
}
END_TEST

START_TEST(test_parse_refuses_what_is_not_a_number_in_range)
{
	static const char *const bad[] = {
		"", "0", "-1", "x", "1x", "x1", " 1", "1 ", "+1", "0x1",
		"1.0", "2147483648", "99999999999999999999",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(activation_parse(bad[i], "1", 4242) == -1,
			      "LISTEN_PID=\"%s\" taken", bad[i]);
		ck_assert_msg(activation_parse("4242", bad[i], 4242) == -1,
			      "LISTEN_FDS=\"%s\" taken", bad[i]);
	}
	/* No fd past INT_MAX: 3 + n must fit. */
	ck_assert_int_eq(activation_parse("4242", "2147483645", 4242), -1);
}
END_TEST

#ifdef HAVE_LIBSYSTEMD
static const char *const agree_cases[][2] = {
	{ "self", "1" }, { "self", "2" }, { "self", "0" }, { "self", "-1" },
	{ "self", "x" }, { "self", "1x" }, { "self", "" }, { "self", NULL },
	{ NULL, "1" }, { "1", "1" }, { "0", "1" }, { "-5", "1" },
	{ "x", "1" }, { "", "1" },
};

/*
 * In a child, as fds 3 and 4 are Check's here (see take_in_child()
 * below): the index of the first case where parser and sd_listen_fds()
 * disagree, as the exit status, or 255 if none does.
 */
static int
first_disagreement(void)
{
	char self[32];
	const char *pid;
	size_t i;
	int want, got;

	snprintf(self, sizeof(self), "%ld", (long)getpid());
	if (dup2(STDERR_FILENO, 3) != 3 || dup2(STDERR_FILENO, 4) != 4)
		return 254;	/* two fds to pass */
	for (i = 0; i < sizeof(agree_cases) / sizeof(agree_cases[0]); i++) {
		pid = agree_cases[i][0] != NULL &&
		      !strcmp(agree_cases[i][0], "self") ? self :
		      agree_cases[i][0];
		want = activation_parse(pid, agree_cases[i][1], getpid());
		if (pid != NULL)
			setenv("LISTEN_PID", pid, 1);
		if (agree_cases[i][1] != NULL)
			setenv("LISTEN_FDS", agree_cases[i][1], 1);
		got = sd_listen_fds(1);
		if (want != (got < 0 ? -1 : got))
			return (int)i;
	}
	return 255;
}

/*
 * On what a manager writes, the parser agrees with libsystemd's
 * sd_listen_fds(), which this build uses (they differ only on "+1", " 1"
 * or "0x1", which libsystemd's strtol() takes).
 */
START_TEST(test_parse_agrees_with_sd_listen_fds)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(first_disagreement());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 255,
		      "they disagree on case %d", WEXITSTATUS(status));
}
END_TEST
#endif

/* ---- activation_take_socket() ---------------------------------------------- */

/*
 * fds 3 and 4 are Check's own (its pipe to the runner) in a test's
 * process, and every ck_assert() writes to them: so each case runs in a
 * child of its own, which sets fds and variables up as a manager would,
 * calls activation_take_socket(), and sends back what came of it.  In the
 * child, a failed step aborts (no ck_assert() there).
 */
#define MUST(cond) do { if (!(cond)) abort(); } while (0)

struct outcome {
	int ret;		/* activation_take_socket()'s */
	int fd;			/* the fd it gave */
	bool fd3_open;		/* afterwards */
	bool fd3_cloexec;
	bool env_clean;		/* LISTEN_PID, _FDS, _FDNAMES all unset */
};

/* Puts fd at 3 (closing fd) and passes 3 .. 3 + n - 1 to this process. */
static void
pass(int fd, int n)
{
	char pid[32], count[32];

	if (fd >= 0 && fd != ACTIVATION_FIRST_FD) {
		MUST(dup2(fd, ACTIVATION_FIRST_FD) == ACTIVATION_FIRST_FD);
		close(fd);
	}
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(count, sizeof(count), "%d", n);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", count, 1);
	setenv("LISTEN_FDNAMES", "web", 1);
}

/* A socket bound on 127.0.0.1, at fd 10 or above. */
static int
inet_socket(int type, bool listening)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = fcntl(socket(AF_INET, type, 0), F_DUPFD, 10);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	MUST(fd >= 10);
	MUST(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	MUST(!listening || listen(fd, 16) == 0);
	return fd;
}

static struct outcome
take_in_child(void (*setup)(void))
{
	struct outcome o = { .ret = 99 };
	int status, p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		p[1] = fcntl(p[1], F_DUPFD, 10);
		MUST(p[1] >= 10);
		/* The errors it logs are the system test's to check. */
		MUST(freopen("/dev/null", "w", stderr) != NULL);
		setup();
		o.ret = activation_take_socket(&o.fd);
		o.fd3_open = fcntl(ACTIVATION_FIRST_FD, F_GETFD) >= 0;
		o.fd3_cloexec = fcntl(ACTIVATION_FIRST_FD, F_GETFD) ==
				FD_CLOEXEC;
		o.env_clean = getenv("LISTEN_PID") == NULL &&
			      getenv("LISTEN_FDS") == NULL &&
			      getenv("LISTEN_FDNAMES") == NULL;
		MUST(write(p[1], &o, sizeof(o)) == sizeof(o));
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &o, sizeof(o)), sizeof(o));
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	return o;
}

static void
listening(void)
{
	pass(inet_socket(SOCK_STREAM, true), 1);
}

static void
nothing(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
}

static void
for_another_process(void)
{
	listening();
	setenv("LISTEN_PID", "1", 1);
}

static void
a_pipe(void)
{
	int fds[2];

	MUST(pipe(fds) == 0);
	pass(fcntl(fds[0], F_DUPFD, 10), 1);
}

static void
not_listening(void)
{
	pass(inet_socket(SOCK_STREAM, false), 1);
}

static void
datagram(void)
{
	pass(inet_socket(SOCK_DGRAM, false), 1);
}

static void
unix_listening(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = fcntl(socket(AF_UNIX, SOCK_STREAM, 0), F_DUPFD, 10);

	MUST(fd >= 10);
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
		 "check_activation-%ld", (long)getpid());
	MUST(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	MUST(listen(fd, 1) == 0);
	pass(fd, 1);
}

static void
two(void)
{
	int second = inet_socket(SOCK_STREAM, true);

	pass(inet_socket(SOCK_STREAM, true), 2);
	MUST(dup2(second, ACTIVATION_FIRST_FD + 1) ==
	     ACTIVATION_FIRST_FD + 1);
}

static void
one_missing(void)
{
	close(ACTIVATION_FIRST_FD);
	pass(-1, 1);
}

static void
zero(void)
{
	listening();
	setenv("LISTEN_FDS", "0", 1);
}

static void
words(void)
{
	listening();
	setenv("LISTEN_FDS", "one", 1);
}

static void
pid_zero(void)
{
	listening();
	setenv("LISTEN_PID", "0", 1);
}

START_TEST(test_take_returns_a_passed_listening_socket)
{
	struct outcome o = take_in_child(listening);

	ck_assert_int_eq(o.ret, 0);
	ck_assert_int_eq(o.fd, ACTIVATION_FIRST_FD);
	ck_assert(o.fd3_cloexec);
	ck_assert(o.env_clean);
}
END_TEST

START_TEST(test_take_without_variables_passes_nothing)
{
	struct outcome o = take_in_child(nothing);

	ck_assert_int_eq(o.ret, 0);
	ck_assert_int_eq(o.fd, -1);
}
END_TEST

START_TEST(test_take_ignores_what_is_passed_to_another_process)
{
	struct outcome o = take_in_child(for_another_process);

	ck_assert_int_eq(o.ret, 0);
	ck_assert_int_eq(o.fd, -1);
	ck_assert(o.env_clean);
	/* Left alone: still open, still inherited. */
	ck_assert(o.fd3_open);
	ck_assert(!o.fd3_cloexec);
}
END_TEST

START_TEST(test_take_refuses_what_is_no_listening_inet_stream_socket)
{
	void (*const cases[])(void) = {
		a_pipe, not_listening, datagram, unix_listening,
	};
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = take_in_child(cases[i]);
		ck_assert_msg(o.ret == -1 && o.fd == -1, "case %zu: %d, fd %d",
			      i, o.ret, o.fd);
		ck_assert(o.env_clean);
	}
}
END_TEST

START_TEST(test_take_refuses_two_sockets_and_a_missing_one)
{
	struct outcome o = take_in_child(two);

	ck_assert_int_eq(o.ret, -1);
	ck_assert_int_eq(o.fd, -1);
	ck_assert(o.env_clean);
	o = take_in_child(one_missing);
	ck_assert_int_eq(o.ret, -1);
	ck_assert_int_eq(o.fd, -1);
	ck_assert(o.env_clean);
}
END_TEST

START_TEST(test_take_refuses_bad_values_for_us)
{
	void (*const cases[])(void) = { zero, words, pid_zero };
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = take_in_child(cases[i]);
		ck_assert_msg(o.ret == -1 && o.fd == -1, "case %zu: %d, fd %d",
			      i, o.ret, o.fd);
		ck_assert(o.env_clean);
	}
}
END_TEST

static Suite *
activation_suite(void)
{
	Suite *s = suite_create("activation");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_parse_counts_what_is_passed_to_us);
	tcase_add_test(tc, test_parse_sees_nothing_for_another_process_or_unset);
	tcase_add_test(tc, test_parse_refuses_what_is_not_a_number_in_range);
#ifdef HAVE_LIBSYSTEMD
	tcase_add_test(tc, test_parse_agrees_with_sd_listen_fds);
#endif
	suite_add_tcase(s, tc);
	tc = tcase_create("take");
	tcase_add_test(tc, test_take_returns_a_passed_listening_socket);
	tcase_add_test(tc, test_take_without_variables_passes_nothing);
	tcase_add_test(tc, test_take_ignores_what_is_passed_to_another_process);
	tcase_add_test(tc, test_take_refuses_what_is_no_listening_inet_stream_socket);
	tcase_add_test(tc, test_take_refuses_two_sockets_and_a_missing_one);
	tcase_add_test(tc, test_take_refuses_bad_values_for_us);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(activation_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
