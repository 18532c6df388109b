/*
 * http.c - see http.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

const char *
http_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

json_t *
http_problem_new(unsigned status, const char *detail)
{
	json_t *p = json_object();

	if (p == NULL)
		return NULL;
	/* "about:blank": the title is the status's reason phrase (RFC 9457). */
	if (json_object_set_new(p, "type", json_string("about:blank")) ||
	    json_object_set_new(p, "title", json_string(http_reason(status))) ||
	    json_object_set_new(p, "status", json_integer(status)) ||
	    (detail != NULL &&
	     json_object_set_new(p, "detail", json_string(detail)))) {
		json_decref(p);
		return NULL;
	}
	return p;
}

void
http_problem_open(struct json_out *o, unsigned status, const char *detail)
{
	json_out_literal(o, "{\"type\": \"about:blank\", \"title\": \"");
	json_out_escaped(o, http_reason(status), strlen(http_reason(status)));
	json_out_literal(o, "\", \"status\": ");
	json_out_integer(o, status);
	if (detail != NULL) {
		json_out_literal(o, ", \"detail\": ");
		json_out_string(o, detail);
	}
}

char *
http_problem_body(unsigned *status, const char *detail, size_t *len)
{
	struct json_out o;
	char *body;

	json_out_init(&o);
	http_problem_open(&o, *status, detail);
	json_out_literal(&o, "}");
	body = json_out_finish(&o, len);
	return body != NULL ? body : http_answer_fallback(status, len);
}

/*
 * One pass into a buffer with a stack part (json_out.h): an answer is
 * never serialized twice to learn its size.  As json_dumps() with flags
 * 0, only an object or an array is a document.
 */
char *
http_json_dump(json_t *value, size_t *len)
{
	struct json_out o;
	char *s;

	if (value == NULL)
		return NULL;
	json_out_init(&o);
	if (json_is_object(value) || json_is_array(value))
		json_out_value(&o, value);
	else
		json_out_discard(&o);
	s = json_out_finish(&o, len);
	json_decref(value);
	return s;
}

char *
http_answer_fallback(unsigned *status, size_t *len)
{
	static const char fallback[] = "{\"type\": \"about:blank\", "
		"\"title\": \"Internal Server Error\", \"status\": 500}";
	char *body;

	*status = 500;
	*len = 0;
	body = strdup(fallback);
	if (body != NULL)
		*len = sizeof(fallback) - 1;
	return body;
}

char *
http_answer_body(json_t *value, unsigned *status, size_t *len)
{
	char *body = http_json_dump(value, len);

	return body != NULL ? body : http_answer_fallback(status, len);
}

char *
http_problem_answer(unsigned status, const char *detail, size_t *len)
{
	static const char head[] = "HTTP/1.1 %u %s\r\n"
		"Content-Type: " HTTP_PROBLEM_JSON "\r\n"
		"Connection: close\r\nContent-Length: %zu\r\n\r\n";
	unsigned s = status;
	size_t blen;
	char *body = http_problem_body(&s, detail, &blen);
	char *all;
	int n;

	if (body == NULL)
		return NULL;
	n = snprintf(NULL, 0, head, s, http_reason(s), blen);
	all = n > 0 ? malloc((size_t)n + blen + 1) : NULL;
	if (all != NULL) {
		snprintf(all, (size_t)n + 1, head, s, http_reason(s), blen);
		memcpy(all + n, body, blen);
		all[(size_t)n + blen] = '\0';
		*len = (size_t)n + blen;
	}
	free(body);
	return all;
}
