/*
 * check_server_stream.c - streamed answers (server_stream.c) with a real
 * server on 127.0.0.1 and raw-socket clients that read the chunks as they
 * come (stream_fixture.h): one stream at a time here, many at once in
 * check_server_stream_many.c.
 */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "stream_fixture.h"

/* ---- one stream, piece by piece ------------------------------------------ */

#define PIECES 5

struct piece_writer {
	struct server_request *req;
	int ack;		/* read end: the client's go for each piece */
	int rc[PIECES];
	int rc_after_end;
};

static void *
write_pieces(void *arg)
{
	struct piece_writer *w = arg;
	char piece[32], c;
	int i;

	for (i = 0; i < PIECES; i++) {
		if (read(w->ack, &c, 1) != 1)
			return NULL;	/* the client failed */
		snprintf(piece, sizeof(piece), "{\"piece\": %d}\n", i);
		w->rc[i] = server_stream_write(w->req, piece, strlen(piece));
	}
	if (read(w->ack, &c, 1) != 1)
		return NULL;
	server_stream_end(w->req);
	w->rc_after_end = server_stream_write(w->req, "x", 1);
	return NULL;
}

START_TEST(test_headers_then_each_piece_in_its_own_chunk_then_the_end)
{
	struct fx fx = { 0 };
	struct piece_writer w = { 0 };
	struct client c;
	const char *head;
	char chunk[256], want[32];
	pthread_t writer;
	int ack[2], i;

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server),
		    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	ck_assert_int_eq(pipe(ack), 0);
	w.req = fx.reqs[0];
	w.ack = ack[0];
	ck_assert_int_eq(pthread_create(&writer, NULL, write_pieces, &w), 0);

	/* Nothing is written yet: the writer waits for our first go. */
	head = client_head(&c);
	ck_assert_msg(strncmp(head, "HTTP/1.1 200 ", 13) == 0, "%s", head);
	ck_assert_msg(has_header(head, "\r\nTransfer-Encoding: chunked\r\n"),
		      "%s", head);
	ck_assert_msg(has_header(head, "\r\nContent-Type: application/"
				 "x-ndjson\r\n"), "%s", head);
	ck_assert_msg(has_header(head, "\r\nCache-Control: no-cache\r\n"),
		      "%s", head);
	ck_assert_uint_eq(c.len, 0);	/* no body before a write */

	for (i = 0; i < PIECES; i++) {
		ck_assert_int_eq(write(ack[1], "g", 1), 1);
		/* The next piece is written only after our next go. */
		client_chunk(&c, chunk, sizeof(chunk));
		snprintf(want, sizeof(want), "{\"piece\": %d}\n", i);
		ck_assert_str_eq(chunk, want);
		ck_assert_uint_eq(c.len, 0);
	}
	ck_assert_int_eq(write(ack[1], "e", 1), 1);
	ck_assert_uint_eq(client_chunk(&c, chunk, sizeof(chunk)), 0);
	pthread_join(writer, NULL);
	for (i = 0; i < PIECES; i++)
		ck_assert_int_eq(w.rc[i], 0);
	ck_assert_int_eq(w.rc_after_end, -1);
	/* Whole, so not gone; released once MHD is done with it. */
	WAIT_UNTIL(&fx, fx.gone_false == 1);
	ck_assert_uint_eq(fx.gone_true, 0);
	ck_assert_uint_eq(server_clients_gone(fx.server), 0);

	/* Keep-alive: the connection takes another request. */
	ck_assert_int_eq(write(c.fd, "GET /answered HTTP/1.1\r\nHost: x\r\n\r\n",
			       35), 35);
	head = client_head(&c);
	ck_assert_msg(strncmp(head, "HTTP/1.1 204 ", 13) == 0, "%s", head);
	WAIT_UNTIL(&fx, fx.refused == 1);	/* answered: no stream */

	server_free(fx.server);
	close(c.fd);
	close(ack[0]);
	close(ack[1]);
	fx_end(&fx);
}
END_TEST

/* HTTP/1.0 has no chunks: the body runs to the connection's close. */
START_TEST(test_http10_client_gets_the_body_up_to_the_close)
{
	struct fx fx = { 0 };
	struct client c;
	const char *head;

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server), "GET /s HTTP/1.0\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	head = client_head(&c);
	ck_assert_msg(strncmp(head, "HTTP/1.", 7) == 0 &&
		      strncmp(head + 8, " 200 ", 5) == 0, "%s", head);
	ck_assert_msg(!has_header(head, "Transfer-Encoding"), "%s", head);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "abc\n", 4), 0);
	while (c.len < 4)
		ck_assert(client_read(&c));
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "def\n", 4), 0);
	server_stream_end(fx.reqs[0]);
	while (client_read(&c))
		;
	ck_assert_uint_eq(c.len, 8);
	ck_assert_int_eq(memcmp(c.buf, "abc\ndef\n", 8), 0);
	WAIT_UNTIL(&fx, fx.gone_false == 1);
	ck_assert_uint_eq(fx.gone_true, 0);
	server_free(fx.server);
	close(c.fd);
	fx_end(&fx);
}
END_TEST

/*
 * The end comes while the connection waits, all sent: the close must come
 * at once, not at the connection's timeout (30 s here; the deadline is
 * 20 s).  An older idle connection keeps libmicrohttpd's timeout scan,
 * which starts from the least recently active one, from finding the
 * closed one by chance.
 */
START_TEST(test_http10_end_while_parked_closes_at_once)
{
	struct fx fx = { 0 };
	struct client idle, c;

	fx_start(&fx, 1, 0);
	client_open(&idle, server_port(fx.server), "", 0);
	client_open(&c, server_port(fx.server), "GET /s HTTP/1.0\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	client_head(&c);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "abc\n", 4), 0);
	while (c.len < 4)
		ck_assert(client_read(&c));
	server_stream_end(fx.reqs[0]);
	ck_assert(!client_read(&c));
	ck_assert_uint_eq(c.len, 4);
	WAIT_UNTIL(&fx, fx.gone_false == 1);
	server_free(fx.server);
	close(c.fd);
	close(idle.fd);
	fx_end(&fx);
}
END_TEST

/*
 * HEAD: the headers, not a byte more (libmicrohttpd would send a last
 * chunk), and the connection closed; the stream is then closed too.
 */
START_TEST(test_head_gets_headers_only_and_closes_the_stream)
{
	struct fx fx = { 0 };
	struct client c;
	const char *head;

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server),
		    "HEAD /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	head = client_head(&c);
	ck_assert_msg(strncmp(head, "HTTP/1.1 200 ", 13) == 0, "%s", head);
	ck_assert_msg(has_header(head, "\r\nContent-Type: application/"
				 "x-ndjson\r\n"), "%s", head);
	while (client_read(&c))
		;
	ck_assert_uint_eq(c.len, 0);
	WAIT_UNTIL(&fx, fx.gone_false == 1);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "x\n", 2), -1);
	server_stream_end(fx.reqs[0]);
	server_free(fx.server);
	close(c.fd);
	fx_end(&fx);
}
END_TEST

START_TEST(test_client_closing_mid_stream_is_gone_and_writes_fail)
{
	struct fx fx = { 0 };
	struct client c;
	char chunk[64];

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server),
		    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	client_head(&c);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "one\n", 4), 0);
	client_chunk(&c, chunk, sizeof(chunk));
	ck_assert_str_eq(chunk, "one\n");
	close(c.fd);
	WAIT_UNTIL(&fx, fx.gone_true == 1);
	ck_assert_uint_eq(server_clients_gone(fx.server), 1);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "two\n", 4), -1);
	server_stream_end(fx.reqs[0]);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "two\n", 4), -1);
	/* MHD finishes with the connection: gone ran once, not twice. */
	ck_assert_uint_eq(server_drain(fx.server,
				       (int64_t)DEADLINE_MS * 1000000), 0);
	ck_assert_uint_eq(fx.gone_true, 1);
	ck_assert_uint_eq(fx.gone_false, 0);
	server_free(fx.server);
	ck_assert_uint_eq(fx.gone_true + fx.gone_false, 1);
	fx_end(&fx);
}
END_TEST

START_TEST(test_free_ends_an_open_stream_and_returns)
{
	struct fx fx = { 0 };
	struct client c;
	char chunk[64];

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server),
		    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	client_head(&c);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "one\n", 4), 0);
	client_chunk(&c, chunk, sizeof(chunk));
	server_free(fx.server);
	/* The body was ended, not cut: the last chunk, then the close. */
	ck_assert_uint_eq(client_chunk(&c, chunk, sizeof(chunk)), 0);
	ck_assert_uint_eq(c.len, 0);
	while (client_read(&c))
		;
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "two\n", 4), -1);
	server_stream_end(fx.reqs[0]);
	ck_assert_uint_eq(fx.gone_false, 1);
	ck_assert_uint_eq(fx.gone_true, 0);
	close(c.fd);
	fx_end(&fx);
}
END_TEST

/* A client that reads nothing: the stream is cut off at its bound. */
START_TEST(test_slow_reader_cuts_the_stream_off_at_its_bound)
{
	struct fx fx = { 0 };
	static char piece[8192];
	struct client c;
	size_t written = 0;
	int rc = 0;

	memset(piece, 'x', sizeof(piece) - 1);
	piece[sizeof(piece) - 1] = '\n';
	fx_start(&fx, 1, 65536);
	client_open(&c, server_port(fx.server),
		    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 4096);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	/* Kernel buffers take some; the stream holds 64 KiB at most. */
	while (written < ((size_t)64 << 20) &&
	       (rc = server_stream_write(fx.reqs[0], piece,
					 sizeof(piece))) == 0)
		written += sizeof(piece);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(server_stream_write(fx.reqs[0], "x", 1), -1);
	/* The client reads now: what was sent, then a close, no end. */
	c.len = 0;
	while (client_read(&c))
		if (c.len > sizeof(c.buf) / 2)
			c.len = 0;	/* keep the tail only */
	ck_assert(!client_ends_with_last_chunk(&c));
	WAIT_UNTIL(&fx, fx.gone_false == 1);
	ck_assert_uint_eq(fx.gone_true, 0);
	server_free(fx.server);
	close(c.fd);
	fx_end(&fx);
}
END_TEST

/*
 * A writer that resumes a parked stream is counted until its last touch
 * of the server: server_free() must not return while it is inside.
 */
struct window_writer {
	struct fx *fx;
	struct server_request *req;
	int ack;		/* the client has read a piece */
};

static void *
write_until_held(void *arg)
{
	struct window_writer *w = arg;
	bool held = false;
	char c;
	int i;

	fx_is_writer = true;
	for (i = 0; i < 100 && !held; i++) {
		if (server_stream_write(w->req, "p\n", 2) != 0)
			break;
		pthread_mutex_lock(&w->fx->lock);
		held = w->fx->in_window;
		pthread_mutex_unlock(&w->fx->lock);
		/* Not parked that time: once read, it parks again. */
		if (!held && read(w->ack, &c, 1) != 1)
			break;
	}
	return NULL;
}

struct acker {
	struct client *c;
	int ack;
	bool ended;	/* saw the last chunk */
};

static void *
read_and_ack(void *arg)
{
	struct acker *a = arg;
	char chunk[64];

	while (client_chunk(a->c, chunk, sizeof(chunk)) > 0)
		if (write(a->ack, "a", 1) != 1)
			break;
	a->ended = true;
	return NULL;
}

START_TEST(test_free_waits_for_a_stream_writer_after_its_resume)
{
	struct fx fx = { .hold = true };
	struct window_writer w;
	struct acker a;
	struct client c;
	pthread_t writer, reader;
	int ack[2];

	fx_start(&fx, 1, 0);
	client_open(&c, server_port(fx.server),
		    "GET /s HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	WAIT_UNTIL(&fx, fx.nreqs == 1);
	client_head(&c);
	ck_assert_int_eq(pipe(ack), 0);
	w = (struct window_writer){ &fx, fx.reqs[0], ack[0] };
	a = (struct acker){ &c, ack[1], false };
	ck_assert_int_eq(pthread_create(&reader, NULL, read_and_ack, &a), 0);
	ck_assert_int_eq(pthread_create(&writer, NULL, write_until_held, &w),
			 0);
	WAIT_UNTIL(&fx, fx.in_window);
	server_free(fx.server);
	pthread_mutex_lock(&fx.lock);
	fx.free_returned = true;
	pthread_cond_broadcast(&fx.cond);
	pthread_mutex_unlock(&fx.lock);
	pthread_join(writer, NULL);
	pthread_join(reader, NULL);
	ck_assert_msg(!fx.free_returned_inside, "server_free() returned while "
		      "a stream writer had yet to leave the server");
	ck_assert(a.ended);
	close(c.fd);
	close(ack[0]);
	close(ack[1]);
	fx_end(&fx);
}
END_TEST

/* check_server_stream_many.c */
void stream_many_add_tests(TCase *stop, TCase *many);

static Suite *
server_stream_suite(void)
{
	Suite *s = suite_create("server_stream");
	TCase *tc, *stop;

	tc = tcase_create("one");
	tcase_add_test(tc, test_headers_then_each_piece_in_its_own_chunk_then_the_end);
	tcase_add_test(tc, test_http10_client_gets_the_body_up_to_the_close);
	tcase_add_test(tc, test_http10_end_while_parked_closes_at_once);
	tcase_add_test(tc, test_head_gets_headers_only_and_closes_the_stream);
	tcase_add_test(tc, test_client_closing_mid_stream_is_gone_and_writes_fail);
	tcase_add_test(tc, test_slow_reader_cuts_the_stream_off_at_its_bound);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_add_test(tc, test_free_ends_an_open_stream_and_returns);
	tcase_add_test(tc, test_free_waits_for_a_stream_writer_after_its_resume);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	stop = tc;
	tc = tcase_create("many");
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	stream_many_add_tests(stop, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(server_stream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
