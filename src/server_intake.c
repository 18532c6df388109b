/*
 * server_intake.c - a request's events on its HTTP thread.
 * libmicrohttpd's callbacks, under that thread's lock: a request comes
 * in, its framing is checked, its body is read, and the handler is
 * called; the connection is suspended until the answer is in, and the
 * answer queued, a stream's by server_stream.c and a whole one by
 * server_answer.c.  And, from the thread's loop outside MHD_run(), its
 * client hanging up while it waits.  Only here are streamed and whole
 * answers told apart: the files below know nothing of each other.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_framing.h"
#include "server_private.h"
#include "timer.h"

/* The refusal of "*" with any method but OPTIONS (RFC 9112 3.2.4). */
static const struct server_target_verdict asterisk_refused = {
	400, SERVER_TARGET_ASTERISK, "the asterisk-form (*) is for OPTIONS "
	"only", "bad_target"
};

/* MHD_get_connection_values_n() callback: one header into the framing. */
static enum MHD_Result
add_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
		   size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	server_framing_add_n(cls, key, key_size, value != NULL ? value : "",
			     value_size);
	return MHD_YES;
}

/*
 * The framing checks of server_framing.c on this request's headers.
 * Returns a status to answer with now, with *why and *reason, or 0.
 */
static unsigned
check_framing(struct server *s, struct MHD_Connection *conn,
	      const char *method, const char *version, const char **why,
	      const char **reason)
{
	struct server_framing f = { 0 };

	MHD_get_connection_values_n(conn, MHD_HEADER_KIND,
				    add_framing_header, &f);
	return server_framing_verdict(&f, method, version, s->opts.max_body,
				      why, reason);
}

/*
 * A new request, not yet on the server's open list: it goes there only
 * once it is complete and its framing checked (dispatch()), so that the
 * shutdown cannot claim it while this thread still answers it alone.
 */
static struct server_request *
request_new(struct server_thread *t, struct MHD_Connection *conn,
	    const char *url, const char *method)
{
	size_t mlen = strlen(method) + 1, ulen = strlen(url) + 1;
	struct server_request *req = calloc(1, sizeof(*req) + mlen + ulen);

	if (req == NULL)
		return NULL;
	atomic_init(&req->refs, 1);
	atomic_init(&req->state, REQ_HANDLING);
	atomic_init(&req->claimed, false);
	atomic_init(&req->counted, false);
	atomic_init(&req->reason, NULL);
	atomic_init(&req->stream, NULL);
	req->server = t->server;
	req->thread = t;
	req->conn = conn;
	req->watch_fd = -1;
	req->method = memcpy(req->strings, method, mlen);
	req->path = memcpy(req->strings + mlen, url, ulen);
	server_access_begin(req);
	atomic_fetch_add(&t->server->active, 1);
	return req;
}

/* Puts a complete request on the open list, where server_free() sees it. */
static void
list_request(struct server *s, struct server_request *req)
{
	pthread_mutex_lock(&s->lock);
	req->next = s->open;
	if (s->open != NULL)
		s->open->prev = req;
	s->open = req;
	req->listed = true;
	pthread_mutex_unlock(&s->lock);
}

/* Takes a finished request off the list and out of the count. */
static void
unlist_request(struct server *s, struct server_request *req)
{
	pthread_mutex_lock(&s->lock);
	if (req->listed) {
		if (req->prev != NULL)
			req->prev->next = req->next;
		else
			s->open = req->next;
		if (req->next != NULL)
			req->next->prev = req->prev;
		req->prev = req->next = NULL;
		req->listed = false;
	}
	/* Under the lock, so that server_drain() cannot miss the wake-up. */
	if (atomic_fetch_sub(&s->active, 1) == 1)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Hands the answer to MHD: a stream's status, headers and reader, or a
 * whole answer.  Once state is RESPONDED.
 */
static enum MHD_Result
queue(struct server_request *req)
{
	if (atomic_load(&req->stream) != NULL)
		return server_stream_queue(req);
	return server_answer_queue(req);
}

/*
 * Waits for the answer with the connection suspended, holding no thread;
 * its socket is watched meanwhile for the client hanging up.
 */
static enum MHD_Result
suspend(struct server_request *req)
{
	struct server *s = req->server;
	int expected = REQ_HANDLING;

	MHD_suspend_connection(req->conn);
	/* Counted first: the publisher that resumes it counts it down. */
	atomic_fetch_add(&s->waiting, 1);
	if (!atomic_compare_exchange_strong(&req->state, &expected,
					    REQ_SUSPENDED)) {
		atomic_fetch_sub(&s->waiting, 1);
		server_handover_resume(req);	/* answered meanwhile */
	} else {
		server_watch_begin(req);
	}
	return MHD_YES;
}

/* The request is complete: call the handler, or suspend until answered. */
static enum MHD_Result
dispatch(struct server *s, struct server_request *req)
{
	if (server_limits_body_in(req) != 0)
		return MHD_NO;	/* cut off: told 408 already */
	req->handled = true;
	list_request(s, req);
	if (req->body.too_large)
		server_answer_refuse(req, 413, "request body too large",
				     "body_too_large");
	else if (s->opts.handler(req, s->opts.handler_arg) == SERVER_DONE &&
		 atomic_load(&req->state) != REQ_RESPONDED)
		server_respond_problem(req, 500, "the handler gave no answer");
	/* While the query string is there; the handler may have set one. */
	server_access_default_target(req);
	/* Whatever the handler needed of it, it has taken. */
	server_body_clear(&req->body);
	if (atomic_load(&req->state) == REQ_RESPONDED)
		return queue(req);
	return suspend(req);
}

/*
 * Marks req the first request of its connection if it is, and takes the
 * connection out of server.fresh: after request_new() has counted req in
 * server.active (see server.fresh).
 */
static void
mark_first(struct server *s, struct server_request *req)
{
	struct server_conn *c = server_conn_of(req->conn);

	if (c != NULL && c->fresh) {
		c->fresh = false;
		req->first = true;
		atomic_fetch_sub(&s->fresh, 1);
	}
}

/*
 * The target's verdict from server_intake_on_uri() (*con_cls), or the
 * origin form's; an asterisk with any method but OPTIONS refused.
 */
static const struct server_target_verdict *
target_verdict(void *con_cls, const char *method)
{
	static const struct server_target_verdict origin = { 0 };
	const struct server_target_verdict *v = con_cls;

	if (v == NULL)
		return &origin;
	if (v->form == SERVER_TARGET_ASTERISK && v->status == 0 &&
	    strcmp(method, "OPTIONS") != 0)
		return &asterisk_refused;
	return v;
}

/* The first call for a request: headers are in, the body may follow. */
static enum MHD_Result
begin_request(struct server_thread *t, struct MHD_Connection *conn,
	      const char *url, const char *method, const char *version,
	      void **con_cls)
{
	const struct server_target_verdict *v = target_verdict(*con_cls,
								method);
	const char *path = url, *why = v->why, *reason = v->reason;
	struct server_request *req;
	struct server_conn *c;
	int status = (int)v->status;

	/* RFC 9112 3.2.2: an absolute-form target is served as its path. */
	if (v->form == SERVER_TARGET_ABSOLUTE) {
		path = server_framing_absolute_path(url);
		if (*path == '\0')
			path = "/";
	}
	if ((req = request_new(t, conn, path, method)) == NULL)
		return MHD_NO;
	mark_first(t->server, req);
	/* Anything else that gets here is HTTP/1.1 to MHD: chunked. */
	req->http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
	if (status == 0)
		status = (int)check_framing(t->server, conn, method, version,
					    &why, &reason);
	*con_cls = req;
	c = server_conn_of(conn);
	status = server_limits_headers_in(req, c != NULL ? &c->limits : NULL,
					  status, &why, &reason);
	if (status < 0)
		return MHD_NO;	/* cut off: told 408 already */
	if (status == 0)
		return MHD_YES;
	/* Queued before the body: MHD then skips reading it. */
	req->handled = true;
	server_access_default_target(req);
	server_answer_refuse(req, (unsigned)status, why, reason);
	return server_answer_queue(req);
}

enum MHD_Result
server_intake_on_request(void *cls, struct MHD_Connection *conn,
			 const char *url, const char *method,
			 const char *version, const char *upload_data,
			 size_t *upload_data_size, void **con_cls)
{
	struct server_thread *t = cls;
	struct server *s = t->server;
	struct server_request *req = *con_cls;

	if (req == NULL || server_framing_is_target_verdict(req))
		return begin_request(t, conn, url, method, version, con_cls);
	if (*upload_data_size != 0) {
		if (server_body_append(&req->body, upload_data,
				       *upload_data_size, s->opts.max_body))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->queued)
		return MHD_YES;
	if (!req->handled)
		return dispatch(s, req);
	/* Resumed: the answer is in, or the client has gone. */
	server_watch_end(req);
	if (req->client_gone)
		return MHD_NO;	/* nobody to send it to: close */
	return queue(req);
}

void
server_intake_on_completed(void *cls, struct MHD_Connection *conn,
			   void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct server_thread *t = cls;
	struct server_request *req = *con_cls;

	(void)conn;
	if (req == NULL || server_framing_is_target_verdict(req)) {
		*con_cls = NULL;
		return;
	}
	*con_cls = NULL;
	server_limits_request_done(req);
	server_watch_end(req);
	/* A stream cut short by its client reports it (gone) first. */
	server_stream_completed(req, toe);
	server_access_end(req);
	/* Never resumed, or resumed for nothing: release their args. */
	server_answer_run_builder(req, false);
	server_request_run_gone(req, false);
	unlist_request(t->server, req);
	server_request_unref(req);
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION: a connection accepted counts as fresh
 * until its first request comes in (mark_first()) or it closes.  Out of
 * memory, it is not counted: its first request is then treated as a later
 * one, as before this count existed.
 */
void
server_intake_on_connection(void *cls, struct MHD_Connection *conn,
			    void **socket_context,
			    enum MHD_ConnectionNotificationCode toe)
{
	struct server_thread *t = cls;
	struct server_conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = calloc(1, sizeof(*c));
		if (c != NULL) {
			c->fresh = true;
			atomic_fetch_add(&t->server->fresh, 1);
			server_limits_accepted(t, conn, &c->limits);
			c->tls = server_tls_current(t->server);
		}
		*socket_context = c;
		return;
	}
	if (c != NULL && c->fresh)
		atomic_fetch_sub(&t->server->fresh, 1);
	if (c != NULL)
		server_limits_closed(t, &c->limits);
	server_reject_closed(t->server, conn, c);
	if (c != NULL)	/* gnutls_deinit() has run: see server_tls.c */
		tls_creds_unref(c->tls);
	free(c);
	*socket_context = NULL;
}

/*
 * The client of a suspended request hung up: its HTTP thread saw it on
 * the watch, has ended the watch, and calls this, outside MHD_run().  A
 * stream waiting for its next piece is the stream's to end; any other
 * request waits for its answer, and is dropped as an answer.
 */
void
server_intake_on_hang_up(struct server_request *req)
{
	if (atomic_load(&req->stream) != NULL)
		server_stream_client_gone(req);
	else
		server_answer_client_gone(req);
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK: sees the request target before it is
 * decoded.  Returns NULL for a plain path, else its verdict from
 * server_framing_target() (a static constant), which begin_request()
 * acts on: a refusal, or the absolute or asterisk form.
 */
void *
server_intake_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const struct server_target_verdict *v = server_framing_target(uri);

	(void)cls;
	server_reject_line_seen(conn);
	if (v->status == 0 && v->form == SERVER_TARGET_ORIGIN)
		return NULL;
	return (void *)v;	/* never written through: see target_verdict() */
}

/*
 * What libmicrohttpd 0.9.75 says of a client's malformed request just
 * before it refuses it (server_reject_logged() counts the refusal).
 */
static bool
is_client_error(const char *msg)
{
	static const char *const words[] = {
		"Not enough memory in pool to allocate header record",
		"Failed to parse `Content-Length' header",
		"Too large value of 'Content-Length' header",
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strncmp(msg, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

/*
 * Any other message of libmicrohttpd's is a warning, at most one a second
 * for the whole server, so that no client (nor a storm of failed accepts)
 * floods the log; those held back are counted in the next one and are
 * logged at debug level.
 */
static void
warn_at_most_each_second(struct server *s, const char *msg)
{
	int64_t now = timer_now_ns(), next = atomic_load(&s->mhd_warn_next_ns);
	unsigned held;

	if (now < next || !atomic_compare_exchange_strong(
		    &s->mhd_warn_next_ns, &next, now + 1000000000)) {
		atomic_fetch_add(&s->mhd_warn_held, 1);
		log_debug("libmicrohttpd: %s", msg);
		return;
	}
	held = atomic_exchange(&s->mhd_warn_held, 0);
	if (held > 0)
		log_warnx("libmicrohttpd: %s (and %u more in the last second "
			  "or more, at debug level)", msg, held);
	else
		log_warnx("libmicrohttpd: %s", msg);
}

/* MHD_OPTION_EXTERNAL_LOGGER, with the thread as cls. */
void
server_intake_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct server_thread *t = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/*
	 * MHD's words for any failed TLS handshake: a client's doing (plain
	 * HTTP, an old version, a TCP health check that connects and
	 * closes), not a fault of ours, and frequent: debug, not warning.
	 */
	if (strstr(msg, "handshake message out of context") != NULL) {
		log_debug("TLS: a handshake failed");
		return;
	}
	/*
	 * A refusal of a client's malformed request is the client's doing,
	 * and is counted: at warning level, any client could flood the log.
	 */
	if (server_reject_logged(t->server, msg) ||
	    is_client_error(msg)) {
		log_debug("libmicrohttpd: %s", msg);
		return;
	}
	warn_at_most_each_second(t->server, msg);
}
