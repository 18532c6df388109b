/*
 * api_stream.h - a run's answer streamed: `Accept: application/x-ndjson`
 * gives one JSON line per job as it finishes, `Accept: text/event-stream`
 * the same as Server-Sent Events (`event: job`), and then one summary
 * (`event: summary`):
 *
 *   {"index": 1, "id": "...", "job": "fast", "state": "succeeded",
 *    "result": ...}                        ("error" when it did not succeed)
 *   {"run": "...", "status": 200, "answer": {...}}
 *
 * The lines come until the run's policy is met or its deadline passes;
 * the summary holds the answer the run would have given unstreamed, and
 * ends the stream.  Jobs that go on after it are not streamed.  The
 * connection holds no thread between lines (server_stream_*()).
 */
#ifndef TASKPOOLD_API_STREAM_H
#define TASKPOOLD_API_STREAM_H

#include "api_call.h"

/*
 * Starts c's streamed answer on req (on the handler's thread, before the
 * run is waited for) and watches each job of c.  Returns 0, or -1 when out
 * of memory, having started nothing.
 */
int api_stream_begin(struct call *c, struct server_request *req);

/*
 * Under c->lock, c done: streams the jobs that finished and are not
 * streamed yet, then the summary, and ends the stream; c->req is dropped.
 */
void api_stream_finish_locked(struct call *c);

#endif
