/*
 * server_framing.c - see server_framing.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server_framing.h"

/* RFC 9110 5.6.2: tchar. */
static bool
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * RFC 9112 3.2: Host is uri-host [":" port], or empty.  Checked by its
 * characters (reg-name, IP-literal, port): a space, '/', '@', '?' or '#'
 * is no host.
 */
static bool
is_host(const char *v)
{
	for (; *v != '\0'; v++)
		if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		      (*v >= '0' && *v <= '9') ||
		      strchr("-._~!$&'()*+,;=:[]%", *v) != NULL))
			return false;
	return true;
}

/*
 * One Transfer-Encoding value, a list of codings (parameters skipped):
 * chunked must come last and once (RFC 9112 6.3, 7); any other is one
 * this server does not implement (6.1).
 */
static void
add_codings(struct server_framing *f, const char *p)
{
	size_t n;

	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			return;
		n = strcspn(p, " \t;,");
		if (n == 7 && !strncasecmp(p, "chunked", 7)) {
			f->chunked_twice |= f->chunked;
			f->chunked = f->chunked_last = true;
		} else {
			f->other_coding = true;
			f->chunked_last = false;
		}
		p += strcspn(p, ",");
	}
}

void
server_framing_add(struct server_framing *f, const char *name,
		   const char *value)
{
	char *end;

	if (!strcasecmp(name, "Content-Length")) {
		f->content_lengths++;
		errno = 0;
		f->content_length = strtoull(value, &end, 10);
		/* strtoull takes "-1" and " 1": a length is digits only. */
		if (errno != 0 || end == value || *end != '\0' ||
		    *value < '0' || *value > '9')
			f->bad_length = true;
	} else if (!strcasecmp(name, "Transfer-Encoding")) {
		f->transfer_encodings++;
		add_codings(f, value);
		if (strcasecmp(value, "chunked") != 0)
			f->not_plain = true;
	} else if (!strcasecmp(name, "Host")) {
		f->has_host = true;
		f->hosts++;
		if (!is_host(value))
			f->bad_host = true;
	}
}

void
server_framing_add_n(struct server_framing *f, const char *name,
		     size_t name_len, const char *value, size_t value_len)
{
	size_t i;

	if (f->bad_field == NULL) {
		if (name_len == 0 || strlen(name) != name_len)
			f->bad_field = "malformed header field name";
		for (i = 0; i < name_len && f->bad_field == NULL; i++)
			if (!is_tchar(name[i]))
				f->bad_field = "malformed header field name";
		/* RFC 9110 5.5: a NUL, CR, LF or other control byte. */
		for (i = 0; i < value_len && f->bad_field == NULL; i++)
			if (((unsigned char)value[i] < 0x20 &&
			     value[i] != '\t') || value[i] == 0x7f)
				f->bad_field = "control character in a "
					       "header field value";
	}
	server_framing_add(f, name, value);
}

bool
server_framing_is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_tchar(*s))
			return false;
	return true;
}

bool
server_framing_is_known_method(const char *method)
{
	static const char *const known[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
		"TRACE", "PATCH",
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(method, known[i]))
			return true;
	return false;
}

/* The Host rules of RFC 9112 3.2; 0 or 400 with *why. */
static unsigned
check_host(const struct server_framing *f, const char *version,
	   const char **why)
{
	/* HTTP/1.1, or a later 1.x, which is answered as 1.1. */
	if (strcmp(version, "HTTP/1.0") != 0 && !f->has_host) {
		*why = "missing Host header";
		return 400;
	}
	if (f->hosts > 1) {
		*why = "more than one Host header";
		return 400;
	}
	if (f->bad_host) {
		*why = "malformed Host header";
		return 400;
	}
	return 0;
}

/* Content-Length and Transfer-Encoding; 0, 400, 413 or 501 with *why. */
static unsigned
check_length(const struct server_framing *f, const char *version,
	     size_t max_body, const char **why)
{
	if (f->content_lengths > 1) {
		*why = "more than one Content-Length header";
		return 400;
	}
	if (f->content_lengths == 1 && f->transfer_encodings > 0) {
		*why = "both Content-Length and Transfer-Encoding";
		return 400;
	}
	/* RFC 9112 6.1: faulty framing in HTTP/1.0. */
	if (f->transfer_encodings > 0 && !strcmp(version, "HTTP/1.0")) {
		*why = "Transfer-Encoding in an HTTP/1.0 request";
		return 400;
	}
	/*
	 * MHD 0.9.75 frames only a lone "Transfer-Encoding: chunked".  With
	 * any other value ("gzip") it waits for a body it cannot delimit and
	 * the request is never answered; two headers ("chunked" twice) it
	 * takes as chunked where a proxy may not.  RFC 9112 6.3: without a
	 * final chunked the length is unknown, 400 and close; with one, a
	 * coding before it that we do not implement is a 501 (6.1).
	 */
	if (f->transfer_encodings > 0 &&
	    (!f->chunked_last || f->chunked_twice)) {
		*why = "Transfer-Encoding must end in chunked, once";
		return 400;
	}
	if (f->other_coding) {
		*why = "unsupported transfer coding (only chunked is)";
		return 501;
	}
	/*
	 * MHD 0.9.75 frames only a value that is exactly "chunked" (any
	 * case): "chunked;x=1", "chunked," or a trailing blank it reads as
	 * a body that ends when the connection does, where a proxy that
	 * takes it as chunked would append its next request to this one's.
	 */
	if (f->not_plain) {
		*why = "Transfer-Encoding must be \"chunked\" alone";
		return 400;
	}
	if (f->bad_length) {
		*why = "malformed Content-Length";
		return 400;
	}
	if (f->content_lengths == 1 && f->content_length > max_body) {
		*why = "request body too large";
		return 413;
	}
	return 0;
}

unsigned
server_framing_verdict(const struct server_framing *f, const char *method,
		       const char *version, size_t max_body, const char **why,
		       const char **reason)
{
	unsigned status;

	*reason = "bad_framing";
	/*
	 * MHD 0.9.75 passes any bytes as the method; they would end up in
	 * a 405's detail and the log (found by a review: "P\xffST").
	 */
	if (!server_framing_is_token(method)) {
		*why = "malformed request method";
		return 400;
	}
	if (!server_framing_is_known_method(method)) {
		*why = "unknown request method";
		*reason = "unknown_method";
		return 501;
	}
	if (f->bad_field != NULL) {
		*why = f->bad_field;
		*reason = "bad_header";
		return 400;
	}
	if ((status = check_host(f, version, why)) != 0)
		return status;
	status = check_length(f, version, max_body, why);
	if (status == 413)
		*reason = "body_too_large";
	else if (status == 501)
		*reason = "unsupported_transfer_coding";
	return status;
}

unsigned
server_framing_check(const struct server_framing *f, const char *method,
		     const char *version, size_t max_body, const char **why)
{
	const char *reason;

	return server_framing_verdict(f, method, version, max_body, why,
				      &reason);
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* "http://" or "https://", any case: the length of it, or 0. */
static size_t
scheme_length(const char *t)
{
	if (!strncasecmp(t, "http://", 7))
		return 7;
	if (!strncasecmp(t, "https://", 8))
		return 8;
	return 0;
}

const char *
server_framing_absolute_path(const char *target)
{
	const char *p = target + scheme_length(target);

	return p + strcspn(p, "/?");
}

enum { T_ORIGIN, T_ABSOLUTE, T_ASTERISK, T_BAD_BYTE, T_BAD_PERCENT,
       T_NUL, T_FORM, T_AUTHORITY, T_LONG, T_COUNT };

static const struct server_target_verdict verdicts[T_COUNT] = {
	[T_ORIGIN] = { 0, SERVER_TARGET_ORIGIN, NULL, NULL },
	[T_ABSOLUTE] = { 0, SERVER_TARGET_ABSOLUTE, NULL, NULL },
	[T_ASTERISK] = { 0, SERVER_TARGET_ASTERISK, NULL, NULL },
	[T_BAD_BYTE] = { 400, SERVER_TARGET_ORIGIN, "malformed request "
		"target (a space, control character or '#')", "bad_target" },
	[T_BAD_PERCENT] = { 400, SERVER_TARGET_ORIGIN, "malformed "
		"percent-encoding in the request target", "bad_target" },
	/*
	 * libmicrohttpd decodes the path into a C string, which would end
	 * at an encoded NUL: "/greet/a%00b" would run as "/greet/a".
	 */
	[T_NUL] = { 400, SERVER_TARGET_ORIGIN, "the path holds an encoded "
		"NUL (%00)", "nul_in_path" },
	[T_FORM] = { 400, SERVER_TARGET_ORIGIN, "the request target must be "
		"a path (origin-form)", "bad_target" },
	/*
	 * MHD decodes the whole target before it is served as its path:
	 * "http://h%3Fx/a" would be served as "?x/a", "http://h%00/a" as
	 * "/" (found by tests/fuzz/fuzz_framing).  No host needs an escape.
	 */
	[T_AUTHORITY] = { 400, SERVER_TARGET_ORIGIN, "the host of an "
		"absolute-form request target holds a '%'", "bad_target" },
	[T_LONG] = { 414, SERVER_TARGET_ORIGIN, "request target path too "
		"long", "uri_too_long" },
};

bool
server_framing_is_target_verdict(const void *p)
{
	size_t i;

	for (i = 0; i < T_COUNT; i++)
		if (p == &verdicts[i])
			return true;
	return false;
}

const struct server_target_verdict *
server_framing_target(const char *target)
{
	const char *p, *path;
	size_t path_len;
	int form;

	for (p = target; *p != '\0'; p++) {
		/* RFC 3986: no control byte, space or fragment is sent. */
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
			return &verdicts[T_BAD_BYTE];
		if (*p == '%' && !(is_hex(p[1]) && is_hex(p[2])))
			return &verdicts[T_BAD_PERCENT];
	}
	if (!strcmp(target, "*"))
		return &verdicts[T_ASTERISK];
	if (target[0] == '/') {
		form = T_ORIGIN;
		path = target;
	} else if (scheme_length(target) > 0) {
		form = T_ABSOLUTE;
		path = server_framing_absolute_path(target);
		p = target + scheme_length(target);
		if (memchr(p, '%', (size_t)(path - p)) != NULL)
			return &verdicts[T_AUTHORITY];
	} else {
		return &verdicts[T_FORM];
	}
	path_len = strcspn(path, "?");
	p = strstr(path, "%00");
	if (p != NULL && (size_t)(p - path) < path_len)
		return &verdicts[T_NUL];
	if (path_len > SERVER_FRAMING_PATH_MAX)
		return &verdicts[T_LONG];
	return &verdicts[form];
}
