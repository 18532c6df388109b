/*
 * server_request.c - the request object (server.h): its references and
 * its free, what the handler reads of it (method, path, body, headers,
 * query), and what it leaves on it for later (label, reason, the gone
 * function); and the report of how it ended to the server's observer.
 * Every other part builds on it; it calls none of them but the body and
 * the stream's pipe that it frees.
 * The fields, and who may touch each when, are in server_private.h.
 */
#include <stdatomic.h>
#include <stdlib.h>

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
	for (i = 0; i < req->nheaders; i++)
		if (req->headers[i].owned)
			free(req->headers[i].value);
	free(req->resp_body);
	server_pipe_free(atomic_load(&req->stream));
	server_body_clear(&req->body);
	free(req->access_target);
	free(req);
}

struct server *
server_request_server(const struct server_request *req)
{
	return req->server;
}

bool
server_request_first(const struct server_request *req)
{
	return req->first;
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
server_request_run_gone(struct server_request *req, bool gone)
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
void
server_request_observe(struct server_request *req, unsigned status)
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

/*
 * Tells the observer of a refusal that never became a request of ours
 * (libmicrohttpd's own, or a request line it could not parse).  The
 * method is unknown: "" (counted as other).
 */
void
server_observe_refusal(struct server *s, unsigned status, const char *reason)
{
	const struct server_options *o = &s->opts;
	struct server_report r = { "", NULL, reason, status };

	if (o->observe != NULL)
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

struct server_conn *
server_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info != NULL ? info->socket_context : NULL;
}
