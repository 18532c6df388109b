/*
 * fuzz_framing.c - the checks of server_framing.c on the head of a
 * request, called as server_intake.c calls them: the request target as
 * sent (server_framing_target(), what MHD's URI log callback sees), each
 * header with the lengths MHD knows (server_framing_add_n(), so a name or
 * value may hold a NUL), then server_framing_verdict().
 *
 * An input is a request line "METHOD TARGET VERSION" (method up to the
 * first space, version after the last) and header lines "Name: value",
 * each ended by '\n' (a '\r' before it dropped), blanks around the value
 * dropped.  A line may hold a NUL; a header line without ':' ends the
 * head.
 *
 * Properties besides "no crash, no hang":
 * - the verdict on the target is one of server_framing_target()'s; a
 *   target it accepts has no space, control byte or '#', only complete
 *   %XX escapes and no %00 in its path, is "*", a path, or http(s)://;
 *   and the path served for an accepted absolute-form target (cut at '?'
 *   and decoded as MHD does, then server_framing_absolute_path()) starts
 *   with '/' or is empty, and decodes to no NUL;
 * - server_framing_add_n() does what the lengths say: a field with a NUL
 *   or another control byte (HTAB aside) in its value, or a name that is
 *   not a token, makes the request malformed (400 bad_header); any other
 *   gives the same framing as server_framing_add() on the C strings;
 * - the verdict agrees with what the headers said (a request that goes
 *   on has a known method, at most one framing, a well-formed length
 *   within the limit, one valid Host for HTTP/1.1); a refusal is 400, 413
 *   or 501 with a reason and a label of the documented set, and
 *   server_framing_check() gives the same status.
 */
#include <stdio.h>
#include <strings.h>

#include "fuzz.h"
#include "server_framing.h"

#define MAX_BODY 65536
#define MAX_HEADERS 64

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/*
 * Cuts the line at s (up to end) at its "\n" or "\r\n", NUL-terminating
 * it; *len its length (NULs in it kept).  Returns the next line, or NULL.
 */
static char *
next_line(char *s, char *end, size_t *len)
{
	char *nl = memchr(s, '\n', (size_t)(end - s));
	char *stop = nl != NULL ? nl : end;

	if (stop > s && stop[-1] == '\r')
		stop--;
	*stop = '\0';
	*len = (size_t)(stop - s);
	return nl != NULL ? nl + 1 : NULL;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static int
hex(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/*
 * What MHD hands the access handler for target: cut at the first '?' and
 * percent-decoded, into a new string (*len bytes, a decoded %00 kept).
 */
static char *
mhd_url(const char *target, size_t *len)
{
	size_t n = strcspn(target, "?"), i, o = 0;
	char *url = malloc(n + 1);

	FUZZ_ASSERT(url != NULL);
	for (i = 0; i < n; i++) {
		if (target[i] == '%' && i + 2 < n && is_hex(target[i + 1]) &&
		    is_hex(target[i + 2])) {
			url[o++] = (char)(hex(target[i + 1]) * 16 +
					  hex(target[i + 2]));
			i += 2;
		} else {
			url[o++] = target[i];
		}
	}
	url[o] = '\0';
	*len = o;
	return url;
}

/* The verdict on target, and what it says of the path served. */
static void
check_target(const char *target)
{
	const struct server_target_verdict *v = server_framing_target(target);
	const char *p, *path;
	size_t path_len, url_len;
	char *url;

	FUZZ_ASSERT(v != NULL && server_framing_is_target_verdict(v));
	if (v->status != 0) {
		FUZZ_ASSERT(v->status == 400 || v->status == 414);
		FUZZ_ASSERT(v->why != NULL && *v->why != '\0');
		FUZZ_ASSERT(v->reason != NULL);
		FUZZ_ASSERT((v->status == 414) ==
			    !strcmp(v->reason, "uri_too_long"));
		return;
	}
	for (p = target; *p != '\0'; p++) {
		FUZZ_ASSERT((unsigned char)*p > 0x20 && *p != 0x7f &&
			    *p != '#');
		if (*p == '%')
			FUZZ_ASSERT(is_hex(p[1]) && is_hex(p[2]));
	}
	switch (v->form) {
	case SERVER_TARGET_ASTERISK:
		FUZZ_ASSERT(!strcmp(target, "*"));
		return;
	case SERVER_TARGET_ORIGIN:
		FUZZ_ASSERT(target[0] == '/');
		path = target;
		break;
	case SERVER_TARGET_ABSOLUTE:
		FUZZ_ASSERT(!strncasecmp(target, "http://", 7) ||
			    !strncasecmp(target, "https://", 8));
		path = server_framing_absolute_path(target);
		FUZZ_ASSERT(path >= target && path <= target + strlen(target));
		FUZZ_ASSERT(*path == '/' || *path == '?' || *path == '\0');
		break;
	default:
		FUZZ_ASSERT(!"a form of its own");
		return;
	}
	path_len = strcspn(path, "?");
	FUZZ_ASSERT(path_len <= SERVER_FRAMING_PATH_MAX);
	p = strstr(path, "%00");
	FUZZ_ASSERT(p == NULL || (size_t)(p - path) >= path_len);
	/* What begin_request() serves: the decoded url, or its path. */
	url = mhd_url(target, &url_len);
	FUZZ_ASSERT(strlen(url) == url_len);	/* no NUL cuts it short */
	if (v->form == SERVER_TARGET_ABSOLUTE) {
		path = server_framing_absolute_path(url);
		FUZZ_ASSERT(*path == '/' || *path == '\0');
	}
	free(url);
}

/*
 * One "Name: value" line (len bytes, NULs kept) into f with the lengths,
 * and into g with the C strings, as a reference; counts in *bad whether
 * it holds a byte that add_n must refuse.  False for a line without ':'.
 */
static bool
add_header(struct server_framing *f, struct server_framing *g, char *line,
	   size_t len, bool *bad)
{
	char *colon = memchr(line, ':', len), *v, *end = line + len;
	size_t name_len, value_len, i;

	if (colon == NULL)
		return false;
	*colon = '\0';
	name_len = (size_t)(colon - line);
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	value_len = (size_t)(end - v);
	if (name_len == 0)
		*bad = true;
	for (i = 0; i < name_len; i++)
		if (!server_framing_is_token((char[]){ line[i], '\0' }))
			*bad = true;
	for (i = 0; i < value_len; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') ||
		    v[i] == 0x7f)
			*bad = true;
	server_framing_add_n(f, line, name_len, v, value_len);
	server_framing_add(g, line, v);
	return true;
}

static bool
is_reason(const char *r)
{
	static const char *const reasons[] = {
		"unknown_method", "bad_header", "unsupported_transfer_coding",
		"body_too_large", "bad_framing",
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcmp(r, reasons[i]))
			return true;
	return false;
}

/* The verdict on the headers in f (g: the same taken as C strings). */
static void
check_verdict(const struct server_framing *f, const struct server_framing *g,
	      bool bad, const char *method, const char *version)
{
	const char *why = NULL, *reason = NULL, *why2 = NULL;
	struct server_framing h;
	unsigned status;

	/* add_n is add, and a verdict on the bytes the lengths cover. */
	FUZZ_ASSERT(bad == (f->bad_field != NULL));
	h = *f;
	h.bad_field = NULL;
	FUZZ_ASSERT(!memcmp(&h, g, sizeof(h)));

	status = server_framing_verdict(f, method, version, MAX_BODY, &why,
					&reason);
	FUZZ_ASSERT(server_framing_check(f, method, version, MAX_BODY,
					 &why2) == status);
	if (status == 0) {
		FUZZ_ASSERT(server_framing_is_token(method));
		FUZZ_ASSERT(server_framing_is_known_method(method));
		FUZZ_ASSERT(f->bad_field == NULL);
		FUZZ_ASSERT(f->content_lengths <= 1);
		FUZZ_ASSERT(!(f->content_lengths && f->transfer_encodings));
		FUZZ_ASSERT(!f->bad_length && !f->other_coding);
		FUZZ_ASSERT(!f->transfer_encodings ||
			    (f->chunked_last && !f->chunked_twice));
		FUZZ_ASSERT(f->content_lengths == 0 ||
			    f->content_length <= MAX_BODY);
		FUZZ_ASSERT(!strcmp(version, "HTTP/1.0") ||
			    (f->has_host && f->hosts == 1));
		FUZZ_ASSERT(!f->bad_host);
		return;
	}
	FUZZ_ASSERT(status == 400 || status == 413 || status == 501);
	FUZZ_ASSERT(why != NULL && *why != '\0');
	FUZZ_ASSERT(reason != NULL && is_reason(reason));
	FUZZ_ASSERT((status == 413) == !strcmp(reason, "body_too_large"));
	if (status == 501)
		FUZZ_ASSERT(!strcmp(reason, "unknown_method") ||
			    !strcmp(reason, "unsupported_transfer_coding"));
	if (!strcmp(reason, "unknown_method"))
		FUZZ_ASSERT(server_framing_is_token(method) &&
			    !server_framing_is_known_method(method));
	if (server_framing_is_known_method(method) && bad)
		FUZZ_ASSERT(status == 400 && !strcmp(reason, "bad_header"));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_framing f, g;
	char *copy = malloc(size + 1), *line, *next, *target, *version;
	char *end;
	size_t len, nheaders = 0;
	bool bad = false;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + size;
	memset(&f, 0, sizeof(f));
	memset(&g, 0, sizeof(g));
	next = next_line(copy, end, &len);
	/* "METHOD TARGET VERSION"; MHD refuses a line without three parts. */
	target = memchr(copy, ' ', len);
	version = target != NULL ? strrchr(target + 1, ' ') : NULL;
	if (target == NULL || version == NULL || memchr(copy, '\0', len))
		goto out;	/* no three parts, or a NUL in the line */
	*target++ = '\0';
	*version++ = '\0';
	check_target(target);
	for (line = next; line != NULL && nheaders++ < MAX_HEADERS;
	     line = next) {
		next = next_line(line, end, &len);
		if (len == 0 || !add_header(&f, &g, line, len, &bad))
			break;
	}
	check_verdict(&f, &g, bad, copy, version);
out:
	free(copy);
	return 0;
}
