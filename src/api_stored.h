/*
 * api_stored.h - the API's side of the durable store (store/store.h):
 * reading a job or a run that the memory (registry, runs table) no longer
 * or never held, listing jobs from the store, and recording runs.
 *
 * A record from the store is rendered by the same code as one from
 * memory (api_job_record_build()), so that GET /jobs/{id} shows the very
 * same members either way.  A store that cannot answer within
 * STORE_TIMEOUT_NS gets 503 with Retry-After: 1 (reason
 * store_unavailable), never a hung request.
 *
 * Only for a durable store (d->store_durable): with the memory backend
 * the API answers from memory alone, as before the store existed.
 */
#ifndef TASKPOOLD_API_STORED_H
#define TASKPOOLD_API_STORED_H

#include <stdbool.h>

#include <jansson.h>

#include "server.h"

struct auth_token;
struct call;
struct daemon;
struct registry_filter;
struct api_list_query;

/*
 * /jobs/{id} of an id that the registry does not hold: GET or HEAD its
 * record from the store (404 when it has none), DELETE (cancel) as who
 * may: 409 when finished, else through the shared queue if the store has
 * one, else 409 (nothing can be running it).
 */
enum server_handled api_stored_job(struct daemon *d,
				   struct server_request *req,
				   const char *id, bool cancel,
				   const struct auth_token *who);

/*
 * GET /jobs from the store: synced first (so every change made before is
 * in it), then its page of filter and q, with the fresher state of the
 * instances the registry holds.  The cursor is the store's.
 */
enum server_handled api_stored_job_list(struct daemon *d,
					struct server_request *req,
					const struct registry_filter *filter,
					const struct api_list_query *q);

/*
 * The record of job id, from the registry if it holds it, else from the
 * store: a new value, or NULL when neither has it (or the store did not
 * answer, or no memory).  For a run's job that went to the shared queue
 * (job_instance.enqueued): its record is wherever it runs.  May block
 * on the store, as every read of it does.
 */
json_t *api_stored_job_json(struct daemon *d, const char *id);

/* /runs/{id} of an id that the runs table does not hold. */
enum server_handled api_stored_run(struct daemon *d,
				   struct server_request *req,
				   const char *id);

/*
 * Records c in the store: started (its jobs listed), or done with its
 * answer.  api_stored_run_changed() fixes the answer if c is done (as
 * any reader of it would); api_stored_run_answer() is given it (status
 * and body, borrowed), on the thread that just built it.  Never blocks.
 */
void api_stored_run_changed(struct daemon *d, struct call *c);
void api_stored_run_answer(struct daemon *d, struct call *c,
			   unsigned status, const char *body, size_t len);

#endif
