/*
 * server_framing.c - see server_framing.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server_framing.h"

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
		if (strcasecmp(value, "chunked") != 0)
			f->other_coding = true;
	} else if (!strcasecmp(name, "Host")) {
		f->has_host = true;
	}
}

bool
server_framing_is_token(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(tchar, *s) != NULL))
			return false;
	return true;
}

unsigned
server_framing_check(const struct server_framing *f, const char *method,
		     const char *version, size_t max_body, const char **why)
{
	/*
	 * MHD 0.9.75 passes any bytes as the method; they would end up in
	 * a 405's detail and the log (found by a review: "P\xffST").
	 */
	if (!server_framing_is_token(method)) {
		*why = "malformed request method";
		return 400;
	}
	/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. */
	if (!strcmp(version, "HTTP/1.1") && !f->has_host) {
		*why = "missing Host header";
		return 400;
	}
	if (f->content_lengths > 1) {
		*why = "more than one Content-Length header";
		return 400;
	}
	if (f->content_lengths == 1 && f->transfer_encodings > 0) {
		*why = "both Content-Length and Transfer-Encoding";
		return 400;
	}
	/*
	 * MHD 0.9.75 frames only a lone "Transfer-Encoding: chunked".  With
	 * any other value ("gzip", "gzip, chunked") it waits for a body it
	 * cannot delimit and the request is never answered; two headers
	 * ("chunked" twice) it takes as chunked where a proxy may not.  RFC
	 * 9112 6.3: answer 400 and close.  (Found by tests/system/test_api.py.)
	 */
	if (f->transfer_encodings > 1 || f->other_coding) {
		*why = "unsupported Transfer-Encoding (only chunked is)";
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
