/*
 * server_body.h - a request body, buffered up to a limit.
 *
 * libmicrohttpd hands a body over in pieces as they arrive; the buffer
 * grows geometrically, so a 64 KiB body in 100-byte pieces costs a dozen
 * reallocations, not hundreds (each one copying all that came before).
 */
#ifndef TASKPOOLD_SERVER_BODY_H
#define TASKPOOLD_SERVER_BODY_H

#include <stdbool.h>
#include <stddef.h>

struct server_body {
	char *data;		/* owned; NUL-terminated, NULL while empty */
	size_t len;
	size_t cap;		/* bytes allocated at data */
	unsigned grows;		/* reallocations so far (for the tests) */
	bool too_large;		/* more than max came: the rest is dropped */
};

/*
 * Appends len bytes of data, unless the body would pass max bytes: then
 * it only sets too_large (and keeps what it has).  Returns 0, or -1 when
 * out of memory (the body is unchanged).
 */
int server_body_append(struct server_body *b, const char *data, size_t len,
		       size_t max);

/* Frees what b holds and empties it; too_large stays.  Can't fail. */
void server_body_clear(struct server_body *b);

#endif
