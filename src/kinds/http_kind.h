/*
 * http_kind.h - kind `http`: calls an upstream over HTTP(S) with libcurl.
 *
 * Named http_kind, not http: src/http.h is the daemon's own answers.
 *
 * Three files make the kind.  http_kind.c reads a [job] section into a
 * struct http_def and renders one request from it and a job's parameters;
 * http_transfer.c runs the transfers on one thread of the kind's own (one
 * libcurl multi handle); http_response.c holds the pure pieces both use
 * (what counts as JSON, UTF-8 repair, the retry backoff), here so that the
 * unit tests reach them.  Nothing outside these files looks into an
 * http_def; the struct is here for those tests.
 *
 * Built without libcurl, http_none.c stands in for all three (Makefile.am
 * chooses): the kind stays in the table and refuses its jobs at load.
 */
#ifndef TASKPOOLD_KINDS_HTTP_KIND_H
#define TASKPOOLD_KINDS_HTTP_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct curl_slist;
struct job_env;
struct job_instance;
struct template;

#define HTTP_CONNECT_TIMEOUT_NS	(10 * 1000000000LL)
#define HTTP_MAX_RESPONSE	(1024 * 1024)
#define HTTP_RETRY_BASE_NS	(100 * 1000000LL)
#define HTTP_RETRY_MAX_NS	(10 * 1000000000LL)
#define HTTP_RETRIES_MAX	10
#define HTTP_ERROR_BODY_MAX	512	/* bytes of a non-2xx body in errors */

struct http_header {
	char *name;			/* a token, checked at load */
	char *text;			/* the value as written; owned */
	struct template *value;		/* made by check; owned */
};

/* A job definition's kind_data when its kind is http. */
struct http_def {
	char *url_text, *body_text;	/* as written (body: NULL if none) */
	struct template *url;		/* TEMPLATE_URL holes */
	struct template *body;		/* TEMPLATE_JSON holes; NULL: none */
	char *method;			/* "GET" unless set */
	size_t nheaders;
	struct http_header *headers;
	bool has_content_type;		/* a header.Content-Type was given */
	bool follow_redirects;		/* no unless set */
	unsigned retries;		/* attempts after the first */
	int64_t connect_timeout_ns;
	int64_t attempt_timeout_ns;	/* 0: an attempt may take all */
	int64_t retry_base_ns, retry_max_ns;
	size_t max_response;		/* bytes of a response body */
};

/* One request rendered from a definition and a job's parameters. */
struct http_request {
	char *url;
	char *body;			/* NULL: none */
	size_t body_len;
	struct curl_slist *headers;	/* "Name: value" lines */
};

/*
 * Renders def's request with params (a job's validated object, borrowed):
 * 0, or -1 with the reason written to why (a header value that holds a
 * control character, out of memory) and nothing left in req.  Free what it
 * made with http_request_clear().
 */
int http_request_render(const struct http_def *hd, const json_t *params,
			struct http_request *req, char *why, size_t whylen);
void http_request_clear(struct http_request *req);

/* ---- http_response.c: pure, any thread ---------------------------------- */

/*
 * True if a Content-Type value (NULL: none) names JSON: application/json,
 * or any type whose subtype ends in +json (application/problem+json), with
 * or without parameters, in any case.
 */
bool http_content_type_is_json(const char *content_type);

/*
 * A new NUL-terminated copy of len bytes of data in valid UTF-8: each byte
 * that does not start a well-formed sequence, and each NUL, becomes
 * U+FFFD.  NULL when out of memory.
 */
char *http_text_to_utf8(const char *data, size_t len);

/*
 * The wait before retry number `retry` (1 for the first retry): "full
 * jitter", uniform in [0, min(max, base * 2^(retry-1))], drawn from
 * random (any 64 random bits).  Never negative, never above max.
 */
int64_t http_backoff_ns(unsigned retry, int64_t base_ns, int64_t max_ns,
			uint64_t random);

/* ---- http_transfer.c: the transfer thread (kind.h's operations) ---------- */

int http_transfer_global_init(char *why, size_t whylen);
int http_transfer_open(struct job_env *env, void **state);
void http_transfer_close(struct job_env *env, void *state);
int http_transfer_start(struct job_instance *inst, struct job_env *env);
bool http_transfer_cancel(struct job_instance *inst, struct job_env *env);

#endif
