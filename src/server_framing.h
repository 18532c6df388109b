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
	bool chunked;			/* chunked seen */
	bool chunked_last;		/* ...and last of the codings so far */
	bool chunked_twice;		/* chunked applied more than once */
	bool other_coding;		/* a coding other than chunked */
	bool not_plain;			/* a Transfer-Encoding value that is
					 * not exactly "chunked" (any case) */
	bool bad_length;		/* a Content-Length not a number */
	bool has_host;
	unsigned hosts;			/* Host headers seen */
	bool bad_host;			/* a Host not uri-host [":" port] */
	const char *bad_field;		/* why a field line is malformed, or
					 * NULL (a string constant) */
	unsigned long long content_length;
};

/* Takes one request header into f (zeroed before the first).  Can't fail. */
void server_framing_add(struct server_framing *f, const char *name,
			const char *value);

/*
 * The same, with the lengths libmicrohttpd knows: a name that is not a
 * token, or a value with a NUL or another control byte (HTAB aside),
 * makes the request malformed (RFC 9110 5.1, 5.5).  Can't fail.
 */
void server_framing_add_n(struct server_framing *f, const char *name,
			  size_t name_len, const char *value,
			  size_t value_len);

/*
 * The verdict on a whole request: 0 to go on, or the status to answer
 * with now (400, 413) and *why, a constant string for the problem's
 * detail.  version is "HTTP/1.1" or "HTTP/1.0"; a body may be at most
 * max_body bytes.
 */
unsigned server_framing_check(const struct server_framing *f,
			      const char *method, const char *version,
			      size_t max_body, const char **why);

/*
 * server_framing_check(), and *reason, a constant label for the metrics
 * when it refuses: unknown_method, bad_header, unsupported_transfer_coding,
 * body_too_large or bad_framing.  A 501 is a well-formed method this
 * server does not know, or a transfer coding it does not implement (RFC
 * 9110 9.1, RFC 9112 6.1).
 */
unsigned server_framing_verdict(const struct server_framing *f,
				const char *method, const char *version,
				size_t max_body, const char **why,
				const char **reason);

/* The longest request target path taskpoold takes, in bytes as sent. */
#define SERVER_FRAMING_PATH_MAX 2048

/* The forms of a request target that are served (RFC 9112 3.2). */
enum server_target_form {
	SERVER_TARGET_ORIGIN,	/* "/path?query" */
	SERVER_TARGET_ABSOLUTE,	/* "http://host/path?query": served as
				 * its path */
	SERVER_TARGET_ASTERISK,	/* "*": OPTIONS only */
};

/* A verdict on a request target: status 0 to go on, in form. */
struct server_target_verdict {
	unsigned status;		/* 0, 400 or 414 */
	enum server_target_form form;
	const char *why;		/* for the problem's detail */
	const char *reason;		/* for the metrics */
};

/*
 * The verdict on a request target as sent, before it is decoded: a static
 * constant, never NULL.  400 for a control byte, space or '#'; a '%' not
 * followed by two hex digits; %00 in the path (reason nul_in_path); a form
 * not served, or a '%' in the host of an absolute-form target (both
 * bad_target).  414 for a path over SERVER_FRAMING_PATH_MAX
 * (uri_too_long).
 */
const struct server_target_verdict *server_framing_target(const char *target);

/* True if p is one of server_framing_target()'s verdicts. */
bool server_framing_is_target_verdict(const void *p);

/*
 * The path of an absolute-form target ("http://h/p?q" -> "/p?q"), a
 * pointer into it; "" when it has none (serve it as "/").  Can't fail.
 */
const char *server_framing_absolute_path(const char *target);

/* RFC 9110 9: true if method is one of the methods it defines, or PATCH. */
bool server_framing_is_known_method(const char *method);

/* RFC 9110 5.6.2: true if s is a non-empty token (a valid method). */
bool server_framing_is_token(const char *s);

#endif
