/*
 * stream_fixture.c - see stream_fixture.h.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream_fixture.h"

_Thread_local bool fx_is_writer;

struct timespec
fx_in_ms(long ms)
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

static void
count_gone(struct server_request *req, void *arg, bool gone)
{
	struct fx *fx = arg;

	(void)req;
	pthread_mutex_lock(&fx->lock);
	if (gone)
		fx->gone_true++;
	else
		fx->gone_false++;
	pthread_cond_broadcast(&fx->cond);
	pthread_mutex_unlock(&fx->lock);
}

/* Begins a stream for each request and hands it to the test. */
static enum server_handled
stream_handler(struct server_request *req, void *arg)
{
	struct fx *fx = arg;

	if (strcmp(server_request_path(req), "/answered") == 0) {
		server_respond(req, 204, NULL, NULL, 0);
		pthread_mutex_lock(&fx->lock);
		fx->refused += server_stream_begin(req, 200, "text/plain") != 0;
		pthread_cond_broadcast(&fx->cond);
		pthread_mutex_unlock(&fx->lock);
		return SERVER_DONE;
	}
	server_request_on_gone(req, count_gone, fx);
	server_add_header(req, "Cache-Control", "no-cache");
	if (server_stream_begin(req, 200, "application/x-ndjson") != 0) {
		server_respond_problem(req, 500, "no stream");
		return SERVER_DONE;
	}
	pthread_mutex_lock(&fx->lock);
	fx->reqs[fx->nreqs++] = server_request_ref(req);
	pthread_cond_broadcast(&fx->cond);
	pthread_mutex_unlock(&fx->lock);
	return SERVER_LATER;
}

/*
 * The seam: a writer that resumed a parked stream (and only a writer of
 * this test) stops after its resume, before its last touch of the server,
 * and sees whether server_free() returns meanwhile.  300 ms is how long a
 * wrong server_free() gets to show itself.
 */
static void
hold_writer(void *arg)
{
	struct fx *fx = arg;
	struct timespec until;

	if (!fx_is_writer)
		return;
	pthread_mutex_lock(&fx->lock);
	if (!fx->hold || fx->in_window) {
		pthread_mutex_unlock(&fx->lock);
		return;
	}
	fx->in_window = true;
	pthread_cond_broadcast(&fx->cond);
	until = fx_in_ms(300);
	while (!fx->free_returned &&
	       pthread_cond_timedwait(&fx->cond, &fx->lock, &until) == 0)
		;
	fx->free_returned_inside = fx->free_returned;
	pthread_mutex_unlock(&fx->lock);
}

void
fx_start(struct fx *fx, unsigned threads, size_t stream_buffer)
{
	static struct sockaddr_in sin = { .sin_family = AF_INET };
	struct server_options opts = { 0 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	opts.addr = (struct sockaddr *)&sin;
	opts.addrlen = sizeof(sin);
	opts.threads = threads;
	opts.max_connections = 2 * MAX_STREAMS;
	opts.connection_memory = 16384;
	opts.connection_timeout_s = 30;
	opts.max_body = 65536;
	opts.stream_buffer = stream_buffer;
	opts.handler = stream_handler;
	opts.handler_arg = fx;
	opts.test_after_resume = hold_writer;
	opts.test_arg = fx;
	pthread_mutex_init(&fx->lock, NULL);
	pthread_cond_init(&fx->cond, NULL);
	fx->server = server_new(&opts);
	ck_assert_ptr_nonnull(fx->server);
}

void
fx_end(struct fx *fx)
{
	size_t i;

	for (i = 0; i < fx->nreqs; i++)
		server_request_unref(fx->reqs[i]);
	pthread_cond_destroy(&fx->cond);
	pthread_mutex_destroy(&fx->lock);
}

/* ---- a raw client ------------------------------------------------------- */

void
client_open(struct client *c, uint16_t port, const char *request, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->len = 0;
	c->eof = false;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sin,
				 sizeof(sin)), 0);
	ck_assert_int_eq(write(c->fd, request, strlen(request)),
			 (ssize_t)strlen(request));
}

bool
client_read(struct client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	ck_assert_msg(poll(&p, 1, DEADLINE_MS) == 1, "the server sent "
		      "nothing for %d ms", DEADLINE_MS);
	ck_assert_uint_lt(c->len, sizeof(c->buf));
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0) {
		c->eof = true;
		return false;
	}
	c->len += (size_t)n;
	return true;
}

static void
consume(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

const char *
client_head(struct client *c)
{
	static char head[4096];
	char *end;

	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		ck_assert_msg(client_read(c), "EOF before the headers end");
	end += 4;
	ck_assert_uint_lt((size_t)(end - c->buf), sizeof(head));
	memcpy(head, c->buf, (size_t)(end - c->buf));
	head[end - c->buf] = '\0';
	consume(c, (size_t)(end - c->buf));
	return head;
}

/*
 * Parses one chunk at the head of buf (no trailers: the last chunk is
 * "0\r\n\r\n"): its data and length.  Returns the bytes it takes, 0 if
 * it is not all there yet; fails on bad framing.
 */
static size_t
parse_chunk(const char *buf, size_t len, const char **data, size_t *size)
{
	const char *eol = memmem(buf, len, "\r\n", 2);
	char *end;
	size_t hdr;

	if (eol == NULL)
		return 0;
	*size = strtoul(buf, &end, 16);
	ck_assert_msg(end == eol && end > buf, "bad chunk header");
	hdr = (size_t)(eol - buf) + 2;
	if (len < hdr + *size + 2)
		return 0;
	ck_assert_msg(memcmp(buf + hdr + *size, "\r\n", 2) == 0,
		      "chunk not ended by CRLF");
	*data = buf + hdr;
	return hdr + *size + 2;
}

size_t
client_chunk(struct client *c, char *out, size_t outsize)
{
	const char *data;
	size_t size, used;

	while ((used = parse_chunk(c->buf, c->len, &data, &size)) == 0)
		ck_assert_msg(client_read(c), "EOF inside a chunk");
	ck_assert_uint_lt(size, outsize);
	memcpy(out, data, size);
	out[size] = '\0';
	consume(c, used);
	return size;
}

bool
dechunk(const char *buf, size_t len, char *out, size_t outsize)
{
	const char *data;
	size_t size, used, n = 0;

	while ((used = parse_chunk(buf, len, &data, &size)) != 0) {
		if (size == 0) {
			out[n] = '\0';
			return used == len;
		}
		ck_assert_uint_lt(n + size, outsize);
		memcpy(out + n, data, size);
		n += size;
		buf += used;
		len -= used;
	}
	out[n] = '\0';
	return false;
}

bool
client_ends_with_last_chunk(const struct client *c)
{
	return c->len >= 5 && memcmp(c->buf + c->len - 5, "0\r\n\r\n", 5) == 0;
}

bool
has_header(const char *head, const char *line)
{
	return strcasestr(head, line) != NULL;
}

