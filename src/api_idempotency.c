/*
 * api_idempotency.c - see api_idempotency.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_idempotency.h"
#include "api_json.h"
#include "fnv.h"
#include "http.h"

/* "SCOPE KEY" as a new string, or NULL when out of memory. */
static char *
scoped_key(const char *scope, const char *key)
{
	size_t n = strlen(scope) + 1 + strlen(key) + 1;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s %s", scope, key);
	return s;
}

/* A separator that no method, path or argument holds as such. */
static uint64_t
fnv1a_mark(uint64_t h, unsigned char mark)
{
	return fnv1a(h, &mark, 1);
}

/* server_query_fn: one argument (with its lengths) into the hash. */
static int
hash_argument(void *arg, const char *key, size_t key_len, const char *value,
	      size_t value_len)
{
	uint64_t *h = arg;
	uint64_t n = key_len;

	*h = fnv1a(*h, &n, sizeof(n));
	*h = fnv1a(*h, key, key_len);
	n = value != NULL ? value_len + 1 : 0;	/* "?a" is not "?a=" */
	*h = fnv1a(*h, &n, sizeof(n));
	if (value != NULL)
		*h = fnv1a(*h, value, value_len);
	return 0;
}

static uint64_t
fingerprint(struct server_request *req)
{
	const char *method = server_request_method(req);
	const char *path = server_request_path(req);
	uint64_t h = FNV1A_INIT;
	const char *body;
	size_t len;

	h = fnv1a_mark(fnv1a(h, method, strlen(method)), 0);
	h = fnv1a_mark(fnv1a(h, path, strlen(path)), 0);
	server_request_query(req, hash_argument, &h);
	h = fnv1a_mark(h, 1);
	body = server_request_body(req, &len);
	return fnv1a(h, body != NULL ? body : "", len);
}

int
api_idempotency_read(struct server_request *req, const char *scope,
		     struct api_idempotency *out)
{
	const char *key = server_request_header(req, "Idempotency-Key");
	size_t i, n;

	out->key = NULL;
	out->fingerprint = 0;
	if (key == NULL || strcmp(server_request_method(req), "POST") != 0)
		return 0;
	n = strlen(key);
	for (i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			break;
	if (n == 0 || n > API_IDEMPOTENCY_KEY_MAX || i != n) {
		server_request_set_reason(req, "bad_idempotency_key");
		api_respond_problem(req, 400, "Idempotency-Key must be 1 to "
				    "255 visible ASCII characters");
		return -1;
	}
	if (scope != NULL)
		out->key = scoped_key(scope, key);
	else
		out->key = strdup(key);
	if (out->key == NULL) {
		api_respond_problem(req, 503, "out of memory");
		return -1;
	}
	out->fingerprint = fingerprint(req);
	return 0;
}

enum server_handled
api_idempotency_repeat(struct server_request *req, struct call *existing,
		       struct api_idempotency *idem)
{
	char link[CALL_ID_MAX + 32];
	unsigned status;
	char *body;
	size_t len;

	free(idem->key);
	idem->key = NULL;
	if (existing->fingerprint != idem->fingerprint) {
		call_unref(existing);
		server_request_set_reason(req, "idempotency_key_reused");
		return api_respond_problem(req, 422, "this Idempotency-Key "
					   "was used for another request");
	}
	/*
	 * A run still starting may fail to start (no room: 503) and leave
	 * the table: a 202 to it could lead to a 404.  The first request is
	 * microseconds from its own answer: try again in a second.
	 */
	if (call_starting(existing)) {
		call_unref(existing);
		server_request_set_reason(req, "idempotency_key_in_use");
		server_add_header(req, "Retry-After", "1");
		return api_respond_problem(req, 409, "a request with this "
					   "Idempotency-Key is starting; try "
					   "again");
	}
	call_add_link(req, existing);
	server_add_header(req, "Idempotent-Replayed", "true");
	if (call_answer(existing, &status, &body, &len)) {
		server_respond(req, status, status >= 400 ? HTTP_PROBLEM_JSON :
			       HTTP_JSON, body, len);
	} else {
		snprintf(link, sizeof(link), "/runs/%s", existing->id);
		server_add_header(req, "Location", link);
		api_respond_json(req, 202, api_call_pointer(existing,
							    "running"));
	}
	call_unref(existing);
	return SERVER_DONE;
}
