/*
 * server_framing.h - checks of a request's framing that libmicrohttpd
 * 0.9.75 does not make.
 *
 * Two Content-Length headers, or one with Transfer-Encoding, are how
 * requests get smuggled past a proxy; a method that is not a token ends up
 * in logs and answers.  These functions see only names and values, no
 * socket, so that they are tested on their own (tests/unit).
 */
#ifndef TASKPOOLD_SERVER_FRAMING_H
#define TASKPOOLD_SERVER_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

/* What the headers of one request said about its framing. */
struct server_framing {
	unsigned content_lengths;	/* Content-Length headers seen */
	unsigned transfer_encodings;	/* Transfer-Encoding headers seen */
	bool other_coding;		/* a Transfer-Encoding not "chunked" */
	bool bad_length;		/* a Content-Length not a number */
	bool has_host;
	unsigned long long content_length;
};

/* Takes one request header into f (zeroed before the first).  Can't fail. */
void server_framing_add(struct server_framing *f, const char *name,
			const char *value);

/*
 * The verdict on a whole request: 0 to go on, or the status to answer
 * with now (400, 413) and *why, a constant string for the problem's
 * detail.  version is "HTTP/1.1" or "HTTP/1.0"; a body may be at most
 * max_body bytes.
 */
unsigned server_framing_check(const struct server_framing *f,
			      const char *method, const char *version,
			      size_t max_body, const char **why);

/* RFC 9110 5.6.2: true if s is a non-empty token (a valid method). */
bool server_framing_is_token(const char *s);

#endif
