/*
 * server_pipe.c - see server_pipe.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server_pipe.h"

/* A buffer this large is let go of once emptied. */
#define PIPE_KEEP_CAP 65536

struct server_pipe *
server_pipe_new(size_t limit)
{
	struct server_pipe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->limit = limit;
	return p;
}

void
server_pipe_free(struct server_pipe *p)
{
	if (p == NULL)
		return;
	free(p->buf);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

bool
server_pipe_open(const struct server_pipe *p)
{
	return !p->ended && !p->failed && !p->gone && !p->closed;
}

bool
server_pipe_full(const struct server_pipe *p, size_t len)
{
	return p->len > 0 && (p->len > p->limit || len > p->limit - p->len);
}

void
server_pipe_drop(struct server_pipe *p)
{
	free(p->buf);
	p->buf = NULL;
	p->off = p->len = p->cap = 0;
}

/* Room for len more bytes.  Returns 0, or -1 out of memory. */
static int
reserve(struct server_pipe *p, size_t len)
{
	size_t cap;
	char *buf;

	if (p->cap - p->off - p->len >= len)
		return 0;
	if (p->cap - p->len >= len) {	/* room enough once moved down */
		memmove(p->buf, p->buf + p->off, p->len);
		p->off = 0;
		return 0;
	}
	if (len > SIZE_MAX / 2 - p->len)
		return -1;
	cap = p->cap > 0 ? p->cap : 1024;
	while (cap < p->len + len)
		cap *= 2;
	if (p->off > 0) {
		memmove(p->buf, p->buf + p->off, p->len);
		p->off = 0;
	}
	buf = realloc(p->buf, cap);
	if (buf == NULL)
		return -1;
	p->buf = buf;
	p->cap = cap;
	return 0;
}

int
server_pipe_put(struct server_pipe *p, const char *data, size_t len)
{
	if (reserve(p, len) != 0)
		return -1;
	if (len > 0)
		memcpy(p->buf + p->off + p->len, data, len);
	p->len += len;
	return 0;
}

size_t
server_pipe_take(struct server_pipe *p, char *buf, size_t max)
{
	size_t n = p->len < max ? p->len : max;

	memcpy(buf, p->buf + p->off, n);
	p->off += n;
	p->len -= n;
	p->taken += n;
	if (p->len == 0) {
		p->off = 0;
		if (p->cap > PIPE_KEEP_CAP)
			server_pipe_drop(p);
	}
	return n;
}
