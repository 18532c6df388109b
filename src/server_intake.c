/*
 * server_intake.c - libmicrohttpd's callbacks: a request comes in, its
 * framing is checked, its body is read, and the handler is called; the
 * connection is suspended until the answer is in.  All on the
 * connection's HTTP thread, under that thread's lock.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server_framing.h"
#include "server_private.h"

/* MHD_get_connection_values() callback: one header into the framing. */
static enum MHD_Result
add_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
		   const char *value)
{
	(void)kind;
	server_framing_add(cls, key, value);
	return MHD_YES;
}

/*
 * The framing checks of server_framing.c on this request's headers.
 * Returns a status to answer with now, or 0 to go on.
 */
static unsigned
check_framing(struct server *s, struct MHD_Connection *conn,
	      const char *method, const char *version, const char **why)
{
	struct server_framing f = { 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, add_framing_header,
				  &f);
	return server_framing_check(&f, method, version, s->opts.max_body,
				    why);
}

static struct server_request *
request_new(struct server_thread *t, struct MHD_Connection *conn,
	    const char *url, const char *method)
{
	struct server *s = t->server;
	struct server_request *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	atomic_init(&req->refs, 1);
	atomic_init(&req->state, REQ_HANDLING);
	atomic_init(&req->claimed, false);
	atomic_init(&req->published, false);
	req->server = s;
	req->thread = t;
	req->conn = conn;
	req->method = strdup(method);
	req->path = strdup(url);
	if (req->method == NULL || req->path == NULL) {
		server_request_unref(req);
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	req->next = s->open;
	if (s->open != NULL)
		s->open->prev = req;
	s->open = req;
	s->active++;
	pthread_mutex_unlock(&s->lock);
	return req;
}

static int
append_body(struct server *s, struct server_request *req, const char *data,
	    size_t len)
{
	char *bigger;

	if (req->body_too_large || len > s->opts.max_body - req->body_len) {
		req->body_too_large = true;
		return 0;
	}
	bigger = realloc(req->body, req->body_len + len + 1);
	if (bigger == NULL)
		return -1;
	memcpy(bigger + req->body_len, data, len);
	req->body_len += len;
	bigger[req->body_len] = '\0';
	req->body = bigger;
	return 0;
}

/* The request is complete: call the handler, or suspend until answered. */
static enum MHD_Result
dispatch(struct server *s, struct server_request *req)
{
	int expected = REQ_HANDLING;

	req->handled = true;
	if (atomic_load(&req->state) == REQ_RESPONDED)	/* at shutdown */
		return server_answer_queue(req);
	if (req->body_too_large)
		server_respond_problem(req, 413, "request body too large");
	else if (s->opts.handler(req, s->opts.handler_arg) == SERVER_DONE &&
		 atomic_load(&req->state) != REQ_RESPONDED)
		server_respond_problem(req, 500, "the handler gave no answer");
	if (atomic_load(&req->state) == REQ_RESPONDED)
		return server_answer_queue(req);

	MHD_suspend_connection(req->conn);
	if (!atomic_compare_exchange_strong(&req->state, &expected,
					    REQ_SUSPENDED))
		server_answer_resume(req);	/* answered meanwhile */
	return MHD_YES;
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
	const char *why = NULL;
	unsigned status;

	if (req == NULL) {
		req = request_new(t, conn, url, method);
		if (req == NULL)
			return MHD_NO;
		*con_cls = req;
		status = check_framing(s, conn, method, version, &why);
		if (status != 0) {
			/* Queued before the body: MHD then skips reading it. */
			req->handled = true;
			server_respond_problem(req, status, why);
			return server_answer_queue(req);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (append_body(s, req, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->queued)
		return MHD_YES;
	if (!req->handled)
		return dispatch(s, req);
	/* Resumed: the answer is in. */
	return server_answer_queue(req);
}

void
server_intake_on_completed(void *cls, struct MHD_Connection *conn,
			   void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct server_thread *t = cls;
	struct server *s = t->server;
	struct server_request *req = *con_cls;

	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	*con_cls = NULL;
	server_answer_run_builder(req, false);	/* never resumed: release its arg */
	pthread_mutex_lock(&s->lock);
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		s->open = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	if (--s->active == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	server_request_unref(req);
}

void
server_intake_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}
