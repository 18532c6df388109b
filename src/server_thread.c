/*
 * server_thread.c - the HTTP threads and their event loop.
 *
 * Each HTTP thread runs its own MHD daemon in MHD's "external epoll" mode
 * (MHD_run() when its epoll fd or our eventfd is ready); the daemons share
 * one listening socket.  With MHD's internal thread pool,
 * MHD_quiesce_daemon() races the pool's loop and MHD aborts the process;
 * here it runs under the thread's lock, between two MHD_run() calls.  In
 * this mode MHD has no wake-up channel of its own: whoever resumes a
 * connection writes the thread's eventfd (server_handover_wake()).
 *
 * Above every other part of the server but its life (server.c): MHD, run
 * here, calls server_intake.c, and a hang-up that the loop sees on a watch
 * (server_watch.c) goes to server_intake_on_hang_up().
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "server_private.h"

/*
 * How long the thread may wait for events: until MHD must close an idle
 * connection or a request's deadline passes, 0 when MHD holds data that
 * no new event would announce, or for ever (-1).
 */
static int
next_timeout(struct server_thread *t)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int mine = server_limits_timeout_ms(t);	/* a request's deadline */

	if (MHD_get_timeout(t->mhd, &ms) != MHD_YES)
		return mine;
	if (mine >= 0 && (unsigned)mine < ms)
		return mine;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * Reads the thread's eventfd.  Read, then clear: the other way round, a
 * write that came in between is read here while wake_pending stays set,
 * and later resumes never write: lost until the next network event (seen
 * under load in test_concurrency).  This way a resume that found it set
 * is seen by the MHD_run() that follows: the exchange pairs with
 * server_handover_wake()'s.
 */
static void
take_wake_up(struct server_thread *t)
{
	uint64_t count;

	if (read(t->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("HTTP thread: eventfd");
	atomic_exchange(&t->wake_pending, false);
}


#define EVENTS_MAX 64

/*
 * One HTTP thread: waits on its daemon's epoll fd (connections and the
 * listening socket), on its wake_fd, and on the sockets of its suspended
 * connections, then runs the daemon under t->lock.  A request's watch is
 * removed on this thread only, before MHD can free the request (inside
 * MHD_run()), so an event's request pointer is always valid here.
 */
void *
server_thread_main(void *arg)
{
	struct server_thread *t = arg;
	struct server *s = t->server;
	struct epoll_event ev[EVENTS_MAX];
	int i, n, timeout;

	pthread_mutex_lock(&t->lock);
	timeout = next_timeout(t);
	pthread_mutex_unlock(&t->lock);
	for (;;) {
		n = epoll_wait(t->epfd, ev, EVENTS_MAX, timeout);
		if (n < 0 && errno != EINTR) {
			/* EBADF, EFAULT or EINVAL: a bug of ours.  Looping
			 * on it would burn a core and answer nobody. */
			log_warn("HTTP thread: epoll_wait");
			abort();
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &t->wake_fd)
				take_wake_up(t);
			else if (ev[i].data.ptr != NULL) {
				server_watch_end(ev[i].data.ptr);
				server_intake_on_hang_up(ev[i].data.ptr);
			}
		}
		if (atomic_load_explicit(&s->stop, memory_order_acquire))
			return NULL;
		pthread_mutex_lock(&t->lock);
		/* Between two MHD_run(): see server_limits.c on why here. */
		server_limits_expire(t);
		MHD_run(t->mhd);	/* it logs its own errors */
		timeout = next_timeout(t);
		pthread_mutex_unlock(&t->lock);
	}
}

/*
 * Stops one daemon; its thread must not be running.  Quiesced first so that
 * MHD does not close the shared listening socket: that is ours to close.
 */
void
server_thread_stop_daemon(struct server_thread *t)
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
int
server_thread_start_daemon(struct server *s, struct server_thread *t,
			   unsigned limit)
{
	const union MHD_DaemonInfo *info;
	struct epoll_event mhd_ev = { .events = EPOLLIN };
	struct epoll_event wake_ev = { .events = EPOLLIN,
				       .data.ptr = &t->wake_fd };
	/*
	 * TLS: server_tls.c serves the certificate; none of it otherwise.
	 * The typed pointer makes the compiler check the callback's type,
	 * which the option array's void * would not.
	 */
	gnutls_certificate_retrieve_function2 *retrieve = server_tls_retrieve;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0,
		  (void *)s->opts.tls_priorities },
		{ MHD_OPTION_END, 0, NULL },
	};

	t->server = s;
	server_limits_clock_init(&t->clock, s->opts.header_timeout_ns,
				 s->opts.body_timeout_ns);
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
	 * MHD_USE_TURBO also keeps MHD from shutting a socket down before it
	 * tells us it closes: server_reject.c writes its 400 then.
	 */
	t->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
				  MHD_USE_ERROR_LOG | MHD_USE_TURBO |
				  (s->tls_on ? MHD_USE_TLS : 0),
		0, NULL, NULL, server_intake_on_request, t,
		MHD_OPTION_EXTERNAL_LOGGER, server_intake_on_mhd_log, t,
		MHD_OPTION_ARRAY, s->tls_on ? tls : tls + 2,
		MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, limit,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->opts.connection_memory,
		MHD_OPTION_CONNECTION_TIMEOUT, s->opts.connection_timeout_s,
		MHD_OPTION_NOTIFY_COMPLETED, server_intake_on_completed, t,
		MHD_OPTION_URI_LOG_CALLBACK, server_intake_on_uri, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, server_intake_on_connection, t,
		MHD_OPTION_END);
	if (t->mhd == NULL) {
		log_warnx("cannot serve HTTP: libmicrohttpd failed to start");
		server_thread_stop_daemon(t);
		return -1;
	}
	info = MHD_get_daemon_info(t->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (t->epfd < 0 || t->wake_fd < 0 || info == NULL ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, info->epoll_fd, &mhd_ev) != 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake_fd, &wake_ev) != 0) {
		log_warn("cannot serve HTTP: epoll");
		server_thread_stop_daemon(t);
		return -1;
	}
	return 0;
}

/* Tells the first n threads to return, and joins them. */
void
server_threads_join(struct server *s, unsigned n)
{
	unsigned i;

	atomic_store_explicit(&s->stop, true, memory_order_release);
	for (i = 0; i < n; i++) {
		atomic_store(&s->threads[i].wake_pending, false);
		server_handover_wake(&s->threads[i]);
	}
	for (i = 0; i < n; i++)
		pthread_join(s->threads[i].tid, NULL);
}


