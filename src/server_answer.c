/*
 * server_answer.c - answers: set from any thread (claimed, then published
 * by server_handover.c), built and handed to libmicrohttpd on the
 * connection's own thread; and the request of a client that hung up
 * dropped.  See server_private.h for the hand-over between threads.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "server_private.h"

int
server_add_header(struct server_request *req, const char *name,
		  const char *value)
{
	size_t i = req->nheaders, len = strlen(value) + 1;
	char *copy;

	/* Logged here, once, so that callers may go on without the header. */
	if (i == MAX_RESPONSE_HEADERS) {
		log_warnx("response header %s dropped: more than %d", name,
			  MAX_RESPONSE_HEADERS);
		return -1;
	}
	/* In the request's own room if it fits: no allocation. */
	if (len <= sizeof(req->value_space) - req->value_used) {
		copy = memcpy(req->value_space + req->value_used, value, len);
		req->value_used += len;
		req->headers[i].owned = false;
	} else if ((copy = strdup(value)) != NULL) {
		req->headers[i].owned = true;
	} else {
		log_warnx("response header %s dropped: out of memory", name);
		return -1;
	}
	req->headers[i].name = name;
	req->headers[i].value = copy;
	req->nheaders++;
	return 0;
}

/*
 * The request whose builder this thread is running, if any.  Thread-local:
 * server_respond() may be called from any thread at the same time, and
 * only the builder's own call may write past the claim.
 */
static _Thread_local struct server_request *building;

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
	server_handover_publish(req);
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
	server_handover_publish(req);
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
	char *body = http_problem_body(&status, detail, &len);

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

/*
 * Hands resp, the body of the answer (NULL: there was no memory for it),
 * to MHD with the answer's status and headers, and lets go of resp.  On
 * the MHD thread, once state is RESPONDED.  Returns MHD_NO, logged, when
 * the connection is to be closed instead.
 */
enum MHD_Result
server_answer_send(struct server_request *req, struct MHD_Response *resp)
{
	enum MHD_Result ret;
	size_t i;

	if (resp == NULL) {
		log_warnx("%s %s: no memory for the %u answer; connection "
			  "closed", req->method, req->path, req->status);
		return MHD_NO;
	}
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
	if (ret != MHD_YES)
		log_warnx("%s %s: libmicrohttpd refused the %u answer; "
			  "connection closed", req->method, req->path,
			  req->status);
	return ret;
}

/*
 * Hands a whole answer to MHD, built first if it has a builder.  On the
 * MHD thread, once state is RESPONDED.  Not for a streamed answer:
 * server_stream.c queues its own.
 */
enum MHD_Result
server_answer_queue(struct server_request *req)
{
	struct MHD_Response *resp;

	req->queued = true;
	server_answer_run_builder(req, true);
	server_request_observe(req, req->status);
	resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
					       MHD_RESPMEM_MUST_FREE);
	if (resp != NULL)
		req->resp_body = NULL;	/* MHD owns it now */
	return server_answer_send(req, resp);
}

/*
 * The client of a suspended request closed its connection (or reset it);
 * its HTTP thread has ended the watch that saw it, and calls this.
 * Unless an answer is already on its way, claim the request so that no
 * answer is built for nobody, resume it so that MHD closes it, count and
 * log it (nginx's 499), and tell whoever waits for it.  Not for a
 * streamed answer: server_stream.c deals with its client.
 */
void
server_answer_client_gone(struct server_request *req)
{
	struct server *s = req->server;

	if (atomic_exchange(&req->claimed, true))
		return;		/* answered: MHD finds out when it writes */
	req->client_gone = true;
	atomic_fetch_add(&s->clients_gone, 1);
	log_info("%s %s: client closed the connection while waiting (499)",
		 req->method, req->path);
	server_request_observe(req, 0);
	server_handover_publish(req);
	server_request_run_gone(req, true);
}
