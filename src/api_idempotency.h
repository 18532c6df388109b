/*
 * api_idempotency.h - `Idempotency-Key` on a POST (POST /jobs or a POST
 * route): a repeat of the same request with the same key, while the run
 * it started is kept (`retain`), gets that run again instead of a new
 * one: its answer once done, 202 to /runs/{id} while it runs.  The same
 * key with another request (method, path, query or body) is refused with
 * 422.
 *
 * A request is compared by a 64-bit FNV-1a fingerprint of its method,
 * path, query arguments and body, so a key costs no copy of its body.
 */
#ifndef TASKPOOLD_API_IDEMPOTENCY_H
#define TASKPOOLD_API_IDEMPOTENCY_H

#include <stdint.h>

#include "api_call.h"
#include "server.h"

#define API_IDEMPOTENCY_KEY_MAX 255	/* bytes of a key */

struct api_idempotency {
	char *key;			/* owned; NULL: none */
	uint64_t fingerprint;
};

/*
 * Reads req's key, during the handler call.  Returns 0 with out->key a
 * new string and out->fingerprint, or out->key NULL for a request without
 * a key (or not a POST); or answers 400 (a key that is empty, too long, or
 * not visible ASCII) or 503, and returns -1.  scope (the name of the
 * request's bearer token, or NULL) makes the key the client's own: the
 * stored key is "SCOPE KEY", which no other scope and no unscoped key can
 * be (a key has no blank), so one client cannot reach another's run by
 * sending its key.
 */
int api_idempotency_read(struct server_request *req, const char *scope,
			 struct api_idempotency *out);

/*
 * Answers a repeat of the key that `existing` (a reference, dropped here)
 * holds: 422 if the request differs, 409 with Retry-After while the run
 * is still starting its jobs (it may yet fail to), the run's answer if it
 * is done, else 202 to /runs/{id}.  Frees idem->key.  Returns
 * SERVER_DONE.
 */
enum server_handled api_idempotency_repeat(struct server_request *req,
					   struct call *existing,
					   struct api_idempotency *idem);

#endif
