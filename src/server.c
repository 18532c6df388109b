/*
 * server.c - see server.h.  The server's life: the listening socket, the
 * start of the HTTP threads, quiescing, draining and the stop.  The other
 * parts are listed in server_private.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server_private.h"
#include "timer.h"

#define LISTEN_BACKLOG 4096	/* capped by net.core.somaxconn */
#define FDS_PER_THREAD 3	/* MHD's epoll fd, ours, the eventfd */

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
 * A socket passed by the service manager, made ready as listen_socket()
 * makes its own: non-blocking (the threads' daemons all accept from it,
 * and a blocking accept() would hold a thread that lost the race) and
 * close-on-exec (exec jobs must not inherit it).  O_NONBLOCK is the open
 * file's, shared with the manager's copy, which only polls it.  Returns 0,
 * or -1 (logged).
 */
static int
adopt_socket(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		log_warn("cannot serve the passed socket (fd %d)", fd);
		return -1;
	}
	return 0;
}

/*
 * Joins the first `running` threads, stops the first `started` daemons
 * (closing what connections they still have: on_completed() runs on this
 * thread) and frees the server.
 */
static void
server_destroy(struct server *s, unsigned running, unsigned started)
{
	unsigned i;

	server_threads_join(s, running);
	for (i = 0; i < started; i++)
		server_thread_stop_daemon(&s->threads[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	server_limits_free(s->limits);	/* every connection has left it */
	free(s->threads);
	server_tls_clear(s);
	pthread_cond_destroy(&s->publishers_done);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/*
 * Starts the HTTP threads, all signals blocked (signals are the main
 * thread's).  Returns how many started; fewer than asked is logged.
 */
static unsigned
start_threads(struct server *s)
{
	sigset_t all, old;
	unsigned running;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (running = 0; running < s->nthreads; running++) {
		err = pthread_create(&s->threads[running].tid, NULL,
				     server_thread_main, &s->threads[running]);
		if (err != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (running < s->nthreads) {
		errno = err;
		log_warn("cannot start an HTTP thread");
	}
	return running;
}

struct server *
server_new(const struct server_options *opts)
{
	struct server *s = calloc(1, sizeof(*s));
	unsigned soft, limit, n, started = 0, running = 0;
	pthread_condattr_t monotonic;

	if (s == NULL) {
		log_warn("server");
		if (opts->addr == NULL)
			close(opts->listen_fd);	/* taken, on failure too */
		return NULL;
	}
	s->opts = *opts;
	s->opts.addr = NULL;	/* borrowed for this call only */
	if (s->opts.tls_priorities == NULL)
		s->opts.tls_priorities = TLS_PRIORITIES_DEFAULT;
	server_tls_init(s);	/* takes opts.tls */
	/* A passed socket is ours from here: server_destroy() closes it. */
	s->listen_fd = opts->addr == NULL ? opts->listen_fd : -1;
	atomic_init(&s->stop, false);
	atomic_init(&s->draining, false);
	atomic_init(&s->freeing, false);
	atomic_init(&s->publishers, 0);
	atomic_init(&s->clients_gone, 0);
	atomic_init(&s->waiting, 0);
	atomic_init(&s->access_log, opts->access_log);
	atomic_init(&s->active, 0);
	atomic_init(&s->fresh, 0);
	pthread_mutex_init(&s->lock, NULL);
	/* server_drain() waits on the monotonic clock: immune to clock steps. */
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&s->idle, &monotonic);
	pthread_cond_init(&s->publishers_done, &monotonic);
	pthread_condattr_destroy(&monotonic);
	n = s->nthreads = opts->threads > 0 ? opts->threads : 1;
	/*
	 * Ours, and MHD's a margin above it, so that connections over ours
	 * are still accepted and told 503 (server_limits.h); by default the
	 * margin too fits in the open file limit.
	 */
	soft = opts->max_connections ? opts->max_connections :
	       server_limits_soft(default_max_connections(n));
	limit = server_limits_hard(soft);
	if (limit < n)
		limit = n;	/* MHD takes 0 as "its default" */
	s->limits = server_limits_new(soft, opts->max_connections_per_ip);
	s->threads = calloc(n, sizeof(*s->threads));
	if (s->threads == NULL || s->limits == NULL) {
		log_warn("server");
		goto fail;
	}
	if (s->tls_on && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		log_warnx("cannot serve TLS: libmicrohttpd is built without");
		goto fail;
	}
	if (opts->addr != NULL)
		s->listen_fd = listen_socket(opts->addr, opts->addrlen);
	else if (adopt_socket(s->listen_fd) != 0)
		goto fail;
	if (s->listen_fd < 0)
		goto fail;
	/* The limit is split between the threads, as MHD's own pool does. */
	for (; started < n; started++)
		if (server_thread_start_daemon(s, &s->threads[started],
				limit / n + (started < limit % n)) != 0)
			goto fail;
	s->opts.tls_priorities = NULL;	/* borrowed: the daemons have it */
	running = start_threads(s);
	if (running < n)
		goto fail;
	log_debug("HTTP: %u threads, at most %u connections (%u from one "
		  "address, 0: any), up to %u accepted, %zu bytes each", n,
		  soft, opts->max_connections_per_ip, limit,
		  opts->connection_memory);
	return s;
fail:
	server_destroy(s, running, started);
	return NULL;
}

uint16_t
server_port(struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* Zeroed: clang's analyzer does not know getsockname() fills it. */
	memset(&ss, 0, sizeof(ss));

	if (s->listen_fd < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int
server_address(struct server *s, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* Zeroed: clang's analyzer does not know getsockname() fills it. */
	memset(&ss, 0, sizeof(ss));

	if (s->listen_fd < 0 ||
	    getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(buf, size, "?");
		return -1;
	}
	format_addr((struct sockaddr *)&ss, buf, size);
	return 0;
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
	 * No daemon looks at the socket now.  Closing a socket of our own
	 * resets new and backlogged clients at once (a load balancer moves
	 * on) instead of leaving them in a backlog that nobody accepts from.
	 * A passed socket stays open in the service manager, which keeps
	 * queuing connections for the next process: a restart refuses none.
	 * Close, never shutdown(): that would end the manager's copy too.
	 */
	close(s->listen_fd);
	s->listen_fd = -1;
}

size_t
server_active(struct server *s)
{
	return atomic_load(&s->active);
}

size_t
server_owed(struct server *s)
{
	size_t fresh = atomic_load(&s->fresh);	/* first: see its comment */

	return fresh + atomic_load(&s->active);
}

size_t
server_waiting(struct server *s)
{
	return atomic_load(&s->waiting);
}

unsigned long
server_clients_gone(struct server *s)
{
	return atomic_load(&s->clients_gone);
}

size_t
server_drain(struct server *s, int64_t timeout_ns)
{
	int64_t end = timer_now_ns() + timeout_ns;
	struct timespec ts = { .tv_sec = end / 1000000000,
			       .tv_nsec = end % 1000000000 };
	size_t n;

	pthread_mutex_lock(&s->lock);
	while (atomic_load(&s->active) > 0 &&
	       pthread_cond_timedwait(&s->idle, &s->lock, &ts) != ETIMEDOUT)
		;
	n = atomic_load(&s->active);
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
 * Waits until no thread can still touch the HTTP threads: every claimer of
 * an open request is counted in `publishers` (it may still be before that,
 * between its claim and publish(); its connection cannot have resumed
 * then, so the request is still listed), and the count is back to 0.
 * After next_unanswered() has claimed every open request, no thread can
 * claim one any more, so this ends within microseconds.
 */
static void
wait_for_publishers(struct server *s)
{
	const struct timespec ms = { 0, 1000000 };
	struct server_request *req;
	bool busy;

	do {
		busy = false;
		pthread_mutex_lock(&s->lock);
		for (req = s->open; req != NULL && !busy; req = req->next)
			busy = atomic_load(&req->claimed) &&
			       !atomic_load(&req->counted);
		pthread_mutex_unlock(&s->lock);
		if (busy)
			nanosleep(&ms, NULL);
	} while (busy);
	/*
	 * A publisher that read `freeing` before server_free() set it leaves
	 * without a wake-up (server_handover_leave()): wait in 1 ms slices.
	 */
	pthread_mutex_lock(&s->lock);
	while (atomic_load(&s->publishers) > 0) {
		int64_t slice = timer_now_ns() + 1000000;
		struct timespec ts = { .tv_sec = slice / 1000000000,
				       .tv_nsec = slice % 1000000000 };

		pthread_cond_timedwait(&s->publishers_done, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
}

void
server_free(struct server *s)
{
	struct server_request *req;
	size_t n = 0, streams;

	if (s == NULL)
		return;
	atomic_store(&s->freeing, true);	/* before any count is read */
	/*
	 * MHD must not stop with a connection suspended.  Answer whatever
	 * still waits (normally nothing: runs were cancelled before) and
	 * give the HTTP threads a moment to send those answers.
	 */
	while ((req = next_unanswered(s)) != NULL) {
		server_answer_refuse(req, 503, "the daemon is stopping",
				     "stopping");
		server_request_unref(req);
		n++;
	}
	wait_for_publishers(s);
	/*
	 * Every stream is visible now (its claimer is counted), and none can
	 * begin on a listed request (all are claimed).  End them: a writer
	 * that resumed one first is counted, so wait for it again.
	 */
	streams = server_stream_end_all(s);
	wait_for_publishers(s);
	if (n > 0)
		log_warnx("answered %zu waiting requests with 503 at stop", n);
	if (streams > 0)
		log_warnx("ended %zu streamed answers at stop", streams);
	if (n + streams > 0)
		server_drain(s, 1000000000);
	server_destroy(s, s->nthreads, s->nthreads);
}
