/*
 * http.c - see http.h.
 */
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
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
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

char *
http_json_dump(json_t *value, size_t *len)
{
	char buf[4096];
	size_t n;
	char *s = NULL;

	if (value == NULL)
		return NULL;
	/*
	 * Into a stack buffer first: most answers fit, and it spares
	 * json_dumps()'s growing buffer (bench/callgrind).
	 */
	n = json_dumpb(value, buf, sizeof(buf), 0);
	if (n > 0 && n <= sizeof(buf)) {
		s = malloc(n + 1);
		if (s != NULL) {
			memcpy(s, buf, n);
			s[n] = '\0';
			*len = n;
		}
	} else if (n > 0) {
		s = json_dumps(value, 0);
		if (s != NULL)
			*len = strlen(s);
	}
	json_decref(value);
	return s;
}

char *
http_answer_body(json_t *value, unsigned *status, size_t *len)
{
	static const char fallback[] = "{\"type\": \"about:blank\", "
		"\"title\": \"Internal Server Error\", \"status\": 500}";
	char *body = http_json_dump(value, len);

	if (body != NULL)
		return body;
	*status = 500;
	*len = 0;
	body = strdup(fallback);
	if (body != NULL)
		*len = sizeof(fallback) - 1;
	return body;
}
