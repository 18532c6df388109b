/*
 * server_private.h - what the parts of the server share; not for the rest
 * of the daemon, which sees only server.h.
 *
 * The server is in layers, a file each; a file calls only the ones below
 * it, and a choice that needs a higher one (a streamed answer, or a whole
 * one?) is made up there:
 *   server.c           its life: listening socket, start, quiesce, drain,
 *                      stop
 *   server_thread.c    the HTTP threads: their daemons, and the event loop
 *                      that runs libmicrohttpd, takes wake-ups, and hands
 *                      on a client's hang-up
 *   server_intake.c    a request's events on its HTTP thread:
 *                      libmicrohttpd's callbacks (it comes in, its framing
 *                      is checked, its body read, the handler called, its
 *                      answer queued) and its client hanging up; it alone
 *                      tells a streamed answer from a whole one
 *   server_stream.c    streamed answers: pieces handed over from any thread
 *                      to libmicrohttpd's content reader
 *   server_answer.c    whole answers: set from any thread, built and handed
 *                      to libmicrohttpd; a gone client's request dropped
 *   server_handover.c  the hand-over below both: an answer published, a
 *                      connection resumed and its thread woken, and a
 *                      publisher's last touch of the server
 *   server_watch.c     the hang-up watch of a suspended connection
 *   server_tls.c       TLS: the current credentials, swapped by a reload,
 *                      and GnuTLS's callback that serves a connection's
 *                      credentials
 *   server_request.c   the request object: references, what the handler
 *                      reads and leaves on it, the report to the observer
 *   server_access.c    the access log: a request's target, and its line
 *                      once libmicrohttpd is done with it
 *   server_limits.c    connection limits, and the deadlines of a request's
 *                      headers and body (hooks called by server_intake.c
 *                      and server_thread.c)
 *   server_reject.c    libmicrohttpd's own refusals, which never become a
 *                      request: counted from its log, and the request
 *                      line it closes on silently answered 400
 * and, with no socket, server_pipe.c (what a stream holds unsent, and its
 * states, under its lock), server_body.c and server_framing.c.
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
 * A streamed answer (server_stream_begin(), from the handler) claims the
 * request and goes HANDLING -> RESPONDED at once: its status and headers
 * are queued when the handler returns, and REQ_SUSPENDED is never used.
 * Its body comes later, through a content reader that suspends the
 * connection whenever it has nothing to send ("parked"); that second
 * hand-over is guarded by the stream's own lock, not by `state`: the
 * reader suspends and sets `parked` under it, and whoever clears `parked`
 * under it resumes (server_stream.c).  Again one resume per suspend.
 * A thread that resumes a parked stream is counted in `publishers` from
 * before it lets go of the stream's lock to its last touch of the server,
 * as publish() is, and server_free() ends every open stream (those on the
 * open list: `stream` set, not yet `stop_ended`) after every claimer is
 * counted, then waits for the count to drop to 0 again.
 *
 * Locking: the server lock guards the list of open requests and the
 * counts; it is a leaf lock, never held while calling MHD or the handler.
 * A stream's lock is taken by its content reader under the thread's lock,
 * and MHD_suspend_connection() is called under it (MHD's own lock inside);
 * nothing else is called or locked while it is held.
 * A thread's lock is held while its daemon runs, so handlers run under it;
 * only server_quiesce() takes it from outside.  docs/THREADS.md has the
 * whole story.
 */
#ifndef TASKPOOLD_SERVER_PRIVATE_H
#define TASKPOOLD_SERVER_PRIVATE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "access_log.h"
#include "server.h"
#include "server_body.h"
#include "server_limits.h"
#include "server_pipe.h"
#include "tls.h"

#define MAX_RESPONSE_HEADERS 8
/* Room in the request for its headers' values; a longer one is copied. */
#define RESPONSE_HEADER_SPACE 192

enum req_state { REQ_HANDLING, REQ_SUSPENDED, REQ_RESPONDED };

struct server_request {
	atomic_uint refs;
	atomic_int state;		/* enum req_state, see the top */
	atomic_bool claimed;		/* someone is writing the answer */
	atomic_bool counted;		/* ...and is counted in publishers */
	server_build_fn build;		/* set by the claimer, run once */
	void *build_arg;		/* the builder's: it releases it */
	struct server *server;
	struct server_thread *thread;	/* borrowed: whose daemon has the
					 * connection; outlives every resume
					 * (server_free waits for them) */
	struct MHD_Connection *conn;	/* only used on the MHD thread */
	char *method, *path;		/* in `strings`, at the end */
	const char *label;		/* see server_request_set_label() */
	_Atomic(const char *) reason;	/* see server_request_set_reason() */
	struct server_body body;	/* freed once the handler returns */
	bool stop_answered;		/* server lock: server_free() saw it */
	bool stop_ended;		/* server lock: server_free() ended
					 * its stream */
	bool listed;			/* server lock: on the open list */
	bool handled;			/* the handler was called */
	bool queued;			/* the response went to MHD */
	bool http10;			/* an HTTP/1.0 request: no chunks */
	bool first;			/* the first of its connection */
	/* Borrowed: its connection's, which outlives it; NULL: none. */
	struct server_limits_conn *limits;

	/*
	 * The access log (server_access.c), on the MHD thread only: whether
	 * this request is logged (the server's switch when it came), when it
	 * came, and its target (owned; NULL until set).
	 */
	bool access;
	int64_t arrived_ns;		/* CLOCK_MONOTONIC */
	struct access_log_target *access_target;

	/*
	 * Hang-up watch, on the MHD thread only: while suspended, the
	 * connection's socket is in the thread's epoll set (watch_fd >= 0),
	 * so that a client closing it is noticed (server_watch.c).
	 */
	int watch_fd;
	bool client_gone;		/* it hung up: close, answer nothing */
	server_gone_fn gone;		/* run once, on the MHD thread */
	void *gone_arg;			/* gone's: it releases it */

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
	/*
	 * name is borrowed (a string constant); value lies in value_space
	 * unless `owned` (a copy of its own, freed with the request).
	 */
	struct {
		const char *name;
		char *value;
		bool owned;
	} headers[MAX_RESPONSE_HEADERS];
	size_t value_used;		/* bytes of value_space taken */
	char value_space[RESPONSE_HEADER_SPACE];
	/* A streamed answer: set once by server_stream_begin(), owned. */
	_Atomic(struct server_pipe *) stream;

	/* Guarded by the server lock. */
	struct server_request *prev, *next;

	/*
	 * The method and the path, NUL-terminated, allocated with the
	 * request: one allocation instead of three (bench/callgrind).
	 */
	char strings[];
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
	/* Deadlines of its connections' requests; this thread's only. */
	struct server_limits_clock clock;
};

struct server {
	struct server_options opts;	/* opts.addr is not kept */
	struct server_thread *threads;	/* owned, nthreads of them */
	unsigned nthreads;
	int listen_fd;		/* main thread only; -1 once quiesced */
	atomic_bool stop;	/* the threads are to return */
	atomic_bool draining;	/* set once quiesced */
	atomic_bool freeing;	/* server_free() has begun */
	/*
	 * Threads inside publish(): between claiming an answer's hand-over
	 * and their last touch of the server (resume, wake); and threads
	 * resuming a parked stream, from under its lock to their last touch.
	 * server_free() waits for 0 on publishers_done before it frees the
	 * threads.
	 */
	atomic_uint publishers;
	atomic_ulong clients_gone;	/* hung up while waiting */
	/*
	 * Requests suspended for their answer: counted up before the
	 * suspend is attempted (and back down if it fails), down by the
	 * publisher that resumes one, so that it never goes below 0.
	 */
	atomic_size_t waiting;
	pthread_mutex_t lock;	/* guards the list, active, and the
				 * waits on idle and publishers_done */
	pthread_cond_t idle;	/* active dropped to 0 */
	pthread_cond_t publishers_done;	/* publishers dropped to 0 */
	struct server_request *open;	/* dispatched, not completed */
	atomic_size_t active;	/* received, not completed */
	atomic_bool access_log;	/* server_set_access_log() */
	/*
	 * Connections accepted whose first request is not in yet.  Its
	 * first request counts in active before it leaves fresh, so that a
	 * reader of fresh, then active, never misses it (server_owed()).
	 */
	atomic_size_t fresh;
	/*
	 * libmicrohttpd's warnings, at most one a second (clients cause
	 * most of them): when the next may be logged (CLOCK_MONOTONIC ns),
	 * and how many were held back since the last.
	 */
	_Atomic int64_t mhd_warn_next_ns;
	atomic_uint mhd_warn_held;
	struct server_limits *limits;	/* owned: connections counted */
	/*
	 * The credentials new TLS connections get (a reference); NULL for
	 * plain HTTP, which never changes.  tls_lock guards the pointer
	 * only: a leaf, held for a swap or a reference.
	 */
	pthread_mutex_t tls_lock;
	struct tls_creds *tls;
	bool tls_on;		/* s->tls != NULL; set at start, read-only */
};

/*
 * A connection's socket context (MHD_OPTION_NOTIFY_CONNECTION), on its
 * HTTP thread only.  Allocated when it is accepted, freed when it closes.
 */
struct server_conn {
	bool fresh;	/* counted in server.fresh: no request yet */
	bool line_seen;	/* libmicrohttpd took a request line of it */
	struct server_limits_conn limits;	/* server_limits.c's */
	struct tls_creds *tls;	/* a reference (server_tls.c); NULL: none */
};

/* server_request.c: the request object; the rest of it is in server.h. */
/* The socket context of conn (borrowed); NULL if it has none (out of
 * memory when it was accepted). */
struct server_conn *server_conn_of(struct MHD_Connection *conn);
void server_request_run_gone(struct server_request *req, bool gone);
void server_request_observe(struct server_request *req, unsigned status);
void server_observe_refusal(struct server *s, unsigned status,
			    const char *reason);

/* server_reject.c: libmicrohttpd's own refusals, counted and answered. */
void server_reject_line_seen(struct MHD_Connection *conn);
void server_reject_closed(struct server *s, struct MHD_Connection *conn,
			  const struct server_conn *c);
/* Counts msg if it is libmicrohttpd refusing a request: returns true then
 * (the client's doing, logged at debug level), false for any other. */
bool server_reject_logged(struct server *s, const char *msg);

/* server_access.c: the access log's part of a request's life. */
void server_access_begin(struct server_request *req);
void server_access_default_target(struct server_request *req);
void server_access_end(struct server_request *req);

/* server_watch.c */
int server_watch_begin(struct server_request *req);
void server_watch_end(struct server_request *req);

/* server_handover.c */
void server_handover_wake(struct server_thread *t);
void server_handover_resume(struct server_request *req);
void server_handover_publish(struct server_request *req);
void server_handover_leave(struct server *s);

/* server_answer.c */
enum MHD_Result server_answer_send(struct server_request *req,
				   struct MHD_Response *resp);
enum MHD_Result server_answer_queue(struct server_request *req);
void server_answer_run_builder(struct server_request *req, bool keep);
void server_answer_client_gone(struct server_request *req);
void server_answer_refuse(struct server_request *req, unsigned status,
			  const char *detail, const char *reason);

/* server_stream.c */
enum MHD_Result server_stream_queue(struct server_request *req);
void server_stream_client_gone(struct server_request *req);
void server_stream_completed(struct server_request *req,
			     enum MHD_RequestTerminationCode toe);
size_t server_stream_end_all(struct server *s);

/* server_intake.c: libmicrohttpd's callbacks, and the hang-up. */
enum MHD_Result server_intake_on_request(void *cls,
					 struct MHD_Connection *conn,
					 const char *url, const char *method,
					 const char *version,
					 const char *upload_data,
					 size_t *upload_data_size,
					 void **con_cls);
void server_intake_on_completed(void *cls, struct MHD_Connection *conn,
				void **con_cls,
				enum MHD_RequestTerminationCode toe);
void server_intake_on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void server_intake_on_connection(void *cls, struct MHD_Connection *conn,
				 void **socket_context,
				 enum MHD_ConnectionNotificationCode toe);
void *server_intake_on_uri(void *cls, const char *uri,
			   struct MHD_Connection *conn);
void server_intake_on_hang_up(struct server_request *req);

/*
 * server_limits.c: the hooks of the limits, on the connection's HTTP
 * thread (or the main thread once it is joined, in MHD_stop_daemon()).
 * accepted/closed: MHD_CONNECTION_NOTIFY_STARTED/CLOSED (c zeroed and
 * filled by accepted).  headers_in: a request's first call, with the
 * status it is refused with so far (0: none); returns the status to
 * answer with (503 over a limit, with *why and *reason set and
 * Retry-After and "Connection: close" added), 0 to go on, or -1 to
 * close at once (it was cut off).  body_in: the request is complete;
 * 0, or -1 to close.  request_done: MHD is done with it.  expire: cuts
 * off the connections past their deadline, between two MHD_run().
 * timeout_ms: until the next deadline, -1 for none.
 */
void server_limits_accepted(struct server_thread *t,
			    struct MHD_Connection *conn,
			    struct server_limits_conn *c);
void server_limits_closed(struct server_thread *t,
			  struct server_limits_conn *c);
int server_limits_headers_in(struct server_request *req,
			     struct server_limits_conn *c, int status,
			     const char **why, const char **reason);
int server_limits_body_in(struct server_request *req);
void server_limits_request_done(struct server_request *req);
void server_limits_expire(struct server_thread *t);
int server_limits_timeout_ms(struct server_thread *t);

/* server_tls.c */
void server_tls_init(struct server *s);
void server_tls_clear(struct server *s);
struct tls_creds *server_tls_current(struct server *s);	/* new, or NULL */
int server_tls_retrieve(gnutls_session_t session,
			const gnutls_datum_t *req_ca_dn, int nreqs,
			const gnutls_pk_algorithm_t *pk_algos,
			int pk_algos_length, gnutls_pcert_st **chain,
			unsigned int *length, gnutls_privkey_t *key);

/* server_thread.c */
int server_thread_start_daemon(struct server *s, struct server_thread *t,
			       unsigned limit);
void server_thread_stop_daemon(struct server_thread *t);
void *server_thread_main(void *arg);
void server_threads_join(struct server *s, unsigned n);

#endif
