/*
 * api_stream.c - see api_stream.h.
 *
 * Each job of the call has a future waiter that writes its line, under
 * c->lock, unless the stream has ended or the line was written already:
 * the end writes the lines of every job done by then before the summary,
 * so that the summary always comes last whichever callback runs first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_answer.h"
#include "api_stream.h"
#include "http.h"
#include "log.h"

#define NDJSON "application/x-ndjson"
#define SSE "text/event-stream"

/* Writes value (stolen) as one line or event; under c->lock. */
static void
write_value(struct call *c, const char *event, json_t *value)
{
	size_t len;
	char *text = http_json_dump(value, &len);
	char *piece;

	if (text == NULL || c->req == NULL) {
		free(text);
		return;
	}
	if (c->delivery == CALL_SSE) {
		size_t n = strlen(event) + len + 32;

		piece = malloc(n);
		if (piece != NULL) {
			len = (size_t)snprintf(piece, n, "event: %s\ndata: "
					       "%s\n\n", event, text);
			server_stream_write(c->req, piece, len);
			free(piece);
		}
	} else {
		text[len] = '\n';	/* the NUL's place */
		server_stream_write(c->req, text, len + 1);
	}
	/*
	 * A write's -1 (the client gone, the stream cut off at its bound,
	 * the server stopping) is not checked: the server has logged and
	 * counted it, and every later write is refused as cheaply.
	 */
	free(text);
}

/* The line of job i, if it is done and not written yet; under c->lock. */
static void
write_job_locked(struct call *c, size_t i)
{
	struct future_snapshot s;

	if (c->streamed[i])
		return;
	s = future_snapshot(c->jobs[i]->future);
	if (!future_state_is_done(s.state))
		return;
	c->streamed[i] = 1;
	write_value(c, "job", api_answer_job_line(c, i, &s));
}

/* Future callback: a job of a streamed call finished.  Drops its ref. */
static void
on_job_done(struct future *f, void *arg)
{
	struct call *c = arg;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->njobs; i++)
		if (c->jobs[i]->future == f)
			break;
	if (i < c->njobs && !c->done)
		write_job_locked(c, i);
	pthread_mutex_unlock(&c->lock);
	call_unref(c);
}

int
api_stream_begin(struct call *c, struct server_request *req)
{
	size_t i, n = c->njobs;

	c->streamed = calloc(n, 1);
	c->stream_waiters = calloc(n, sizeof(c->stream_waiters[0]));
	if (c->streamed == NULL || c->stream_waiters == NULL)
		return -1;
	call_add_link(req, c);
	if (c->delivery == CALL_SSE)
		server_add_header(req, "Cache-Control", "no-cache");
	if (server_stream_begin(req, 200, c->delivery == CALL_SSE ? SSE :
				NDJSON) != 0)
		return -1;
	/* Each waiter's reference first: one may run before the loop ends. */
	atomic_fetch_add(&c->refs, n);
	for (i = 0; i < n; i++)
		future_on_done(c->jobs[i]->future, &c->stream_waiters[i],
			       on_job_done, c);
	return 0;
}

void
api_stream_finish_locked(struct call *c)
{
	struct server_request *req;
	json_t *summary, *answer;
	size_t i;

	for (i = 0; i < c->njobs; i++)
		write_job_locked(c, i);
	call_fix_answer_locked(c);
	/* The answer's bytes are the run's: parsed back into the summary. */
	answer = c->answer != NULL ? json_loadb(c->answer, c->answer_len, 0,
						NULL) : NULL;
	summary = json_object();
	if (summary != NULL && answer != NULL &&
	    (json_object_set_new(summary, "run", json_string(c->id)) ||
	     json_object_set_new(summary, "status",
				 json_integer(c->status)) ||
	     json_object_set_new(summary, "answer", json_incref(answer))))
		log_warnx("run %s: summary incomplete (out of memory)", c->id);
	json_decref(answer);
	write_value(c, "summary", summary);
	if ((req = c->req) != NULL) {
		c->req = NULL;
		server_stream_end(req);
		server_request_unref(req);
	}
}
