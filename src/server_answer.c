/*
 * server_answer.c - answers: set from any thread, published, and handed
 * to libmicrohttpd on the connection's own thread; the connection resumed
 * and its HTTP thread woken; and the request of a client that hung up
 * dropped.  See server_private.h for the hand-over between threads.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "server_private.h"

struct server_request *
server_request_ref(struct server_request *req)
{
	atomic_fetch_add_explicit(&req->refs, 1, memory_order_relaxed);
	return req;
}

void
server_request_unref(struct server_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	if (atomic_fetch_sub_explicit(&req->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < req->nheaders; i++) {
		free(req->headers[i].name);
		free(req->headers[i].value);
	}
	free(req->resp_body);
	server_pipe_free(atomic_load(&req->stream));
	server_body_clear(&req->body);
	free(req->method);
	free(req->path);
	free(req);
}

struct server *
server_request_server(const struct server_request *req)
{
	return req->server;
}

const char *
server_request_method(const struct server_request *req)
{
	return req->method;
}

const char *
server_request_path(const struct server_request *req)
{
	return req->path;
}

const char *
server_request_body(const struct server_request *req, size_t *len)
{
	*len = req->body.len;
	return req->body.data;
}

char *
server_request_take_body(struct server_request *req, size_t *len)
{
	char *body = req->body.data;

	*len = req->body.len;
	req->body.data = NULL;
	req->body.len = req->body.cap = 0;
	return body;
}

void
server_request_on_gone(struct server_request *req, server_gone_fn fn,
		       void *arg)
{
	req->gone = fn;
	req->gone_arg = arg;
}

/* Runs the request's gone function, if any, once.  On the MHD thread. */
void
server_answer_run_gone(struct server_request *req, bool gone)
{
	server_gone_fn fn = req->gone;

	if (fn == NULL)
		return;
	req->gone = NULL;
	fn(req, req->gone_arg, gone);
}

void
server_request_set_label(struct server_request *req, const char *label)
{
	req->label = label;
}

void
server_request_set_reason(struct server_request *req, const char *reason)
{
	atomic_store_explicit(&req->reason, reason, memory_order_relaxed);
}

/*
 * Tells the observer how the request ended: its status, or 0 when its
 * client hung up.  On the MHD thread.  The reason was set before the
 * answer was published, which the MHD thread has seen: relaxed is enough
 * (it is atomic only because a thread that loses the claim may set one).
 */
static void
observe(struct server_request *req, unsigned status)
{
	const struct server_options *o = &req->server->opts;
	struct server_report r;

	if (o->observe == NULL)
		return;
	r.method = req->method;
	r.label = req->label;
	r.reason = atomic_load_explicit(&req->reason, memory_order_relaxed);
	r.status = status;
	o->observe(o->observe_arg, &r);
}

const char *
server_request_header(struct server_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct query_walk {
	server_query_fn fn;
	void *arg;
	size_t n;
};

/* MHD_KeyValueIteratorN: one query argument to the caller's fn. */
static enum MHD_Result
query_argument(void *cls, enum MHD_ValueKind kind, const char *key,
	       size_t key_size, const char *value, size_t value_size)
{
	struct query_walk *w = cls;

	(void)kind;
	w->n++;
	return w->fn(w->arg, key, key_size, value, value_size) ? MHD_NO :
	       MHD_YES;
}

size_t
server_request_query(struct server_request *req, server_query_fn fn,
		     void *arg)
{
	struct query_walk w = { fn, arg, 0 };

	MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND,
				    query_argument, &w);
	return w.n;
}

int
server_add_header(struct server_request *req, const char *name,
		  const char *value)
{
	size_t i = req->nheaders;

	/* Logged here, once, so that callers may go on without the header. */
	if (i == MAX_RESPONSE_HEADERS) {
		log_warnx("response header %s dropped: more than %d", name,
			  MAX_RESPONSE_HEADERS);
		return -1;
	}
	req->headers[i].name = strdup(name);
	req->headers[i].value = strdup(value);
	if (req->headers[i].name == NULL || req->headers[i].value == NULL) {
		free(req->headers[i].name);
		free(req->headers[i].value);
		log_warnx("response header %s dropped: out of memory", name);
		return -1;
	}
	req->nheaders++;
	return 0;
}

/*
 * The request whose builder this thread is running, if any.  Thread-local:
 * server_respond() may be called from any thread at the same time, and
 * only the builder's own call may write past the claim.
 */
static _Thread_local struct server_request *building;

/*
 * Makes thread t run its daemon again.  MHD drops its own wake-up channel
 * when it has no thread of its own, so a resumed connection would wait for
 * the next network event.  One write per wake-up, however many resumes
 * come in before the thread runs.
 */
void
server_answer_wake_thread(struct server_thread *t)
{
	uint64_t one = 1;

	if (atomic_exchange(&t->wake_pending, true))
		return;
	/* Can only fail once the counter is near 2^64: it is read on
	 * every wake-up.  If it did, let the next resume try again. */
	if (write(t->wake_fd, &one, sizeof(one)) != sizeof(one)) {
		log_warn("cannot wake an HTTP thread");
		atomic_store(&t->wake_pending, false);
	}
}

/* Any thread: hands a suspended connection back to its daemon. */
void
server_answer_resume(struct server_request *req)
{
	MHD_resume_connection(req->conn);
	server_answer_wake_thread(req->thread);
}

/*
 * Makes the claimed answer visible; resumes if the connection waits.  The
 * caller has claimed the request.  Any thread.
 *
 * Resuming hands the connection back to its HTTP thread, which may then
 * send the answer and finish with the connection at once: from there on
 * only `publishers` keeps server_free() from freeing the thread (and its
 * eventfd) that server_answer_wake_thread() still writes.  So the count goes up
 * before the state changes and down after the last touch of the server.
 * `counted` tells server_free() that a claimer got this far: until then
 * the connection cannot have resumed, so the request is still listed.
 */
void
server_answer_publish(struct server_request *req)
{
	struct server *s = req->server;

	/*
	 * Once resumed, the connection may be answered and finished on its
	 * HTTP thread at once, dropping the server's reference: hold one of
	 * our own until the wake-up is written.
	 */
	server_request_ref(req);
	atomic_fetch_add(&s->publishers, 1);
	atomic_store(&req->counted, true);
	if (atomic_exchange(&req->state, REQ_RESPONDED) == REQ_SUSPENDED) {
		atomic_fetch_sub(&s->waiting, 1);
		server_answer_resume(req);
	}
	server_request_unref(req);
	server_answer_leave(s);
}

/*
 * A publisher's last touch of the server: it leaves `publishers`.  Any
 * thread; nothing of the server may be read after.
 */
void
server_answer_leave(struct server *s)
{
	if (s->opts.test_after_resume != NULL)
		s->opts.test_after_resume(s->opts.test_arg);
	/*
	 * The decrement is the last touch of the server: once the count is
	 * 0, server_free() may free it, so nothing may be read after.  If a
	 * stop has begun, the decrement and the wake-up are done under the
	 * lock that server_free() waits with, so it cannot see 0 and free
	 * the server before this has let go of the lock.  A stop that begins
	 * just after `freeing` was read here gets no wake-up: server_free()
	 * waits in short slices and sees the count for itself.
	 */
	if (!atomic_load(&s->freeing)) {
		atomic_fetch_sub(&s->publishers, 1);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (atomic_fetch_sub(&s->publishers, 1) == 1)
		pthread_cond_broadcast(&s->publishers_done);
	pthread_mutex_unlock(&s->lock);
}

static void
set_answer(struct server_request *req, unsigned status,
	   const char *content_type, char *body, size_t len)
{
	free(req->resp_body);
	req->status = status;
	req->content_type = content_type;
	req->resp_body = body;
	req->resp_len = body != NULL ? len : 0;
}

/*
 * server_respond(), with a reason for the observer (NULL for none) set
 * only by the thread that wins the claim.
 */
static void
respond(struct server_request *req, unsigned status,
	const char *content_type, char *body, size_t len, const char *reason)
{
	if (building == req) {		/* the builder, on the MHD thread */
		set_answer(req, status, content_type, body, len);
		if (reason != NULL)
			server_request_set_reason(req, reason);
		return;
	}
	if (atomic_exchange(&req->claimed, true)) {
		free(body);	/* answered already (e.g. at shutdown) */
		return;
	}
	set_answer(req, status, content_type, body, len);
	if (reason != NULL)
		server_request_set_reason(req, reason);
	server_answer_publish(req);
}

void
server_respond(struct server_request *req, unsigned status,
	       const char *content_type, char *body, size_t len)
{
	respond(req, status, content_type, body, len, NULL);
}

void
server_respond_later(struct server_request *req, server_build_fn fn,
		     void *arg)
{
	if (atomic_exchange(&req->claimed, true)) {
		fn(req, arg, false);	/* answered already: release arg */
		return;
	}
	req->build = fn;
	req->build_arg = arg;
	server_answer_publish(req);
}

/* Runs the builder, if any, once.  On the MHD thread. */
void
server_answer_run_builder(struct server_request *req, bool keep)
{
	server_build_fn fn = req->build;

	if (fn == NULL)
		return;
	req->build = NULL;
	building = keep ? req : NULL;
	fn(req, req->build_arg, keep);
	building = NULL;
}

/* Answers with a problem document, from the MHD thread or any other. */
void
server_respond_problem(struct server_request *req, unsigned status,
		       const char *detail)
{
	server_answer_refuse(req, status, detail, NULL);
}

/*
 * The server's own refusal: a problem document, and a reason for the
 * observer (a string constant; NULL for none).  Any thread, once, as
 * server_respond().
 */
void
server_answer_refuse(struct server_request *req, unsigned status,
		     const char *detail, const char *reason)
{
	size_t len;
	char *body = http_answer_body(http_problem_new(status, detail),
				      &status, &len);

	respond(req, status, HTTP_PROBLEM_JSON, body, len, reason);
}

/* MHD refuses only on memory or a bad header; say which is missing. */
static void
add_mhd_header(const struct server_request *req, struct MHD_Response *resp,
	       const char *name, const char *value)
{
	if (MHD_add_response_header(resp, name, value) != MHD_YES)
		log_warnx("%s %s: header %s dropped from the %u answer",
			  req->method, req->path, name, req->status);
}

/* Hands the answer to MHD.  On the MHD thread, once state is RESPONDED. */
enum MHD_Result
server_answer_queue(struct server_request *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t i;

	req->queued = true;
	server_answer_run_builder(req, true);
	observe(req, req->status);
	if (atomic_load(&req->stream) != NULL)
		resp = server_stream_response(req);
	else
		resp = MHD_create_response_from_buffer(req->resp_len,
						       req->resp_body,
						       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		log_warnx("%s %s: no memory for the %u answer; connection "
			  "closed", req->method, req->path, req->status);
		server_stream_fail(req);
		return MHD_NO;
	}
	req->resp_body = NULL;	/* MHD owns it now */
	if (req->content_type != NULL)
		add_mhd_header(req, resp, MHD_HTTP_HEADER_CONTENT_TYPE,
			   req->content_type);
	for (i = 0; i < req->nheaders; i++)
		add_mhd_header(req, resp, req->headers[i].name,
			   req->headers[i].value);
	/* Stopping: tell keep-alive clients not to send another request. */
	if (atomic_load_explicit(&req->server->draining, memory_order_relaxed))
		add_mhd_header(req, resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, req->status, resp);
	MHD_destroy_response(resp);
	if (ret != MHD_YES) {
		log_warnx("%s %s: libmicrohttpd refused the %u answer; "
			  "connection closed", req->method, req->path,
			  req->status);
		server_stream_fail(req);
	}
	return ret;
}

/*
 * The client of a suspended request closed its connection (or reset it);
 * its HTTP thread has ended the watch that saw it, and calls this.
 * Unless an answer is already on its way, claim the request so that no
 * answer is built for nobody, resume it so that MHD closes it, count and
 * log it (nginx's 499), and tell whoever waits for it.  A streamed
 * answer's connection is suspended while it waits for its next piece:
 * server_stream.c deals with its client.
 */
void
server_answer_client_gone(struct server_request *req)
{
	struct server *s = req->server;

	if (atomic_load(&req->stream) != NULL) {
		server_stream_client_gone(req);
		return;
	}
	if (atomic_exchange(&req->claimed, true))
		return;		/* answered: MHD finds out when it writes */
	req->client_gone = true;
	atomic_fetch_add(&s->clients_gone, 1);
	log_info("%s %s: client closed the connection while waiting (499)",
		 req->method, req->path);
	observe(req, 0);
	server_answer_publish(req);
	server_answer_run_gone(req, true);
}
