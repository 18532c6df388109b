/*
 * check_server.c - the server's parts that need no client (framing checks,
 * request bodies, answer serialization), and the hand-over of an answer
 * to a stopping server, with a real server on 127.0.0.1 and a test seam
 * that holds a publisher inside its window.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "server.h"
#include "server_body.h"
#include "server_framing.h"

/* ---- framing --------------------------------------------------------------- */

/* The verdict on headers given as "name", "value", ..., NULL. */
static unsigned
verdict(const char *method, const char *version, const char **why, ...)
{
	struct server_framing f = { 0 };
	const char *name, *value;
	va_list ap;

	va_start(ap, why);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		server_framing_add(&f, name, value);
	}
	va_end(ap);
	return server_framing_check(&f, method, version, 65536, why);
}

START_TEST(test_framing_accepts_a_plain_request)
{
	const char *why = NULL;

	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host", "x",
				  NULL), 0);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "host", "x",
				  "Content-Length", "65536", NULL), 0);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked", NULL), 0);
	/* HTTP/1.0 needs no Host. */
	ck_assert_uint_eq(verdict("GET", "HTTP/1.0", &why, NULL), 0);
}
END_TEST

START_TEST(test_framing_refuses_what_smuggles_or_cannot_be_framed)
{
	const char *why = NULL;

	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, NULL), 400);
	ck_assert_str_eq(why, "missing Host header");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Content-Length", "1",
				  "Content-Length", "1", NULL), 400);
	ck_assert_str_eq(why, "more than one Content-Length header");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Content-Length", "1",
				  "Transfer-Encoding", "chunked", NULL), 400);
	ck_assert_str_eq(why, "both Content-Length and Transfer-Encoding");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "gzip", NULL), 400);
	ck_assert_str_eq(why, "Transfer-Encoding must end in chunked, once");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked, gzip",
				  NULL), 400);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked",
				  "Transfer-Encoding", "chunked", NULL), 400);
	ck_assert_str_eq(why, "Transfer-Encoding must end in chunked, once");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked,chunked",
				  NULL), 400);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.0", &why,
				  "Transfer-Encoding", "chunked", NULL), 400);
	ck_assert_str_eq(why, "Transfer-Encoding in an HTTP/1.0 request");
	/*
	 * libmicrohttpd 0.9.75 frames only a value that is exactly
	 * "chunked" (any case); with any other it reads the body until the
	 * connection closes.  What it would not frame is refused.
	 */
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "CHUNKED", NULL), 0);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked;x=1",
				  NULL), 400);
	ck_assert_str_eq(why, "Transfer-Encoding must be \"chunked\" alone");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked,", NULL), 400);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", ", chunked", NULL), 400);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "chunked ", NULL), 400);
	/* Framed by chunked, but gzip is not implemented: RFC 9112 6.1. */
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Transfer-Encoding", "gzip, chunked",
				  NULL), 501);
	ck_assert_str_eq(why, "unsupported transfer coding (only chunked "
			 "is)");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Content-Length", "-1", NULL), 400);
	ck_assert_str_eq(why, "malformed Content-Length");
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Content-Length", "12x", NULL), 400);
	ck_assert_uint_eq(verdict("POST", "HTTP/1.1", &why, "Host", "x",
				  "Content-Length", "65537", NULL), 413);
	ck_assert_str_eq(why, "request body too large");
	ck_assert_uint_eq(verdict("P\xffST", "HTTP/1.1", &why, "Host", "x",
				  NULL), 400);
	ck_assert_str_eq(why, "malformed request method");
}
END_TEST

START_TEST(test_framing_methods_hosts_and_fields)
{
	struct server_framing f = { 0 };
	const char *why = NULL, *reason = NULL;

	/* A token, but no method: 501; methods are case-sensitive. */
	ck_assert_uint_eq(verdict("FOO", "HTTP/1.1", &why, "Host", "x",
				  NULL), 501);
	ck_assert_str_eq(why, "unknown request method");
	ck_assert_uint_eq(verdict("get", "HTTP/1.1", &why, "Host", "x",
				  NULL), 501);
	ck_assert_uint_eq(verdict("PATCH", "HTTP/1.1", &why, "Host", "x",
				  NULL), 0);
	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host", "x",
				  "Host", "y", NULL), 400);
	ck_assert_str_eq(why, "more than one Host header");
	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host", "a b",
				  NULL), 400);
	ck_assert_str_eq(why, "malformed Host header");
	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host", "u@h",
				  NULL), 400);
	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host",
				  "[::1]:8080", NULL), 0);
	ck_assert_uint_eq(verdict("GET", "HTTP/1.1", &why, "Host", "",
				  NULL), 0);
	/* HTTP/1.2 is answered as 1.1: it needs a Host too. */
	ck_assert_uint_eq(verdict("GET", "HTTP/1.2", &why, NULL), 400);

	server_framing_add_n(&f, "Host", 4, "x", 1);
	server_framing_add_n(&f, "X-A", 3, "a\tb", 3);
	ck_assert_uint_eq(server_framing_verdict(&f, "GET", "HTTP/1.1", 10,
						 &why, &reason), 0);
	server_framing_add_n(&f, "X-B", 3, "a\0b", 3);
	ck_assert_uint_eq(server_framing_verdict(&f, "GET", "HTTP/1.1", 10,
						 &why, &reason), 400);
	ck_assert_str_eq(why, "control character in a header field value");
	ck_assert_str_eq(reason, "bad_header");
	memset(&f, 0, sizeof(f));
	server_framing_add_n(&f, "X-A ", 4, "1", 1);
	ck_assert_uint_eq(server_framing_verdict(&f, "GET", "HTTP/1.0", 10,
						 &why, &reason), 400);
	ck_assert_str_eq(why, "malformed header field name");
	memset(&f, 0, sizeof(f));
	ck_assert_uint_eq(server_framing_verdict(&f, "BREW", "HTTP/1.0", 10,
						 &why, &reason), 501);
	ck_assert_str_eq(reason, "unknown_method");
}
END_TEST

START_TEST(test_framing_targets)
{
	const struct server_target_verdict *v;
	char long_path[SERVER_FRAMING_PATH_MAX + 3];

	ck_assert_uint_eq(server_framing_target("/a/b?c=%41")->status, 0);
	ck_assert_int_eq(server_framing_target("/a")->form,
			 SERVER_TARGET_ORIGIN);
	v = server_framing_target("http://h:1/a?b");
	ck_assert_uint_eq(v->status, 0);
	ck_assert_int_eq(v->form, SERVER_TARGET_ABSOLUTE);
	ck_assert_str_eq(server_framing_absolute_path("HTTP://h:1/a?b"),
			 "/a?b");
	ck_assert_str_eq(server_framing_absolute_path("http://h"), "");
	/*
	 * MHD decodes the target before it is served (found by
	 * fuzz_framing): an escape in the authority would decode to a NUL
	 * that cuts the path off, or to a '?' or '/' that moves it.
	 */
	v = server_framing_target("http://h%00/a");
	ck_assert_uint_eq(v->status, 400);
	ck_assert_str_eq(v->reason, "bad_target");
	ck_assert_uint_eq(server_framing_target("https://h%3Fx/a")->status,
			  400);
	ck_assert_uint_eq(server_framing_target("http://h%2F..")->status, 400);
	ck_assert_uint_eq(server_framing_target("http://h/a%3F")->status, 0);
	ck_assert_uint_eq(server_framing_target("http://h?%41")->status, 0);
	ck_assert_int_eq(server_framing_target("*")->form,
			 SERVER_TARGET_ASTERISK);
	ck_assert_str_eq(server_framing_target("/a%00")->reason,
			 "nul_in_path");
	/* An encoded NUL in the query is the parameters' to judge. */
	ck_assert_uint_eq(server_framing_target("/a?x=%00")->status, 0);
	ck_assert_str_eq(server_framing_target("/%zz")->why,
			 "malformed percent-encoding in the request target");
	ck_assert_uint_eq(server_framing_target("/a%4")->status, 400);
	ck_assert_uint_eq(server_framing_target("/a%")->status, 400);
	ck_assert_uint_eq(server_framing_target("/a b")->status, 400);
	ck_assert_uint_eq(server_framing_target("/a#b")->status, 400);
	ck_assert_uint_eq(server_framing_target("/a\x7f")->status, 400);
	ck_assert_str_eq(server_framing_target("a")->reason, "bad_target");
	ck_assert_uint_eq(server_framing_target("h:80")->status, 400);
	ck_assert_uint_eq(server_framing_target("")->status, 400);
	long_path[0] = '/';
	memset(long_path + 1, 'a', SERVER_FRAMING_PATH_MAX - 1);
	long_path[SERVER_FRAMING_PATH_MAX] = '\0';
	ck_assert_uint_eq(server_framing_target(long_path)->status, 0);
	strcpy(long_path + SERVER_FRAMING_PATH_MAX, "a");
	v = server_framing_target(long_path);
	ck_assert_uint_eq(v->status, 414);
	ck_assert_str_eq(v->reason, "uri_too_long");
	ck_assert(server_framing_is_target_verdict(v));
	ck_assert(!server_framing_is_target_verdict(long_path));
}
END_TEST

START_TEST(test_method_tokens)
{
	ck_assert(server_framing_is_token("GET"));
	ck_assert(server_framing_is_token("M-SEARCH"));
	ck_assert(!server_framing_is_token(""));
	ck_assert(!server_framing_is_token("GE T"));
	ck_assert(!server_framing_is_token("GET\r"));
	ck_assert(!server_framing_is_token("(GET)"));
}
END_TEST

/* ---- bodies ---------------------------------------------------------------- */

START_TEST(test_body_grows_geometrically)
{
	struct server_body b = { 0 };
	char piece[100];
	size_t i;

	memset(piece, 'a', sizeof(piece));
	/* 64 KiB in 100-byte pieces: one realloc per piece was 656. */
	for (i = 0; i < 655; i++)
		ck_assert_int_eq(server_body_append(&b, piece, sizeof(piece),
						    65536), 0);
	ck_assert_uint_eq(b.len, 65500);
	ck_assert(!b.too_large);
	ck_assert_uint_le(b.grows, 8);
	ck_assert_uint_le(b.cap, 65537);
	ck_assert_uint_eq(strlen(b.data), 65500);
	server_body_clear(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_body_over_the_limit_is_flagged_and_kept_short)
{
	struct server_body b = { 0 };

	ck_assert_int_eq(server_body_append(&b, "0123456789", 10, 16), 0);
	ck_assert_int_eq(server_body_append(&b, "0123456789", 10, 16), 0);
	ck_assert(b.too_large);
	ck_assert_uint_eq(b.len, 10);
	/* Once too large, the rest is dropped too. */
	ck_assert_int_eq(server_body_append(&b, "x", 1, 16), 0);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_str_eq(b.data, "0123456789");
	server_body_clear(&b);
}
END_TEST

/* ---- answer serialization -------------------------------------------------- */

static size_t jansson_allocs;

static void *
counting_malloc(size_t size)
{
	jansson_allocs++;
	return malloc(size);
}

/* An array of n strings of 64 bytes: about 67 bytes each in JSON. */
static json_t *
big_array(size_t n)
{
	json_t *a = json_array();
	char s[65];
	size_t i;

	memset(s, 'x', 64);
	s[64] = '\0';
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(s));
	return a;
}

START_TEST(test_large_answer_is_serialized_once)
{
	static char big[1 << 20];
	json_t *v = big_array(1000);	/* ~67 KB, over the 4 KiB buffer */
	size_t once, expected_len, len;
	char *s;

	/* What one pass costs jansson, into a buffer that is big enough. */
	json_set_alloc_funcs(counting_malloc, free);
	jansson_allocs = 0;
	expected_len = json_dumpb(v, big, sizeof(big), 0);
	once = jansson_allocs;
	ck_assert_uint_gt(expected_len, 4096);

	jansson_allocs = 0;
	s = http_json_dump(json_incref(v), &len);
	ck_assert_ptr_nonnull(s);
	/* Two passes (measure, then json_dumps) cost twice and more. */
	ck_assert_uint_eq(jansson_allocs, once);
	json_set_alloc_funcs(malloc, free);
	ck_assert_uint_eq(len, expected_len);
	ck_assert_uint_eq(strlen(s), len);
	ck_assert_int_eq(memcmp(s, big, len), 0);
	free(s);
	json_decref(v);
}
END_TEST

START_TEST(test_small_answer_round_trips)
{
	size_t len = 0;
	char *s = http_json_dump(json_pack("{s:i}", "a", 1), &len);

	ck_assert_str_eq(s, "{\"a\": 1}");
	ck_assert_uint_eq(len, 8);
	free(s);
	ck_assert_ptr_null(http_json_dump(NULL, &len));
}
END_TEST

/* ---- a publisher and a stopping server ---------------------------------- */

struct fixture {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct server *server;
	struct server_request *req;	/* a reference, from the handler */
	bool hold;			/* the seam holds the publisher */
	bool in_window;
	bool free_returned;
	bool free_returned_inside;	/* the defect */
};

static enum server_handled
hold_request(struct server_request *req, void *arg)
{
	struct fixture *fx = arg;

	pthread_mutex_lock(&fx->lock);
	fx->req = server_request_ref(req);
	pthread_cond_broadcast(&fx->cond);
	pthread_mutex_unlock(&fx->lock);
	return SERVER_LATER;
}

static struct timespec
in_ms(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/*
 * The seam, on the publisher's thread after it resumed the connection:
 * wait until the HTTP thread has sent the answer and finished with the
 * connection (nothing then keeps the request on the server's lists), let
 * the test call server_free(), and see whether it returns while this
 * publisher has yet to make its last touch of the server.  The 300 ms
 * bound is how long a wrong server_free() gets to show itself; a right
 * one cannot return before this function does.
 */
static void
hold_publisher(void *arg)
{
	struct fixture *fx = arg;
	struct timespec until = in_ms(5000);
	const struct timespec ms = { 0, 1000000 };

	if (!fx->hold)
		return;
	while (server_active(fx->server) > 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		ck_assert_msg(now.tv_sec <= until.tv_sec,
			      "the connection never finished");
		nanosleep(&ms, NULL);
	}
	pthread_mutex_lock(&fx->lock);
	fx->in_window = true;
	pthread_cond_broadcast(&fx->cond);
	until = in_ms(300);
	while (!fx->free_returned &&
	       pthread_cond_timedwait(&fx->cond, &fx->lock, &until) == 0)
		;
	fx->free_returned_inside = fx->free_returned;
	pthread_mutex_unlock(&fx->lock);
}

static void *
publish_answer(void *arg)
{
	struct fixture *fx = arg;

	server_respond(fx->req, 200, "text/plain", strdup("done"), 4);
	server_request_unref(fx->req);
	return NULL;
}

static int
connect_and_send(uint16_t port, const char *request)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	ck_assert_int_eq(write(fd, request, strlen(request)),
			 (ssize_t)strlen(request));
	return fd;
}

/*
 * Readies fx and starts its server on 127.0.0.1, with one thread; the
 * port is the kernel's.
 */
static void
fixture_start(struct fixture *fx)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET };
	struct server_options opts = { 0 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	opts.addr = (struct sockaddr *)&sin;
	opts.addrlen = sizeof(sin);
	opts.threads = 1;
	opts.max_connections = 16;
	opts.connection_memory = 16384;
	opts.connection_timeout_s = 10;
	opts.max_body = 65536;
	opts.handler = hold_request;
	opts.handler_arg = fx;
	opts.test_after_resume = hold_publisher;
	opts.test_arg = fx;
	pthread_mutex_init(&fx->lock, NULL);
	pthread_cond_init(&fx->cond, NULL);
	fx->server = server_new(&opts);
	ck_assert_ptr_nonnull(fx->server);
}

/* Releases what fixture_start() made but the server (freed by the test). */
static void
fixture_end(struct fixture *fx)
{
	pthread_cond_destroy(&fx->cond);
	pthread_mutex_destroy(&fx->lock);
}

START_TEST(test_free_waits_for_a_publisher_after_its_resume)
{
	struct fixture fx = { .hold = true };
	struct timespec until;
	pthread_t publisher;
	int fd;

	fixture_start(&fx);

	fd = connect_and_send(server_port(fx.server), "GET /x HTTP/1.1\r\n"
			      "Host: x\r\nConnection: close\r\n\r\n");
	pthread_mutex_lock(&fx.lock);
	until = in_ms(5000);
	while (fx.req == NULL)
		ck_assert_int_eq(pthread_cond_timedwait(&fx.cond, &fx.lock,
							&until), 0);
	pthread_mutex_unlock(&fx.lock);

	ck_assert_int_eq(pthread_create(&publisher, NULL, publish_answer,
					&fx), 0);
	pthread_mutex_lock(&fx.lock);
	until = in_ms(5000);
	while (!fx.in_window)
		ck_assert_int_eq(pthread_cond_timedwait(&fx.cond, &fx.lock,
							&until), 0);
	pthread_mutex_unlock(&fx.lock);

	server_free(fx.server);
	pthread_mutex_lock(&fx.lock);
	fx.free_returned = true;
	pthread_cond_broadcast(&fx.cond);
	pthread_mutex_unlock(&fx.lock);
	pthread_join(publisher, NULL);
	ck_assert_msg(!fx.free_returned_inside, "server_free() returned while "
		      "a publisher had yet to leave the server");
	close(fd);
	fixture_end(&fx);
}
END_TEST

/*
 * A request is the stop's to answer only once it is complete: before
 * that its HTTP thread may be answering it alone (a framing error, a 413),
 * and nothing guards the answer's fields against a second writer.  Here a
 * request whose body is still coming is in flight (server_active) but
 * not on the open list: the stop closes its connection and answers
 * nothing.  (It used to be listed from its first byte, and answered 503.)
 */
START_TEST(test_stop_leaves_a_request_whose_body_is_coming_alone)
{
	struct fixture fx = { .hold = false };
	const struct timespec ms = { 0, 1000000 };
	FILE *log_file;
	char buf[256];
	ssize_t n;
	int fd, i, log_fd;

	fixture_start(&fx);
	fd = connect_and_send(server_port(fx.server), "POST /x HTTP/1.1\r\n"
			      "Host: x\r\nContent-Length: 10\r\n\r\n01234");
	for (i = 0; i < 5000 && server_active(fx.server) == 0; i++)
		nanosleep(&ms, NULL);
	ck_assert_uint_eq(server_active(fx.server), 1);
	/* What the stop logs, to see whom it answered. */
	log_fd = dup(STDERR_FILENO);
	log_file = tmpfile();
	ck_assert_ptr_nonnull(log_file);
	dup2(fileno(log_file), STDERR_FILENO);
	server_free(fx.server);
	dup2(log_fd, STDERR_FILENO);
	close(log_fd);
	rewind(log_file);
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, log_file);
	buf[n > 0 ? n : 0] = '\0';
	fclose(log_file);
	ck_assert_msg(strstr(buf, "with 503 at stop") == NULL, "the stop "
		      "claimed a half-received request: %s", buf);
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	ck_assert_msg(n <= 0, "the stop answered a half-received request: "
		      "%s", buf);
	ck_assert_ptr_null(fx.req);	/* the handler never saw it */
	close(fd);
	fixture_end(&fx);
}
END_TEST

static Suite *
server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc;

	tc = tcase_create("framing");
	tcase_add_test(tc, test_framing_accepts_a_plain_request);
	tcase_add_test(tc, test_framing_refuses_what_smuggles_or_cannot_be_framed);
	tcase_add_test(tc, test_framing_methods_hosts_and_fields);
	tcase_add_test(tc, test_framing_targets);
	tcase_add_test(tc, test_method_tokens);
	suite_add_tcase(s, tc);

	tc = tcase_create("body");
	tcase_add_test(tc, test_body_grows_geometrically);
	tcase_add_test(tc, test_body_over_the_limit_is_flagged_and_kept_short);
	suite_add_tcase(s, tc);

	tc = tcase_create("answers");
	tcase_add_test(tc, test_large_answer_is_serialized_once);
	tcase_add_test(tc, test_small_answer_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_add_test(tc, test_free_waits_for_a_publisher_after_its_resume);
	tcase_add_test(tc, test_stop_leaves_a_request_whose_body_is_coming_alone);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(server_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
