/*
 * check_server_listen.c - where the server listens and whom it owes an
 * answer at a stop: a listening socket passed in (socket activation),
 * which the quiesce must close without ending the manager's copy; and the
 * connections accepted whose first request is not in yet (server_owed(),
 * server_request_first()).  A real server on 127.0.0.1, raw-socket
 * clients.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

struct fixture {
	struct server *server;
	/* Written on the HTTP thread, read by the test once answered. */
	atomic_int firsts[4];	/* server_request_first() of each request */
	atomic_int nrequests;
};

/* Answers "ok" at once, noting whether the request was its connection's
 * first. */
static enum server_handled
answer_ok(struct server_request *req, void *arg)
{
	struct fixture *fx = arg;
	int n = atomic_load(&fx->nrequests);

	if (n < 4) {
		atomic_store(&fx->firsts[n], server_request_first(req));
		atomic_store(&fx->nrequests, n + 1);
	}
	server_respond(req, 200, "text/plain", strdup("ok"), 2);
	return SERVER_DONE;
}

/* Starts fx's server, one thread, on addr or (addr NULL) on listen_fd. */
static void
start(struct fixture *fx, const struct sockaddr_in *addr, int listen_fd)
{
	struct server_options opts = { 0 };

	opts.addr = (const struct sockaddr *)addr;
	opts.addrlen = sizeof(*addr);
	opts.listen_fd = listen_fd;
	opts.threads = 1;
	opts.max_connections = 16;
	opts.connection_memory = 16384;
	opts.connection_timeout_s = 10;
	opts.max_body = 65536;
	opts.handler = answer_ok;
	opts.handler_arg = fx;
	fx->server = server_new(&opts);
	ck_assert_ptr_nonnull(fx->server);
}

static int
listening_socket(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);	/* blocking */

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	return fd;
}

static int
connect_to(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { 5, 0 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	return fd;
}

/* Sends a keep-alive GET on fd and reads its whole answer ("ok"). */
static void
get(int fd)
{
	static const char request[] = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[1024];
	size_t got = 0;
	ssize_t n;

	ck_assert_int_eq(write(fd, request, strlen(request)),
			 (ssize_t)strlen(request));
	while (got < 4 || memcmp(buf + got - 4, "\r\nok", 4) != 0) {
		n = read(fd, buf + got, sizeof(buf) - got);
		ck_assert_msg(n > 0, "no whole answer: %zd (%s)", n,
			      n < 0 ? strerror(errno) : "closed");
		got += (size_t)n;
	}
	ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
}

static uint16_t
port_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* Polls f(s) until it is want, for up to 5 s. */
static void
wait_for(size_t (*f)(struct server *), struct server *s, size_t want)
{
	const struct timespec ms = { 0, 1000000 };
	int i;

	for (i = 0; i < 5000 && f(s) != want; i++)
		nanosleep(&ms, NULL);
	ck_assert_uint_eq(f(s), want);
}

START_TEST(test_serves_a_passed_socket_and_closes_only_its_copy)
{
	struct fixture fx = { 0 };
	int manager = listening_socket();	/* the manager's copy */
	int passed = dup(manager), fd, conn;
	char where[64];

	start(&fx, NULL, passed);
	ck_assert(fcntl(manager, F_GETFL) & O_NONBLOCK);
	ck_assert_int_eq(fcntl(passed, F_GETFD), FD_CLOEXEC);
	ck_assert_uint_eq(server_port(fx.server), port_of(manager));
	ck_assert_int_eq(server_address(fx.server, where, sizeof(where)), 0);
	ck_assert_int_eq(strncmp(where, "127.0.0.1:", 10), 0);
	ck_assert_int_eq(atoi(where + 10), port_of(manager));
	fd = connect_to(port_of(manager));
	get(fd);
	close(fd);

	server_quiesce(fx.server);
	ck_assert_int_eq(fcntl(passed, F_GETFD), -1);	/* closed */
	/* The manager's copy still listens: a client waits in its queue. */
	fd = connect_to(port_of(manager));
	conn = accept(manager, NULL, NULL);
	ck_assert_int_ge(conn, 0);
	close(conn);
	close(fd);
	server_free(fx.server);
	close(manager);
}
END_TEST

START_TEST(test_a_connection_is_owed_until_its_first_request)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET };
	struct fixture fx = { 0 };
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	start(&fx, &sin, -1);
	fd = connect_to(server_port(fx.server));
	/* Accepted, nothing sent: owed, not active. */
	wait_for(server_owed, fx.server, 1);
	ck_assert_uint_eq(server_active(fx.server), 0);
	get(fd);
	get(fd);	/* kept alive */
	wait_for(server_owed, fx.server, 0);
	ck_assert_int_eq(atomic_load(&fx.nrequests), 2);
	ck_assert_int_eq(atomic_load(&fx.firsts[0]), 1);
	ck_assert_int_eq(atomic_load(&fx.firsts[1]), 0);
	/* A connection that closes without a request is owed nothing. */
	close(fd);
	fd = connect_to(server_port(fx.server));
	wait_for(server_owed, fx.server, 1);
	close(fd);
	wait_for(server_owed, fx.server, 0);
	server_free(fx.server);
}
END_TEST

static Suite *
server_listen_suite(void)
{
	Suite *s = suite_create("server_listen");
	TCase *tc = tcase_create("listen");

	tcase_add_test(tc, test_serves_a_passed_socket_and_closes_only_its_copy);
	tcase_add_test(tc, test_a_connection_is_owed_until_its_first_request);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(server_listen_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
