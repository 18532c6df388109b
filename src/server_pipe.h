/*
 * server_pipe.h - what a streamed answer holds between its writers (any
 * thread) and libmicrohttpd's content reader: the pieces not yet sent, in
 * one buffer, and the stream's states, all under one lock.
 *
 * A container and no more: server_stream.c takes the lock, says what each
 * state means and who resumes the connection.  A request owns its pipe and
 * frees it with itself (server_request.c), so that writers, who hold the
 * request, may call in after the connection is gone.  Nothing here knows a
 * request, a socket or the server.
 */
#ifndef TASKPOOLD_SERVER_PIPE_H
#define TASKPOOLD_SERVER_PIPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server_pipe {
	pthread_mutex_t lock;	/* guards all below */
	char *buf;		/* waiting: buf[off .. off + len) */
	size_t off, len, cap;
	size_t limit;		/* see server.h: the bound */
	uint64_t taken;		/* bytes given to the reader, in all */
	bool parked;		/* the reader suspended the connection */
	bool ended;		/* server_stream_end(): send, then the end */
	bool failed;		/* cut off: close without the last chunk */
	bool gone;		/* the client hung up (reported once) */
	bool closed;		/* MHD is done with the connection */
};

/* A new, empty pipe bounded by limit bytes unsent; NULL out of memory. */
struct server_pipe *server_pipe_new(size_t limit);

/* Frees a pipe (with its request: nobody holds its lock).  NULL is ok. */
void server_pipe_free(struct server_pipe *p);

/* The rest are called under p->lock. */

/* Whether writes are still taken: not ended, failed, gone nor closed. */
bool server_pipe_open(const struct server_pipe *p);

/*
 * Whether len more bytes would pass the bound.  The first piece never
 * does, however long: only what waits unsent is bounded.
 */
bool server_pipe_full(const struct server_pipe *p, size_t len);

/* Appends len bytes (copied).  Returns 0, or -1 out of memory. */
int server_pipe_put(struct server_pipe *p, const char *data, size_t len);

/*
 * Moves up to max of the waiting bytes (there are some) into buf, counts
 * them in taken, and returns how many.  A large buffer is let go of once emptied.
 */
size_t server_pipe_take(struct server_pipe *p, char *buf, size_t max);

/* Drops what waits. */
void server_pipe_drop(struct server_pipe *p);

#endif
