/*
 * server_access.c - the access log (server.h, server_set_access_log()): a
 * request's part of it, on its HTTP thread.
 *
 * When a request comes, one atomic load says whether it is logged; all
 * the rest happens only for those that are.  Its target is written while
 * the query string can still be read: by the handler, which knows which
 * values may be shown (server_request_log_query()), or right after it,
 * or at the server's own refusal before any handler, with every value
 * left out (server_access_default_target()).  Its line is written when
 * libmicrohttpd is done with it (server_access_end(), from on_completed):
 * only then are a streamed answer's bytes all counted, and its time over.
 * Why not when the answer is queued, as the observer is told: a stream
 * goes on for long after, and its bytes and duration would be unknown.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "server_private.h"

void
server_set_access_log(struct server *s, bool on)
{
	atomic_store_explicit(&s->access_log, on, memory_order_relaxed);
}

/* When a request comes in: whether it is logged, and the time. */
void
server_access_begin(struct server_request *req)
{
	req->access = atomic_load_explicit(&req->server->access_log,
					   memory_order_relaxed);
	if (req->access)
		req->arrived_ns = clock_now_ns(CLOCK_MONOTONIC);
}

struct target_walk {
	struct access_log_target *t;
	server_reveal_fn reveal;
	const void *arg;
};

/* server_query_fn: one argument into the target. */
static int
add_argument(void *arg, const char *key, size_t key_len, const char *value,
	     size_t value_len)
{
	struct target_walk *w = arg;

	access_log_target_arg(w->t, key, key_len, value, value_len,
			      value != NULL && w->reveal != NULL &&
			      w->reveal(w->arg, key, key_len));
	return w->t->cut;	/* nothing more fits */
}

void
server_request_log_query(struct server_request *req, server_reveal_fn reveal,
			 const void *arg)
{
	struct target_walk w = { req->access_target, reveal, arg };

	if (!req->access)
		return;
	if (w.t == NULL && (w.t = malloc(sizeof(*w.t))) == NULL)
		return;		/* logged with "-" for a target */
	req->access_target = w.t;
	access_log_target_init(w.t);
	access_log_target_path(w.t, req->path, strlen(req->path));
	server_request_query(req, add_argument, &w);
}

void
server_access_default_target(struct server_request *req)
{
	if (req->access && req->access_target == NULL)
		server_request_log_query(req, NULL, NULL);
}

/*
 * The status and the body bytes handed to libmicrohttpd: a stream's as
 * its reader took them, or 499 if its client left it; a whole answer's
 * length (none for HEAD), or 499 and none if its client left first.
 */
static unsigned
outcome(struct server_request *req, uint64_t *bytes)
{
	struct server_pipe *st = atomic_load(&req->stream);
	bool gone;

	if (st != NULL) {
		pthread_mutex_lock(&st->lock);
		*bytes = st->taken;
		gone = st->gone;
		pthread_mutex_unlock(&st->lock);
		return gone ? 499 : req->status;
	}
	if (req->client_gone) {
		*bytes = 0;
		return 499;
	}
	*bytes = strcmp(req->method, "HEAD") != 0 ? req->resp_len : 0;
	return req->status;
}

/*
 * libmicrohttpd is done with the request: its line, if it is logged and
 * was answered or left by its client.  On its HTTP thread (or the main
 * thread, in MHD_stop_daemon()), after server_stream_completed().
 */
void
server_access_end(struct server_request *req)
{
	static const struct access_log_target none = { .text = "-" };
	const union MHD_ConnectionInfo *info;
	char client[ACCESS_LOG_CLIENT_MAX];
	char line[ACCESS_LOG_LINE_MAX];
	struct access_log_entry e;

	if (!req->access || !(req->queued || req->client_gone))
		return;
	e.duration_ns = clock_now_ns(CLOCK_MONOTONIC) - req->arrived_ns;
	info = MHD_get_connection_info(req->conn,
				       MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	e.client = access_log_client(client, info != NULL ?
				     info->client_addr : NULL);
	e.status = outcome(req, &e.bytes);
	e.method = req->method;
	e.target = req->access_target != NULL ? req->access_target : &none;
	access_log_format(line, sizeof(line), &e);
	log_info("%s", line);
}
