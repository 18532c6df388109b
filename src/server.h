/*
 * server.h - libmicrohttpd glue: connections, request bodies, and answers
 * that come later from another thread.
 *
 * The server knows HTTP and nothing of jobs.  For each complete request it
 * calls the handler on an MHD thread.  The handler either answers at once
 * (server_respond() before it returns) or returns SERVER_LATER after
 * arranging for someone to call server_respond() later from any thread;
 * meanwhile the connection is suspended and holds no thread.
 *
 * Ownership: a request is refcounted.  The server holds one reference
 * until MHD is done with the connection; whoever will answer later takes
 * its own with server_request_ref() and drops it after server_respond().
 */
#ifndef TASKPOOLD_SERVER_H
#define TASKPOOLD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tls_creds;

/* What a streamed answer may hold unsent, unless server_options says. */
#define SERVER_STREAM_BUFFER_DEFAULT ((size_t)4 << 20)	/* 4 MiB */

struct server;
struct server_request;

enum server_handled {
	SERVER_DONE,	/* server_respond() was called */
	SERVER_LATER,	/* it will be called, from any thread */
};

typedef enum server_handled (*server_handler)(struct server_request *req,
					      void *arg);

/*
 * How a request ended, for an observer (the daemon's metrics).  Strings
 * are borrowed for the call.
 */
struct server_report {
	const char *method;	/* as received: any token */
	const char *label;	/* server_request_set_label(), or NULL */
	const char *reason;	/* server_request_set_reason(), the server's
				 * own (see below), or NULL */
	unsigned status;	/* the answer's; 0: the client hung up while
				 * waiting, and got none */
};

/*
 * Called once per request that is answered (when its answer goes to
 * libmicrohttpd, before a byte of it is sent) or whose client hangs up
 * while it waits; not for a request that libmicrohttpd refuses on its own
 * (431, a malformed request line) or whose connection ends before it is
 * complete.  On the request's HTTP thread, under that thread's lock:
 * it must be quick and take leaf locks only.
 *
 * The server's own refusals carry these reasons: "bad_framing" (400: the
 * framing checks of server_framing.h), "nul_in_path" (400),
 * "body_too_large" (413), "stopping" (503 from server_free()),
 * "connection_limit", "connection_limit_per_ip" and "out_of_memory" (503
 * to the first request of a connection over a limit).  A connection cut
 * off before its request was in is reported with status 0, method "-"
 * and the reason "header_timeout" or "body_timeout": no request to count,
 * only the rejection; status 0 with no reason is a client that hung up.
 */
typedef void (*server_observe_fn)(void *arg, const struct server_report *r);

struct server_options {
	/*
	 * Where to listen: addr (borrowed for server_new() only), bound by
	 * the server; or, with addr NULL, listen_fd, a listening IPv4 or
	 * IPv6 stream socket passed by the service manager, which
	 * server_new() takes (it closes it, on failure too).  The server
	 * makes it non-blocking and close-on-exec, and at server_quiesce()
	 * closes it and never shuts it down: the manager's copy stays open
	 * and keeps queuing connections for the next process.
	 */
	const struct sockaddr *addr;
	socklen_t addrlen;
	int listen_fd;
	/*
	 * TLS: the certificate and key (borrowed for server_new() only; the
	 * server takes its own reference) and the GnuTLS priority string
	 * (borrowed for server_new() only); tls NULL: plain HTTP.
	 */
	struct tls_creds *tls;
	const char *tls_priorities;
	unsigned threads;
	/*
	 * Connections served at once, 0: from RLIMIT_NOFILE; and from one
	 * client address, 0: no limit.  One over either gets 503 to its
	 * first request; libmicrohttpd's own limit, where it stops
	 * accepting, is a margin above (server_limits_hard()).
	 */
	unsigned max_connections;
	unsigned max_connections_per_ip;
	/*
	 * The most time a request's headers may take to come in (from
	 * accept, or from the end of the previous request) and its body
	 * (from the end of the headers); 0: no limit.  Past it, 408 and
	 * close, or a close where nothing of a request came.
	 */
	int64_t header_timeout_ns, body_timeout_ns;
	size_t connection_memory;
	unsigned connection_timeout_s;
	size_t max_body;
	/*
	 * Bytes a streamed answer may hold written and not yet sent
	 * (server_stream_write()); 0: SERVER_STREAM_BUFFER_DEFAULT.
	 */
	size_t stream_buffer;
	server_handler handler;
	void *handler_arg;
	server_observe_fn observe;	/* NULL: none */
	void *observe_arg;
	bool access_log;	/* at start; see server_set_access_log() */
	/*
	 * Tests only (NULL in the daemon): called by each thread that hands
	 * an answer over, after it resumes the connection and before its last
	 * touch of the server, to hold that window open.
	 */
	void (*test_after_resume)(void *arg);
	void *test_arg;
};

/*
 * Starts listening and serving.  Returns the server, or NULL with the
 * reason logged.
 */
struct server *server_new(const struct server_options *opts);

/*
 * Serves creds (a reference is taken) to TLS connections accepted from
 * now on; those accepted before keep theirs until they close.  Any
 * thread.  Returns 0, or -1 (nothing changes) when the server does not
 * speak TLS or creds is NULL.
 */
int server_set_tls(struct server *s, struct tls_creds *creds);

/* The port actually bound (useful with port 0). */
uint16_t server_port(struct server *s);

/*
 * The listening socket's address, "127.0.0.1:8080" or "[::1]:8080", into
 * buf (INET6_ADDRSTRLEN + 8 bytes are enough).  Returns 0, or -1 (buf
 * "?") once quiesced.
 */
int server_address(struct server *s, char *buf, size_t size);

/* Stops accepting new connections; those already open go on. */
void server_quiesce(struct server *s);

/*
 * Waits up to timeout_ns for every request to be answered and every
 * connection to finish with it.  Returns the number still open.
 */
size_t server_drain(struct server *s, int64_t timeout_ns);

/*
 * Answers whatever is still waiting with 503, ends every streamed answer
 * not yet ended (server_stream_end()), resumes every suspended
 * connection, gives the HTTP threads up to a second to send what is
 * left, stops MHD (closing what is still open) and frees the server.
 * NULL is ok.
 */
void server_free(struct server *s);

/*
 * The access log, on or off (at start: server_options.access_log).  With
 * it on, each request that is answered, or whose client hangs up while
 * it waits (499), logs one line at the info level once libmicrohttpd is
 * done with it: the client, the status, the body bytes handed to
 * libmicrohttpd, the time since the request's headers came, the method
 * and the target (access_log.h has the form).  Not logged, as for the
 * observer: requests that libmicrohttpd refuses on its own, and
 * connections that end before a request is complete.  No header and no
 * body is ever logged.  The target is the path and the query's names;
 * a query value is shown only where the handler says it may be
 * (server_request_log_query()), as "***" elsewhere.  Any thread; it
 * applies to requests that arrive after the call.
 */
void server_set_access_log(struct server *s, bool on);

/* Requests in flight (received, not yet finished with). */
size_t server_active(struct server *s);

/*
 * server_active(), plus the connections accepted whose first request is
 * not in yet: a client sends it just after connecting, and after
 * server_quiesce() these are the last clients the server owes an answer
 * (under socket activation, the next process never sees them).  A
 * connection that never sends one stays counted until it closes
 * (connection_timeout_s): wait for this only a while.
 */
size_t server_owed(struct server *s);

/*
 * Clients that closed their connection while waiting for an answer
 * (nginx logs these as 499), since the server started.
 */
unsigned long server_clients_gone(struct server *s);

/*
 * Requests waiting for their answer with the connection suspended, now.
 */
size_t server_waiting(struct server *s);

/* ---- one request --------------------------------------------------------- */

struct server_request *server_request_ref(struct server_request *req);
void server_request_unref(struct server_request *req);

/*
 * The server the request came to; borrowed (it outlives its requests).
 * Handlers use this rather than a pointer of their own to the server: the
 * HTTP threads serve requests before server_new() has returned.
 */
struct server *server_request_server(const struct server_request *req);

/*
 * Whether req is the first request of its connection.  After
 * server_quiesce(), such a request comes from a client that connected
 * before (no connection is accepted after) and sent it at once; a later
 * one comes on a connection kept alive.
 */
bool server_request_first(const struct server_request *req);

/* Borrowed, valid while the caller holds the request. */
const char *server_request_method(const struct server_request *req);
const char *server_request_path(const struct server_request *req);

/*
 * The request body (NUL-terminated; NULL and 0 when there is none),
 * borrowed during the handler call only: the server frees it when the
 * handler returns, so that a waiting request holds no body.  A handler
 * that needs it longer takes it with server_request_take_body(), which
 * returns a new string (the caller frees it) and leaves the request none.
 */
const char *server_request_body(const struct server_request *req,
				size_t *len);
char *server_request_take_body(struct server_request *req, size_t *len);

/*
 * What becomes of a request whose client hangs up while it waits.
 * Called exactly once, on the request's HTTP thread: with `gone` when the
 * client closed the connection before the answer was set (the answer is
 * then dropped and the server has counted and logged it), or without it
 * when the request ends otherwise, only to release arg.
 */
typedef void (*server_gone_fn)(struct server_request *req, void *arg,
			       bool gone);

/*
 * Sets fn for this request; only from the handler, before it returns
 * SERVER_LATER (then fn is sure to run), and at most once.
 */
void server_request_on_gone(struct server_request *req, server_gone_fn fn,
			    void *arg);
/*
 * What the request matched, for the observer: a route's path template
 * ("/greet/{name}"), never the raw path, so that an observer that counts
 * by label keeps few series.  label is borrowed for the server's whole
 * life, beyond the request's (a string constant, or a copy that lives as
 * long: a reload frees the config that a route's path comes from).  Only
 * from the handler.  A request without one is reported with NULL.
 */
void server_request_set_label(struct server_request *req, const char *label);

/*
 * Why the request is refused ("queue_full"), for the observer; a string
 * constant.  Call it before the answer, on the thread that answers.  A
 * later call replaces it.
 */
void server_request_set_reason(struct server_request *req,
			       const char *reason);

/*
 * Whether the access log shows the value of the query argument key
 * (key_len bytes, may hold a NUL): a predicate, for the handler's call.
 */
typedef bool (*server_reveal_fn)(const void *arg, const char *key,
				 size_t key_len);

/*
 * The access log's target for req: its path, and its query string with
 * the values that reveal(arg, ...) accepts shown, the others as "***"
 * (reveal NULL: none shown, as for a request the handler never sets it
 * for).  reveal runs during this call only.  Only from the handler; a
 * later call replaces the target.  When req is not in the access log it
 * does nothing, at the cost of a call.
 */
void server_request_log_query(struct server_request *req,
			      server_reveal_fn reveal, const void *arg);

/* A request header, or NULL.  Borrowed; only during the handler call. */
const char *server_request_header(struct server_request *req,
				  const char *name);

/*
 * The arguments of the request's query string, in order, as
 * libmicrohttpd decoded them ('+' and %XX): fn is called once per argument,
 * a repeated key once per occurrence, with value NULL for a key without
 * '=' (as in "?verbose").  Lengths are given because a decoded %00 puts a
 * NUL inside a key or value.  fn returns 0 to go on, non-zero to stop.
 * Only during the handler call; key and value are borrowed for fn's call.
 * Returns the number of arguments fn was called for.
 */
typedef int (*server_query_fn)(void *arg, const char *key, size_t key_len,
			       const char *value, size_t value_len);
size_t server_request_query(struct server_request *req, server_query_fn fn,
			    void *arg);

/*
 * Adds a response header: name is borrowed for the request's life (a
 * string constant), value is copied.  Call before server_respond().
 * Returns 0, or -1 when out of memory or past the header limit.
 */
int server_add_header(struct server_request *req, const char *name,
		      const char *value);

/*
 * Sets the answer: status, content type (borrowed for the request's life:
 * a string constant), and body (stolen; may be NULL).
 * May be called from any thread, once; a second call only frees its body.
 * Resumes the connection if it was suspended.
 */
void server_respond(struct server_request *req, unsigned status,
		    const char *content_type, char *body, size_t len);

/*
 * Answers with an application/problem+json document (RFC 9457) with
 * status and detail (copied; may be NULL).  Same contract as
 * server_respond(): any thread, once.
 */
void server_respond_problem(struct server_request *req, unsigned status,
			    const char *detail);

/*
 * Builds an answer.  It runs exactly once, with req borrowed for the call.
 * With `wanted`, fn calls server_respond() (and may add headers first).
 * Without it the answer would be dropped and another thread may be sending
 * the request's answer: fn must not touch req, only release arg.
 */
typedef void (*server_build_fn)(struct server_request *req, void *arg,
				bool wanted);

/*
 * Like server_respond(), but the answer is built by fn on the MHD thread
 * that serves the connection, once it resumes.  The thread that calls this
 * (a timer, a worker) only wakes the connection, so answers that fall due
 * together are built in parallel by the HTTP threads instead of one after
 * another on that thread.  If the request was answered already, or its
 * connection ends first, fn still runs once (on this thread or at the
 * connection's end), without `wanted`.
 */
void server_respond_later(struct server_request *req, server_build_fn fn,
			  void *arg);

/* ---- streamed answers ------------------------------------------------------ */

/*
 * A streamed answer: status and headers at once, then a body of unknown
 * length sent in pieces (chunked) as they come, with the connection
 * suspended, holding no thread, between pieces.
 *
 * server_stream_begin() is called by the handler, on the MHD thread,
 * instead of server_respond(); the handler then returns SERVER_LATER (or
 * SERVER_DONE: the same here).  content_type is a string constant; headers
 * added before go out with it.  The status line and headers are sent at
 * once, before any piece.  Returns 0, or -1 (out of memory, answered
 * already, or server_free() has begun) having started nothing: the
 * handler answers some other way.
 * The writer takes its own reference (server_request_ref()) and drops it
 * once it has called server_stream_end() or had -1 from a write.
 *
 * server_stream_write() appends len bytes (copied) from any thread; they
 * are sent as soon as the connection can take them, in one chunk or more
 * (pieces written before the connection takes the first may share one).
 * Returns 0, or -1 when nothing more will be sent: the client has gone,
 * the server is stopping (server_free() ended the stream), the stream has
 * ended, the request is not a stream, the stream was cut off, or (then
 * the stream is cut off) out of memory or the client reads too slowly.
 * The writer may stop at the first -1; later calls return -1 as well and
 * are cheap.  A write of 0 bytes to an open stream returns 0.
 *
 * The bound: a stream holds the bytes written and not yet taken by
 * libmicrohttpd (which then holds at most its connection memory, plus the
 * kernel's socket buffer).  A write is refused when bytes are waiting
 * already and they and the new piece would pass stream_buffer (default
 * SERVER_STREAM_BUFFER_DEFAULT); a piece written while nothing waits is
 * always taken, whatever its size.  So a stream holds at most
 * max(stream_buffer, its largest piece).  A refused write cuts the stream
 * off: what waits is dropped, the connection is closed without the last
 * chunk (the client sees a truncated body, never a complete-looking one),
 * and it is logged once.
 *
 * server_stream_end() ends the body after what was written (the last
 * chunk; an HTTP/1.0 client, which gets no chunks, sees the connection
 * closed instead), from any thread; later calls, and a call after the
 * client has gone, do nothing.  A stream that is never ended is ended by
 * server_free(), the same way, and then closed if its client has not
 * taken it all within a second.
 *
 * The request's gone function (server_request_on_gone()) runs once: with
 * `gone` when the connection ends before the whole stream was sent
 * because of the client (it closed or reset the connection, or read
 * nothing for connection_timeout_s while data waited), counted in
 * server_clients_gone() and logged (499), and from then on writes return
 * -1; without it otherwise (all sent; cut off by the server; closed by
 * server_free()), to release arg.  A HEAD request gets the headers only
 * (not chunked), then its connection is closed, and so is the stream:
 * writes return -1.
 */
int server_stream_begin(struct server_request *req, unsigned status,
			const char *content_type);
int server_stream_write(struct server_request *req, const char *data,
			size_t len);
void server_stream_end(struct server_request *req);

#endif
