/*
 * http_kind.c - kind `http`: its [job] keys, checked at load, and the
 * request they render for a job (see http_kind.h; keys in taskpoold.conf(5)).
 *
 * parse() keeps each key's text; check() makes the templates, because the
 * job's param.X declarations are only all known then.  check() also renders
 * every template once with stand-in values (one per declared parameter, of
 * its type), so that a URL that is not http(s), a header that cannot be
 * sent or a body that is not JSON is refused at load, with its line, rather
 * than failing each job later.  What a real value can still break (a
 * header value holding a newline) fails that one job at render time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"
#include "job.h"
#include "kinds/http_kind.h"
#include "kinds/kind.h"
#include "kinds/template.h"
#include "params.h"

static struct http_def *
http_def_of(struct job_def *def, char *why, size_t whylen)
{
	struct http_def *hd = def->kind_data;

	if (hd != NULL)
		return hd;
	if ((hd = calloc(1, sizeof(*hd))) == NULL ||
	    (hd->method = strdup("GET")) == NULL) {
		free(hd);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	hd->connect_timeout_ns = HTTP_CONNECT_TIMEOUT_NS;
	hd->retry_base_ns = HTTP_RETRY_BASE_NS;
	hd->retry_max_ns = HTTP_RETRY_MAX_NS;
	hd->max_response = HTTP_MAX_RESPONSE;
	def->kind_data = hd;
	return hd;
}

/* *dst = a copy of value.  0, or -1 (out of memory, written to why). */
static int
set_text(char **dst, const char *value, char *why, size_t whylen)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

/* RFC 9110 section 5.6.2: a header name is a token. */
static bool
header_name_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
			return false;
	return true;
}

static int
parse_header(struct http_def *hd, const char *name, const char *value,
	     char *why, size_t whylen)
{
	struct http_header *h;
	size_t i;

	if (!header_name_valid(name)) {
		snprintf(why, whylen, "bad header name '%s' (a token of "
			 "A-Z a-z 0-9 and !#$%%&'*+-.^_`|~, at most 64)", name);
		return -1;
	}
	if (!strcasecmp(name, "Content-Length") ||
	    !strcasecmp(name, "Transfer-Encoding")) {
		snprintf(why, whylen, "header %s is libcurl's to set", name);
		return -1;
	}
	for (i = 0; i < hd->nheaders; i++) {
		if (!strcasecmp(hd->headers[i].name, name)) {
			snprintf(why, whylen, "header %s is given twice", name);
			return -1;
		}
	}
	h = realloc(hd->headers, (hd->nheaders + 1) * sizeof(*h));
	if (h == NULL)
		goto nomem;
	hd->headers = h;
	h = &hd->headers[hd->nheaders];
	memset(h, 0, sizeof(*h));
	if ((h->name = strdup(name)) == NULL ||
	    (h->text = strdup(value)) == NULL) {
		free(h->name);
		goto nomem;
	}
	hd->nheaders++;
	if (!strcasecmp(name, "Content-Type"))
		hd->has_content_type = true;
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

static int
parse_method(struct http_def *hd, const char *value, char *why, size_t whylen)
{
	static const char *const methods[] = {
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
	};
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(value, methods[i]))
			return set_text(&hd->method, value, why, whylen);
	snprintf(why, whylen, "bad value '%s' for method (expected GET, HEAD, "
		 "POST, PUT, PATCH or DELETE)", value);
	return -1;
}

/* The keys with a duration value, and where each goes.  0, 1 or -1. */
static int
parse_duration_key(struct http_def *hd, const char *key, const char *value,
		   char *why, size_t whylen)
{
	int64_t *dst, ns;

	if (!strcmp(key, "connect_timeout"))
		dst = &hd->connect_timeout_ns;
	else if (!strcmp(key, "attempt_timeout"))
		dst = &hd->attempt_timeout_ns;
	else if (!strcmp(key, "retry_base"))
		dst = &hd->retry_base_ns;
	else if (!strcmp(key, "retry_max"))
		dst = &hd->retry_max_ns;
	else
		return 1;
	if (config_parse_duration(value, &ns) || ns < 1000000 ||
	    ns > 3600 * 1000000000LL) {
		snprintf(why, whylen, "bad value '%s' for %s (expected a "
			 "duration from 1ms to 1h)", value, key);
		return -1;
	}
	*dst = ns;
	return 0;
}

/* The keys of one value that are not text.  0, 1 or -1. */
static int
parse_number_key(struct http_def *hd, const char *key, const char *value,
		 char *why, size_t whylen)
{
	if (!strcmp(key, "retries")) {
		if (config_parse_uint(value, 0, HTTP_RETRIES_MAX, &hd->retries))
			goto bad;
		return 0;
	}
	if (!strcmp(key, "max_response")) {
		if (config_parse_size(value, &hd->max_response) ||
		    hd->max_response == 0 || hd->max_response > 1024 * 1024 * 1024)
			goto bad;
		return 0;
	}
	if (!strcmp(key, "follow_redirects")) {
		if (config_parse_bool(value, &hd->follow_redirects))
			goto bad;
		return 0;
	}
	return parse_duration_key(hd, key, value, why, whylen);
bad:
	snprintf(why, whylen, "bad value '%s' for %s (expected %s)", value, key,
		 !strcmp(key, "retries") ? "0 to 10" :
		 !strcmp(key, "max_response") ? "a size from 1 to 1024M, e.g. 1M" :
		 "yes or no");
	return -1;
}

static int
http_parse(struct job_def *def, const char *key, const char *value,
	   char *why, size_t whylen)
{
	static const char *const known[] = {
		"url", "body", "method", "retries", "max_response",
		"follow_redirects", "connect_timeout", "attempt_timeout",
		"retry_base", "retry_max",
	};
	struct http_def *hd;
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(key, known[i]))
			break;
	if (i == sizeof(known) / sizeof(known[0]) && strncmp(key, "header.", 7))
		return 1;
	if ((hd = http_def_of(def, why, whylen)) == NULL)
		return -1;
	if (!strncmp(key, "header.", 7))
		return parse_header(hd, key + 7, value, why, whylen);
	if (!strcmp(key, "url"))
		return set_text(&hd->url_text, value, why, whylen);
	if (!strcmp(key, "body"))
		return set_text(&hd->body_text, value, why, whylen);
	if (!strcmp(key, "method"))
		return parse_method(hd, value, why, whylen);
	return parse_number_key(hd, key, value, why, whylen);
}

/*
 * A stand-in value for each declared parameter, of its type: its default
 * if it has one, else "x", 1, its first choice or true.  New object, or
 * NULL when out of memory.
 */
static json_t *
stand_in_params(const struct job_def *def)
{
	json_t *o = json_object(), *v;
	size_t i;

	for (i = 0; i < def->nparams && o != NULL; i++) {
		const struct param_decl *d = &def->params[i];

		if (d->default_value != NULL)
			v = json_incref(d->default_value);
		else if (d->type == PARAM_INT)
			v = json_integer(d->min > 1 ? d->min : 1);
		else if (d->type == PARAM_BOOL)
			v = json_true();
		else if (d->type == PARAM_ENUM && d->nchoices > 0)
			v = json_string(d->choices[0]);
		else
			v = json_string("x");
		if (json_object_set_new(o, d->name, v) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

/* Refuses a URL that is not an absolute http(s) URL with a host. */
static int
check_url(const char *url, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;

	if (u == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		snprintf(why, whylen, "bad url '%s' (expected an absolute "
			 "http:// or https:// URL)", url);
	else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		snprintf(why, whylen, "url '%s' is not http or https", url);
	else
		rc = 0;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* Makes the templates of hd from their texts against def's params. */
static int
make_templates(struct http_def *hd, const struct job_def *def, char *why,
	       size_t whylen)
{
	size_t i;

	if ((hd->url = template_parse(hd->url_text, def, why, whylen)) == NULL)
		return -1;
	if (hd->body_text != NULL &&
	    (hd->body = template_parse(hd->body_text, def, why, whylen)) ==
	    NULL)
		return -1;
	for (i = 0; i < hd->nheaders; i++)
		if ((hd->headers[i].value = template_parse(hd->headers[i].text,
				def, why, whylen)) == NULL)
			return -1;
	return 0;
}

/* Renders everything once with stand-ins and checks what came out. */
static int
check_rendered(const struct http_def *hd, const json_t *params, char *why,
	       size_t whylen)
{
	struct http_request req;
	json_error_t err;
	json_t *body;
	int rc;

	if (http_request_render(hd, params, &req, why, whylen))
		return -1;
	rc = check_url(req.url, why, whylen);
	if (rc == 0 && req.body != NULL) {
		body = json_loadb(req.body, req.body_len, JSON_DECODE_ANY, &err);
		if (body == NULL) {
			snprintf(why, whylen, "body is not JSON once its holes "
				 "are filled (%s at column %d; a hole is "
				 "filled with a whole JSON value, such as "
				 "\"text\")", err.text, err.column);
			rc = -1;
		}
		json_decref(body);
	}
	http_request_clear(&req);
	return rc;
}

static int
http_check(struct job_def *def, char *why, size_t whylen)
{
	struct http_def *hd = http_def_of(def, why, whylen);
	json_t *params;
	int rc;

	if (hd == NULL)
		return -1;
	if (hd->url_text == NULL) {
		snprintf(why, whylen, "an http job needs a url");
		return -1;
	}
	if (hd->body_text != NULL && (!strcmp(hd->method, "GET") ||
				      !strcmp(hd->method, "HEAD"))) {
		snprintf(why, whylen, "a body needs method POST, PUT, PATCH or "
			 "DELETE (method is %s)", hd->method);
		return -1;
	}
	if (hd->retry_base_ns > hd->retry_max_ns) {
		snprintf(why, whylen, "retry_base is longer than retry_max");
		return -1;
	}
	if (make_templates(hd, def, why, whylen))
		return -1;
	if ((params = stand_in_params(def)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = check_rendered(hd, params, why, whylen);
	json_decref(params);
	return rc;
}

static void
http_free(void *kind_data)
{
	struct http_def *hd = kind_data;
	size_t i;

	if (hd == NULL)
		return;
	for (i = 0; i < hd->nheaders; i++) {
		free(hd->headers[i].name);
		free(hd->headers[i].text);
		template_free(hd->headers[i].value);
	}
	free(hd->headers);
	template_free(hd->url);
	template_free(hd->body);
	free(hd->url_text);
	free(hd->body_text);
	free(hd->method);
	free(hd);
}

/* True if a header value holds a byte that would end or forge a line. */
static bool
has_control_char(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

/* Appends "Name: value" (or "Name;" for an empty value, curl's way). */
static int
add_header(struct http_request *req, const struct http_header *h,
	   const json_t *params, char *why, size_t whylen)
{
	struct curl_slist *l;
	char *value, *line;
	size_t n;

	if ((value = template_render(h->value, params, TEMPLATE_RAW, NULL)) ==
	    NULL)
		goto nomem;
	if (has_control_char(value)) {
		snprintf(why, whylen, "header %s: its value holds a control "
			 "character", h->name);
		free(value);
		return -1;
	}
	n = strlen(h->name) + strlen(value) + 3;
	if ((line = malloc(n)) == NULL) {
		free(value);
		goto nomem;
	}
	if (*value == '\0')
		snprintf(line, n, "%s;", h->name);
	else
		snprintf(line, n, "%s: %s", h->name, value);
	free(value);
	l = curl_slist_append(req->headers, line);
	free(line);
	if (l == NULL)
		goto nomem;
	req->headers = l;
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

int
http_request_render(const struct http_def *hd, const json_t *params,
		    struct http_request *req, char *why, size_t whylen)
{
	struct curl_slist *l;
	size_t i;

	memset(req, 0, sizeof(*req));
	if ((req->url = template_render(hd->url, params, TEMPLATE_URL,
					NULL)) == NULL)
		goto nomem;
	for (i = 0; i < hd->nheaders; i++)
		if (add_header(req, &hd->headers[i], params, why, whylen))
			goto fail;
	if (hd->body != NULL) {
		if ((req->body = template_render(hd->body, params,
				TEMPLATE_JSON, &req->body_len)) == NULL)
			goto nomem;
		if (!hd->has_content_type) {
			l = curl_slist_append(req->headers,
					      "Content-Type: application/json");
			if (l == NULL)
				goto nomem;
			req->headers = l;
		}
	}
	return 0;
nomem:
	snprintf(why, whylen, "%s", errno == EINVAL ? "a parameter's value "
		 "is missing" : "out of memory");
fail:
	http_request_clear(req);
	return -1;
}

void
http_request_clear(struct http_request *req)
{
	free(req->url);
	free(req->body);
	curl_slist_free_all(req->headers);
	memset(req, 0, sizeof(*req));
}

const struct job_kind job_kind_http = {
	.name = "http",
	.global_init = http_transfer_global_init,
	.open = http_transfer_open,
	.close = http_transfer_close,
	.parse = http_parse,
	.check = http_check,
	.free = http_free,
	.start = http_transfer_start,
	.cancel = http_transfer_cancel,
};
