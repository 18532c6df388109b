/*
 * server_stream.c - streamed answers (server.h): a body of unknown length
 * that writers on any thread hand over piece by piece, and that
 * libmicrohttpd's content reader sends as chunks on the connection's HTTP
 * thread, with the connection suspended ("parked") while nothing waits.
 *
 * The hand-over, under one lock per stream:
 *   - The content reader (on the HTTP thread, inside MHD_run(), so under
 *     the thread's lock) takes what waits.  When nothing does and the
 *     stream has not ended, it suspends the connection and sets `parked`,
 *     both under the stream's lock, and returns 0: MHD calls it again
 *     once the connection is resumed.
 *   - Whoever next has something for the reader (a write, the end, a
 *     cut-off, the client gone, server_free()) clears `parked` under the
 *     lock and resumes the connection after letting go of it.  Only the
 *     one that cleared `parked` resumes, and only after the suspend
 *     (which came first, under the same lock): one resume per suspend.
 *   - That thread is counted in the server's `publishers` from before it
 *     lets go of the stream's lock until its last touch of the server,
 *     so that server_free(), which ends every stream under the same lock,
 *     cannot free the HTTP thread that it wakes (server_private.h).
 * While parked, the connection's socket is watched for the client
 * hanging up (server_watch.c), as for any suspended request.
 *
 * What waits, the states and the lock are the stream's pipe
 * (server_pipe.h), owned by its request (freed with it), so writers, who
 * hold the request, may call in after the connection is gone and even
 * after server_free(): once `closed` or ended, a call touches nothing
 * but the pipe.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "server_private.h"

/* Bytes MHD reads at a time for an HTTP/1.0 client (no chunks). */
#define STREAM_BLOCK 4096

/*
 * Clears `parked` if set, and counts the caller in `publishers` before it
 * lets go of the lock.  Returns whether the caller must resume (then it
 * calls resume() after unlocking).  Under st->lock.
 */
static bool
take_parked(struct server_request *req, struct server_pipe *st)
{
	if (!st->parked)
		return false;
	st->parked = false;
	atomic_fetch_add(&req->server->publishers, 1);
	return true;
}

/*
 * Resumes a parked stream's connection and wakes its HTTP thread; then
 * leaves `publishers`, the caller's last touch of the server.  Any thread,
 * no lock held.
 */
static void
resume(struct server_request *req)
{
	struct server *s = req->server;

	/* Resumed, the connection may end at once: hold req till the wake. */
	server_request_ref(req);
	server_handover_resume(req);
	server_request_unref(req);
	server_handover_leave(s);
}

/*
 * Cuts the stream off (once; the caller checked server_pipe_open()): what
 * waits is dropped and the reader closes the connection without the
 * last chunk.  Under st->lock; logs (the log's lock is innermost).
 */
static void
cut_off(struct server_request *req, struct server_pipe *st,
	const char *why)
{
	st->failed = true;
	server_pipe_drop(st);
	log_warnx("%s %s: streamed answer cut off: %s", req->method,
		  req->path, why);
}

int
server_stream_begin(struct server_request *req, unsigned status,
		    const char *content_type)
{
	struct server *s = req->server;
	struct server_pipe *st;

	/*
	 * The request is listed: if server_free() has begun, it may have
	 * walked the list already and would not end this stream.  If it has
	 * not, its walks come after this and find the stream.
	 */
	if (atomic_load(&s->freeing))
		return -1;
	st = server_pipe_new(s->opts.stream_buffer > 0 ?
			     s->opts.stream_buffer :
			     SERVER_STREAM_BUFFER_DEFAULT);
	if (st == NULL) {
		log_warn("%s %s: streamed answer", req->method, req->path);
		return -1;
	}
	if (atomic_exchange(&req->claimed, true)) {
		server_pipe_free(st);	/* answered already */
		return -1;
	}
	req->status = status;
	req->content_type = content_type;
	atomic_store(&req->stream, st);
	/* HANDLING -> RESPONDED: the headers go out when the handler returns. */
	server_handover_publish(req);
	return 0;
}

int
server_stream_write(struct server_request *req, const char *data,
		    size_t len)
{
	struct server_pipe *st = atomic_load(&req->stream);
	char why[128];
	bool wake;
	int ret = -1;

	if (st == NULL)
		return -1;
	pthread_mutex_lock(&st->lock);
	if (!server_pipe_open(st)) {
		pthread_mutex_unlock(&st->lock);
		return -1;
	}
	if (server_pipe_full(st, len)) {
		snprintf(why, sizeof(why), "the client reads too slowly "
			 "(%zu bytes unsent and %zu more: past the bound, %zu)",
			 st->len, len, st->limit);
		cut_off(req, st, why);
	} else if (server_pipe_put(st, data, len) != 0)
		cut_off(req, st, "out of memory");
	else
		ret = 0;
	/* Something for the reader (data, or the end of a cut-off). */
	wake = (ret != 0 || len > 0) && take_parked(req, st);
	pthread_mutex_unlock(&st->lock);
	if (wake)
		resume(req);
	return ret;
}

/* Ends the stream, if open.  Returns whether it was.  Any thread. */
static bool
end_stream(struct server_request *req, struct server_pipe *st)
{
	bool was_open, wake = false;

	pthread_mutex_lock(&st->lock);
	was_open = server_pipe_open(st);
	if (was_open) {
		st->ended = true;
		wake = take_parked(req, st);
	}
	pthread_mutex_unlock(&st->lock);
	if (wake)
		resume(req);
	return was_open;
}

void
server_stream_end(struct server_request *req)
{
	struct server_pipe *st = atomic_load(&req->stream);

	if (st != NULL)
		end_stream(req, st);
}

/*
 * Sends the client a FIN now, after what MHD has sent.  For a reader
 * that ends the connection: libmicrohttpd 0.9.75 with MHD_USE_TURBO
 * neither shuts a connection down when it closes it from the reader's
 * end, nor looks at it again until its socket has an event or its
 * timeout comes (connection_timeout_s): an HTTP/1.0 client would wait
 * that long for the end of its body, and a cut-off stream for the close.
 * The FIN's ACK is the event that makes MHD free the connection.
 */
static void
shut_down(struct server_request *req)
{
	const union MHD_ConnectionInfo *info;

	info = MHD_get_connection_info(req->conn,
				       MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info != NULL)
		shutdown(info->connect_fd, SHUT_WR);
}

/*
 * MHD_ContentReaderCallback, on the HTTP thread inside MHD_run(): copies
 * what waits into buf, or ends the body, or parks.  cls is the request
 * (a reference, dropped by free_reader()).
 */
static ssize_t
read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct server_request *req = cls;
	struct server_pipe *st = atomic_load(&req->stream);
	bool park = false;
	ssize_t ret;

	(void)pos;
	/* Resumed (or never parked): the last park's watch is over. */
	server_watch_end(req);
	pthread_mutex_lock(&st->lock);
	if (st->failed || st->gone || st->closed)
		ret = MHD_CONTENT_READER_END_WITH_ERROR;
	else if (st->len > 0)
		/* max is at most MHD's write buffer: no overflow. */
		ret = (ssize_t)server_pipe_take(st, buf, max);
	else if (st->ended)
		ret = MHD_CONTENT_READER_END_OF_STREAM;
	else {
		/* Under the lock: nobody can resume before this suspend. */
		MHD_suspend_connection(req->conn);
		st->parked = true;
		park = true;
		ret = 0;
	}
	pthread_mutex_unlock(&st->lock);
	/*
	 * Watched for a hang-up while parked.  If a writer resumed it in the
	 * meantime, the next call here (or on_completed()) ends the watch.
	 * MHD sends nothing more after an error, nor after the end of an
	 * HTTP/1.0 body (chunked, it sends the last chunk).
	 */
	if (park)
		server_watch_begin(req);
	else if (ret == MHD_CONTENT_READER_END_WITH_ERROR ||
		 (ret == MHD_CONTENT_READER_END_OF_STREAM && req->http10))
		shut_down(req);
	return ret;
}

/* MHD_ContentReaderFreeCallback: the response lets go of the request. */
static void
free_reader(void *cls)
{
	server_request_unref(cls);
}

/*
 * The connection ends without the stream sent (libmicrohttpd refused its
 * response): later writes return -1, and it is no client's doing.  The
 * connection is not parked (its response was never queued).
 */
static void
fail_stream(struct server_request *req)
{
	struct server_pipe *st = atomic_load(&req->stream);

	pthread_mutex_lock(&st->lock);
	st->failed = true;
	server_pipe_drop(st);
	pthread_mutex_unlock(&st->lock);
}

/*
 * The stream's response for MHD, of unknown size (chunked for HTTP/1.1,
 * up to the connection's close for HTTP/1.0).  On the HTTP thread, from
 * server_stream_queue().  Returns a new response, or NULL (out of
 * memory), having cut the stream off.
 *
 * HEAD gets the headers only; but libmicrohttpd 0.9.75 still sends the
 * last chunk ("0\r\n\r\n") after them when the answer is chunked, which
 * a keep-alive client would take for the start of the next answer.  So a
 * HEAD answer is not chunked, and its connection closed after it.
 */
static struct MHD_Response *
stream_response(struct server_request *req)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
						 STREAM_BLOCK, read_stream,
						 req, free_reader);
	if (resp == NULL) {
		fail_stream(req);
		return NULL;
	}
	server_request_ref(req);	/* the reader's, until free_reader() */
	if (strcmp(req->method, "HEAD") == 0 &&
	    MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
				     MHD_RO_END) != MHD_YES) {
		MHD_destroy_response(resp);	/* drops the reader's */
		fail_stream(req);
		return NULL;
	}
	return resp;
}

/*
 * Hands the stream's status and headers to MHD, its content reader to
 * send the body.  On the HTTP thread, once the handler has returned
 * (state is RESPONDED since server_stream_begin()).  A stream has no
 * builder: it claimed the request itself.  If MHD will not take it
 * (logged), the stream is cut off and the connection closed.
 */
enum MHD_Result
server_stream_queue(struct server_request *req)
{
	enum MHD_Result ret;

	req->queued = true;
	server_request_observe(req, req->status);
	ret = server_answer_send(req, stream_response(req));
	if (ret != MHD_YES)
		fail_stream(req);
	return ret;
}

/* Counts, logs and reports a client that left a stream.  HTTP thread. */
static void
report_gone(struct server_request *req, const char *how)
{
	atomic_fetch_add(&req->server->clients_gone, 1);
	log_info("%s %s: client %s during a streamed answer (499)",
		 req->method, req->path, how);
	server_request_run_gone(req, true);
}

/*
 * The client of a parked stream hung up (its HTTP thread saw it on the
 * watch, now ended): resume the connection so that MHD closes it, and
 * report it, unless the stream is over already.  On the HTTP thread,
 * outside MHD_run().
 */
void
server_stream_client_gone(struct server_request *req)
{
	struct server_pipe *st = atomic_load(&req->stream);
	bool report, wake;

	pthread_mutex_lock(&st->lock);
	report = !st->gone && !st->failed && !st->closed;
	st->gone = true;
	server_pipe_drop(st);
	wake = take_parked(req, st);
	pthread_mutex_unlock(&st->lock);
	if (wake)
		resume(req);
	if (report)
		report_gone(req, "closed the connection");
}

/*
 * MHD is done with the request's connection (on_completed()): later
 * writes return -1.  If the stream was not all sent, and not by the
 * server's doing (a cut-off, the daemon stopping), the client left:
 * report it.  On the HTTP thread, or on the main thread in
 * MHD_stop_daemon().  No-op for a request that is not a stream.
 */
void
server_stream_completed(struct server_request *req,
			enum MHD_RequestTerminationCode toe)
{
	struct server_pipe *st = atomic_load(&req->stream);
	bool report;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	report = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
		 toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN &&
		 !st->gone && !st->failed;
	st->gone = st->gone || report;
	st->closed = true;
	st->parked = false;	/* never so here: MHD stops none suspended */
	server_pipe_drop(st);
	pthread_mutex_unlock(&st->lock);
	if (report)
		report_gone(req, toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ?
			    "read nothing until the connection timed out" :
			    "closed the connection");
}

/*
 * The next listed request with a stream that server_free() has not ended
 * yet, with a reference; NULL when there is none.  Walks from the head
 * each time and needs no memory, as next_unanswered() in server.c.
 */
static struct server_request *
next_stream(struct server *s)
{
	struct server_request *req;

	pthread_mutex_lock(&s->lock);
	for (req = s->open; req != NULL; req = req->next)
		if (!req->stop_ended && atomic_load(&req->stream) != NULL) {
			req->stop_ended = true;
			server_request_ref(req);
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return req;
}

/*
 * Ends every stream on the open list (server_free()), resuming those
 * parked.  Returns how many were still open.  The caller then waits for
 * `publishers` again: a writer may have taken `parked` first.
 */
size_t
server_stream_end_all(struct server *s)
{
	struct server_request *req;
	size_t n = 0;

	while ((req = next_stream(s)) != NULL) {
		if (end_stream(req, atomic_load(&req->stream)))
			n++;
		server_request_unref(req);
	}
	return n;
}
