/*
 * server.c - see server.h.
 *
 * A request's answer may be set on any thread, while its MHD thread may
 * still be inside the handler.  Suspending a connection that is then never
 * resumed, or resuming one that was never suspended, are both fatal with
 * MHD, so the hand-over is one atomic state:
 *
 *   HANDLING  --handler returns LATER, connection suspended-->  SUSPENDED
 *   HANDLING  --server_respond()-->                             RESPONDED
 *   SUSPENDED --server_respond(), which then resumes-->         RESPONDED
 *
 * The MHD thread suspends first and then tries HANDLING -> SUSPENDED.  If
 * the answer came in between, that fails and the MHD thread resumes the
 * connection itself (resuming any time after suspending is allowed).  So
 * every suspend is matched by exactly one resume, whoever wins.
 *
 * Two threads may answer the same request (a run's callback, and the
 * shutdown's 503): the first to set `claimed` writes the answer, and
 * state becomes RESPONDED only after it has; the other's answer is
 * dropped.  An answer may also be a builder (server_respond_later()),
 * run on the MHD thread when the connection resumes, or at the latest
 * when MHD is done with the connection, so that it runs exactly once.
 *
 * Threads: each HTTP thread runs its own MHD daemon in MHD's "external
 * epoll" mode (MHD_run() when its epoll fd or our eventfd is ready); the
 * daemons share one listening socket.  With MHD's internal thread pool,
 * MHD_quiesce_daemon() races the pool's loop and MHD aborts the process;
 * here it runs under the thread's lock, between two MHD_run() calls.  In
 * this mode MHD has no wake-up channel of its own: resume() writes the
 * thread's eventfd.  docs/THREADS.md has the whole story.
 *
 * Locking: the server lock guards the list of open requests and the
 * counts; it is a leaf lock.  Never held while calling MHD or the handler.
 * A thread's lock is held while its daemon runs, so handlers run under it;
 * only server_quiesce() takes it from outside.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "server.h"
#include "timer.h"

#define MAX_RESPONSE_HEADERS 4
#define LISTEN_BACKLOG 4096	/* capped by net.core.somaxconn */
#define FDS_PER_THREAD 3	/* MHD's epoll fd, ours, the eventfd */

enum req_state { REQ_HANDLING, REQ_SUSPENDED, REQ_RESPONDED };

struct server_request {
	atomic_uint refs;
	atomic_int state;		/* enum req_state, see the top */
	atomic_bool claimed;		/* someone is writing the answer */
	atomic_bool published;		/* ...and has handed it over */
	server_build_fn build;		/* set by the claimer, run once */
	void *build_arg;
	struct server *server;
	struct server_thread *thread;	/* borrowed: whose daemon has the
					 * connection; outlives every resume
					 * (server_free waits for them) */
	struct MHD_Connection *conn;	/* only used on the MHD thread */
	char *method, *path;
	char *body;
	size_t body_len;
	bool body_too_large;
	bool stop_answered;		/* server lock: server_free() saw it */
	bool handled;			/* the handler was called */
	bool queued;			/* the response went to MHD */

	/*
	 * The answer: written by the claimer before state becomes RESPONDED,
	 * or by its builder on the MHD thread; headers only by the handler
	 * or the builder, both on the MHD thread.
	 */
	unsigned status;
	const char *content_type;	/* a string constant */
	char *resp_body;
	size_t resp_len;
	size_t nheaders;
	struct { char *name, *value; } headers[MAX_RESPONSE_HEADERS];

	/* Guarded by the server lock. */
	struct server_request *prev, *next;
};

/*
 * One HTTP thread and the MHD daemon that only it runs.  The daemons share
 * one listening socket, as the workers of MHD's own thread pool do.
 */
struct server_thread {
	struct server *server;	/* borrowed: the owner */
	struct MHD_Daemon *mhd;	/* owned; used only under lock */
	pthread_t tid;
	int epfd;		/* owned: MHD's epoll fd and wake_fd */
	int wake_fd;		/* owned eventfd: run MHD again */
	atomic_bool wake_pending;	/* wake_fd written, not yet read */
	pthread_mutex_t lock;	/* guards mhd: MHD_run(), MHD_get_timeout(),
				 * MHD_quiesce_daemon() */
};

struct server {
	struct server_options opts;	/* opts.addr is not kept */
	struct server_thread *threads;	/* owned, nthreads of them */
	unsigned nthreads;
	int listen_fd;		/* main thread only; -1 once quiesced */
	atomic_bool stop;	/* the threads are to return */
	atomic_bool draining;	/* set once quiesced */
	pthread_mutex_t lock;	/* guards the list and active */
	pthread_cond_t idle;	/* active dropped to 0 */
	struct server_request *open;
	size_t active;
};

/* ---- requests -------------------------------------------------------------- */

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
	free(req->body);
	free(req->method);
	free(req->path);
	free(req);
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
	*len = req->body_len;
	return req->body;
}

const char *
server_request_header(struct server_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
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
static void
wake(struct server_thread *t)
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
static void
resume(struct server_request *req)
{
	MHD_resume_connection(req->conn);
	wake(req->thread);
}

/*
 * Makes the claimed answer visible; resumes if the connection waits.  Then
 * `published`: server_free() waits for it, since resume() still uses the
 * connection and the HTTP thread.
 */
static void
publish(struct server_request *req)
{
	if (atomic_exchange(&req->state, REQ_RESPONDED) == REQ_SUSPENDED)
		resume(req);
	atomic_store(&req->published, true);
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

void
server_respond(struct server_request *req, unsigned status,
	       const char *content_type, char *body, size_t len)
{
	if (building == req) {		/* the builder, on the MHD thread */
		set_answer(req, status, content_type, body, len);
		return;
	}
	if (atomic_exchange(&req->claimed, true)) {
		free(body);	/* answered already (e.g. at shutdown) */
		return;
	}
	set_answer(req, status, content_type, body, len);
	publish(req);
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
	publish(req);
}

/* Runs the builder, if any, once.  On the MHD thread. */
static void
run_builder(struct server_request *req, bool keep)
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
static void
respond_problem(struct server_request *req, unsigned status,
		const char *detail)
{
	size_t len;
	char *body = http_answer_body(http_problem_new(status, detail),
				      &status, &len);

	server_respond(req, status, HTTP_PROBLEM_JSON, body, len);
}

/* MHD refuses only on memory or a bad header; say which is missing. */
static void
add_header(const struct server_request *req, struct MHD_Response *resp,
	   const char *name, const char *value)
{
	if (MHD_add_response_header(resp, name, value) != MHD_YES)
		log_warnx("%s %s: header %s dropped from the %u answer",
			  req->method, req->path, name, req->status);
}

/* Hands the answer to MHD.  On the MHD thread, once state is RESPONDED. */
static enum MHD_Result
queue_answer(struct server_request *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t i;

	req->queued = true;
	run_builder(req, true);
	resp = MHD_create_response_from_buffer(req->resp_len,
					       req->resp_body,
					       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		log_warnx("%s %s: no memory for the %u answer; connection "
			  "closed", req->method, req->path, req->status);
		return MHD_NO;
	}
	req->resp_body = NULL;	/* MHD owns it now */
	if (req->content_type != NULL)
		add_header(req, resp, MHD_HTTP_HEADER_CONTENT_TYPE,
			   req->content_type);
	for (i = 0; i < req->nheaders; i++)
		add_header(req, resp, req->headers[i].name,
			   req->headers[i].value);
	/* Stopping: tell keep-alive clients not to send another request. */
	if (atomic_load_explicit(&req->server->draining, memory_order_relaxed))
		add_header(req, resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, req->status, resp);
	MHD_destroy_response(resp);
	if (ret != MHD_YES)
		log_warnx("%s %s: libmicrohttpd refused the %u answer; "
			  "connection closed", req->method, req->path,
			  req->status);
	return ret;
}

/* ---- request framing --------------------------------------------------------- */

struct framing {
	unsigned content_lengths;
	bool transfer_encoding;
	unsigned transfer_encodings;	/* headers seen */
	bool other_coding;		/* a Transfer-Encoding not "chunked" */
	unsigned long long content_length;
	bool bad_length;
};

static enum MHD_Result
count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
	      const char *value)
{
	struct framing *f = cls;
	char *end;

	(void)kind;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		f->content_lengths++;
		errno = 0;
		f->content_length = strtoull(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			f->bad_length = true;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->transfer_encoding = true;
		f->transfer_encodings++;
		if (strcasecmp(value, "chunked") != 0)
			f->other_coding = true;
	}
	return MHD_YES;
}

/*
 * Checks what MHD 0.9.75 lets through: two Content-Length headers, or one
 * with Transfer-Encoding, are how requests get smuggled past a proxy.
 * Returns a status to answer with now, or 0 to go on.
 */
/* RFC 9110 5.6.2: a method is a token. */
static bool
is_token(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(tchar, *s) != NULL))
			return false;
	return true;
}

static unsigned
check_framing(struct server *s, struct MHD_Connection *conn,
	      const char *method, const char *version, const char **why)
{
	struct framing f = { 0 };

	/*
	 * MHD 0.9.75 passes any bytes as the method; they would end up in
	 * a 405's detail and the log (found by a review: "P\xffST").
	 */
	if (!is_token(method)) {
		*why = "malformed request method";
		return 400;
	}
	/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. */
	if (!strcmp(version, MHD_HTTP_VERSION_1_1) &&
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					MHD_HTTP_HEADER_HOST) == NULL) {
		*why = "missing Host header";
		return 400;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	if (f.content_lengths > 1) {
		*why = "more than one Content-Length header";
		return 400;
	}
	if (f.content_lengths == 1 && f.transfer_encoding) {
		*why = "both Content-Length and Transfer-Encoding";
		return 400;
	}
	/*
	 * MHD 0.9.75 frames only a lone "Transfer-Encoding: chunked".  With
	 * any other value ("gzip", "gzip, chunked") it waits for a body it
	 * cannot delimit and the request is never answered; two headers
	 * ("chunked" twice) it takes as chunked where a proxy may not.  RFC
	 * 9112 6.3: answer 400 and close.  (Found by tests/system/test_api.py.)
	 */
	if (f.transfer_encodings > 1 || f.other_coding) {
		*why = "unsupported Transfer-Encoding (only chunked is)";
		return 400;
	}
	if (f.bad_length) {
		*why = "malformed Content-Length";
		return 400;
	}
	if (f.content_lengths == 1 && f.content_length > s->opts.max_body) {
		*why = "request body too large";
		return 413;
	}
	return 0;
}

/* ---- MHD callbacks --------------------------------------------------------------- */

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
		return queue_answer(req);
	if (req->body_too_large)
		respond_problem(req, 413, "request body too large");
	else if (s->opts.handler(req, s->opts.handler_arg) == SERVER_DONE &&
		 atomic_load(&req->state) != REQ_RESPONDED)
		respond_problem(req, 500, "the handler gave no answer");
	if (atomic_load(&req->state) == REQ_RESPONDED)
		return queue_answer(req);

	MHD_suspend_connection(req->conn);
	if (!atomic_compare_exchange_strong(&req->state, &expected,
					    REQ_SUSPENDED))
		resume(req);	/* answered meanwhile */
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
	   const char *method, const char *version, const char *upload_data,
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
			respond_problem(req, status, why);
			return queue_answer(req);
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
	return queue_answer(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
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
	run_builder(req, false);	/* never resumed: release its arg */
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

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
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

/* ---- the server ------------------------------------------------------------------ */

/*
 * MHD's default connection limit is FD_SETSIZE-4 (1020), far too low for
 * thousands of waiting clients.  Use what the fd limit allows, less a
 * reserve: 64 for the daemon's own files and the listening socket, and
 * the 3 that each HTTP thread holds (two epoll fds and an eventfd).
 */
static unsigned
default_max_connections(unsigned threads)
{
	rlim_t reserve = 64 + (rlim_t)FDS_PER_THREAD * threads;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1000;
	if (rl.rlim_cur < reserve + 64)
		return 64;
	return rl.rlim_cur - reserve > 1000000 ? 1000000 :
	       (unsigned)(rl.rlim_cur - reserve);
}

/* "127.0.0.1:8080" or "[::1]:8080", for messages. */
static void
format_addr(const struct sockaddr *addr, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const void *)addr;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	}
}

/*
 * The listening socket that every thread's daemon accepts from, set up as
 * MHD sets up its own: SO_REUSEADDR, and IPv6 only for an IPv6 address.
 */
static int
listen_socket(const struct sockaddr *addr, socklen_t addrlen)
{
	char where[INET6_ADDRSTRLEN + 8];
	int fd, on = 1;

	format_addr(addr, where, sizeof(where));
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_warn("cannot listen on %s: socket", where);
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0)) {
		log_warn("cannot listen on %s: setsockopt", where);
		close(fd);
		return -1;
	}
	if (bind(fd, addr, addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		log_warn("cannot listen on %s", where);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * How long the thread may wait for events: until MHD must close an idle
 * connection, 0 when it holds data that no new event would announce, or
 * for ever (-1).
 */
static int
next_timeout(struct MHD_Daemon *mhd)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(mhd, &ms) != MHD_YES)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * One HTTP thread: waits on its daemon's epoll fd (connections and the
 * listening socket) and on its wake_fd, then runs the daemon under t->lock.
 */
static void *
serve(void *arg)
{
	struct server_thread *t = arg;
	struct server *s = t->server;
	struct epoll_event ev[2];
	uint64_t count;
	int i, n, timeout;

	pthread_mutex_lock(&t->lock);
	timeout = next_timeout(t->mhd);
	pthread_mutex_unlock(&t->lock);
	for (;;) {
		n = epoll_wait(t->epfd, ev, 2, timeout);
		if (n < 0 && errno != EINTR) {
			/* EBADF, EFAULT or EINVAL: a bug of ours.  Looping
			 * on it would burn a core and answer nobody. */
			log_warn("HTTP thread: epoll_wait");
			abort();
		}
		for (i = 0; i < n; i++)
			if (ev[i].data.ptr == &t->wake_fd) {
				/*
				 * Read, then clear.  The other way round, a
				 * write that came in between is read here
				 * while wake_pending stays set, and later
				 * resumes never write: lost until the next
				 * network event (seen under load in
				 * test_concurrency).  This way a resume that
				 * found it set is seen by MHD_run() below:
				 * the exchange pairs with wake()'s.
				 */
				if (read(t->wake_fd, &count, sizeof(count)) < 0 &&
				    errno != EAGAIN)
					log_warn("HTTP thread: eventfd");
				atomic_exchange(&t->wake_pending, false);
			}
		if (atomic_load_explicit(&s->stop, memory_order_acquire))
			return NULL;
		pthread_mutex_lock(&t->lock);
		MHD_run(t->mhd);	/* it logs its own errors */
		timeout = next_timeout(t->mhd);
		pthread_mutex_unlock(&t->lock);
	}
}

/*
 * Stops one daemon; its thread must not be running.  Quiesced first so that
 * MHD does not close the shared listening socket: that is ours to close.
 */
static void
stop_daemon(struct server_thread *t)
{
	if (t->mhd != NULL) {
		MHD_quiesce_daemon(t->mhd);
		MHD_stop_daemon(t->mhd);
	}
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	pthread_mutex_destroy(&t->lock);
}

/* Starts the daemon of thread t, not yet the thread. */
static int
start_daemon(struct server *s, struct server_thread *t, unsigned limit)
{
	const union MHD_DaemonInfo *info;
	struct epoll_event mhd_ev = { .events = EPOLLIN };
	struct epoll_event wake_ev = { .events = EPOLLIN,
				       .data.ptr = &t->wake_fd };

	t->server = s;
	atomic_init(&t->wake_pending, false);
	pthread_mutex_init(&t->lock, NULL);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/*
	 * No MHD_USE_INTERNAL_POLLING_THREAD: MHD runs only inside MHD_run()
	 * on our thread.  With MHD's own threads, MHD_quiesce_daemon() races
	 * their loop and aborts the daemon ("Failed to remove listen FD from
	 * epoll set", seen in CI, about 1 SIGTERM in 1,500 here under load).
	 * The logger comes first, so that MHD logs nothing to stderr itself.
	 */
	t->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
				  MHD_USE_ERROR_LOG | MHD_USE_TURBO,
		0, NULL, NULL, on_request, t,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->opts.connection_memory,
		MHD_OPTION_CONNECTION_TIMEOUT, s->opts.connection_timeout_s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, t,
		MHD_OPTION_END);
	if (t->mhd == NULL) {
		log_warnx("cannot serve HTTP: libmicrohttpd failed to start");
		stop_daemon(t);
		return -1;
	}
	info = MHD_get_daemon_info(t->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (t->epfd < 0 || t->wake_fd < 0 || info == NULL ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd_ev) != 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake_fd, &wake_ev) != 0) {
		log_warn("cannot serve HTTP: epoll");
		stop_daemon(t);
		return -1;
	}
	return 0;
}

/* Tells the first n threads to return, and joins them. */
static void
stop_threads(struct server *s, unsigned n)
{
	unsigned i;

	atomic_store_explicit(&s->stop, true, memory_order_release);
	for (i = 0; i < n; i++) {
		atomic_store(&s->threads[i].wake_pending, false);
		wake(&s->threads[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(s->threads[i].tid, NULL);
}

/*
 * Joins the first `running` threads, stops the first `started` daemons
 * (closing what connections they still have: on_completed() runs on this
 * thread) and frees the server.
 */
static void
destroy(struct server *s, unsigned running, unsigned started)
{
	unsigned i;

	stop_threads(s, running);
	for (i = 0; i < started; i++)
		stop_daemon(&s->threads[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s->threads);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct server *
server_new(const struct server_options *opts)
{
	struct server *s = calloc(1, sizeof(*s));
	unsigned limit, n, started = 0, running = 0;
	sigset_t all, old;
	int err = 0;

	if (s == NULL) {
		log_warn("server");
		return NULL;
	}
	s->opts = *opts;
	s->opts.addr = NULL;	/* borrowed for this call only */
	s->listen_fd = -1;
	atomic_init(&s->stop, false);
	atomic_init(&s->draining, false);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	n = s->nthreads = opts->threads > 0 ? opts->threads : 1;
	limit = opts->max_connections ? opts->max_connections :
		default_max_connections(n);
	if (limit < n)
		limit = n;	/* MHD takes 0 as "its default" */
	s->threads = calloc(n, sizeof(*s->threads));
	if (s->threads == NULL) {
		log_warn("server");
		goto fail;
	}
	s->listen_fd = listen_socket(opts->addr, opts->addrlen);
	if (s->listen_fd < 0)
		goto fail;
	/* The limit is split between the threads, as MHD's own pool does. */
	for (; started < n; started++)
		if (start_daemon(s, &s->threads[started],
				 limit / n + (started < limit % n)) != 0)
			goto fail;
	/* The threads inherit this mask: signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; running < n; running++) {
		err = pthread_create(&s->threads[running].tid, NULL, serve,
				     &s->threads[running]);
		if (err != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (running < n) {
		errno = err;
		log_warn("cannot start an HTTP thread");
		goto fail;
	}
	log_debug("HTTP: %u threads, at most %u connections, %zu bytes "
		  "each", n, limit, opts->connection_memory);
	return s;
fail:
	destroy(s, running, started);
	return NULL;
}

uint16_t
server_port(struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (s->listen_fd < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void
server_quiesce(struct server *s)
{
	unsigned i;

	if (atomic_exchange(&s->draining, true))
		return;
	/* Under its lock, each daemon is between two MHD_run() calls. */
	for (i = 0; i < s->nthreads; i++) {
		pthread_mutex_lock(&s->threads[i].lock);
		MHD_quiesce_daemon(s->threads[i].mhd);
		pthread_mutex_unlock(&s->threads[i].lock);
	}
	/*
	 * No daemon looks at the socket now.  Closing it resets new and
	 * backlogged clients at once (a load balancer moves on) instead of
	 * leaving them in a backlog that nobody accepts from.
	 */
	close(s->listen_fd);
	s->listen_fd = -1;
}

size_t
server_active(struct server *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->active;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t
server_drain(struct server *s, int64_t timeout_ns)
{
	struct timespec ts;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ns / 1000000000;
	ts.tv_nsec += timeout_ns % 1000000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->lock);
	while (s->active > 0 &&
	       pthread_cond_timedwait(&s->idle, &s->lock, &ts) != ETIMEDOUT)
		;
	n = s->active;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/*
 * The next open request not yet answered and not yet seen by server_free(),
 * with a reference; NULL when there is none.  Walks from the head each time
 * (the list changes while we answer), and needs no memory, so the stop
 * cannot fail to resume a connection.
 */
static struct server_request *
next_unanswered(struct server *s)
{
	struct server_request *req;

	pthread_mutex_lock(&s->lock);
	for (req = s->open; req != NULL; req = req->next)
		if (!req->stop_answered &&
		    atomic_load(&req->state) != REQ_RESPONDED) {
			req->stop_answered = true;
			server_request_ref(req);
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return req;
}

/*
 * Waits until no answer is half handed over: claimed by some thread (a
 * timer, a worker) that has not yet resumed the connection and woken its
 * HTTP thread.  After next_unanswered() has claimed everything, no thread
 * can claim an open request any more, so this ends within microseconds.
 */
static void
wait_for_publishers(struct server *s)
{
	const struct timespec ms = { 0, 1000000 };
	struct server_request *req;
	bool busy;

	for (;;) {
		busy = false;
		pthread_mutex_lock(&s->lock);
		for (req = s->open; req != NULL && !busy; req = req->next)
			busy = atomic_load(&req->claimed) &&
			       !atomic_load(&req->published);
		pthread_mutex_unlock(&s->lock);
		if (!busy)
			return;
		nanosleep(&ms, NULL);
	}
}

void
server_free(struct server *s)
{
	struct server_request *req;
	size_t n = 0;

	if (s == NULL)
		return;
	/*
	 * MHD must not stop with a connection suspended.  Answer whatever
	 * still waits (normally nothing: runs were cancelled before) and
	 * give the HTTP threads a moment to send those answers.
	 */
	while ((req = next_unanswered(s)) != NULL) {
		respond_problem(req, 503, "the daemon is stopping");
		server_request_unref(req);
		n++;
	}
	wait_for_publishers(s);
	if (n > 0) {
		log_warnx("answered %zu waiting requests with 503 at stop", n);
		server_drain(s, 1000000000);
	}
	destroy(s, s->nthreads, s->nthreads);
}
