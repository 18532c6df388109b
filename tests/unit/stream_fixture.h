/*
 * stream_fixture.h - what the streamed-answer tests share: a real server
 * on 127.0.0.1 whose handler begins a stream for each request, and a raw
 * client that reads chunks as they come.  Every wait is bound by an event
 * (a condition, a socket) with a deadline generous for a loaded machine;
 * a helper fails the test (ck_assert) rather than return an error.
 */
#ifndef TASKPOOLD_TESTS_STREAM_FIXTURE_H
#define TASKPOOLD_TESTS_STREAM_FIXTURE_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server.h"

#define DEADLINE_MS 20000	/* any one wait; a loaded 2-core machine */
#define MAX_STREAMS 64

struct fx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct server *server;
	struct server_request *reqs[MAX_STREAMS];	/* references */
	size_t nreqs;
	int refused;		/* server_stream_begin() said -1 */
	unsigned gone_true, gone_false;
	/* The seam: hold a stream writer inside its resume window. */
	bool hold, in_window, free_returned, free_returned_inside;
};

/* Set by a test's writer thread: only it is held by the seam. */
extern _Thread_local bool fx_is_writer;

struct timespec fx_in_ms(long ms);

/* Waits, with f->lock held, until c holds; fails after the deadline. */
#define WAIT_LOCKED(f, c) do {						\
	struct timespec until_ = fx_in_ms(DEADLINE_MS);			\
	while (!(c))							\
		ck_assert_msg(pthread_cond_timedwait(&(f)->cond,	\
			&(f)->lock, &until_) == 0, "timed out: " #c);	\
} while (0)

#define WAIT_UNTIL(f, c) do {						\
	pthread_mutex_lock(&(f)->lock);					\
	WAIT_LOCKED(f, c);						\
	pthread_mutex_unlock(&(f)->lock);				\
} while (0)

/*
 * Starts a server with `threads` HTTP threads and the given stream bound
 * (0: the default).  Its handler begins a 200 application/x-ndjson stream
 * for each request (path "/answered": answers 204 first, and counts the
 * refused begin in `refused`), sets a gone function that counts its calls,
 * and puts a reference to the request in fx->reqs.
 */
void fx_start(struct fx *fx, unsigned threads, size_t stream_buffer);
/* Drops the test's references (after server_free()) and the fixture. */
void fx_end(struct fx *fx);

struct client {
	int fd;
	char buf[1 << 16];
	size_t len;
	bool eof;
};

/* Connects, with SO_RCVBUF rcvbuf if > 0, and sends request. */
void client_open(struct client *c, uint16_t port, const char *request,
		 int rcvbuf);
/* One read of what the socket has, waiting for it.  False at EOF. */
bool client_read(struct client *c);
/* Reads up to the blank line; returns the head (static), consumed. */
const char *client_head(struct client *c);
/* Reads one whole chunk into out (NUL-terminated); returns its size. */
size_t client_chunk(struct client *c, char *out, size_t outsize);
/*
 * Dechunks a whole body into out (NUL-terminated).  Returns whether it
 * ended with the last chunk, and nothing after.
 */
bool dechunk(const char *buf, size_t len, char *out, size_t outsize);
bool client_ends_with_last_chunk(const struct client *c);
bool has_header(const char *head, const char *line);

#endif
