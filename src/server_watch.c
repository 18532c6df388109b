/*
 * server_watch.c - the hang-up watch.  While a request waits with its
 * connection suspended (for its answer, or a stream for its next piece),
 * the connection's socket is in its HTTP thread's epoll set, so that a
 * client closing it is noticed: the thread's loop (server_thread.c) takes
 * the event, ends the watch and hands the request on.  A watch is begun
 * and ended on the request's HTTP thread only, and ended before MHD can
 * free the request, so an event's request pointer is always valid.
 */
#include <sys/epoll.h>

#include "log.h"
#include "server_private.h"

/*
 * Watches a suspended request's socket for the client hanging up: EPOLLRDHUP
 * (its FIN), and EPOLLHUP and EPOLLERR, which epoll always reports.  Not
 * EPOLLIN: a pipelined request waiting in the socket is no hang-up.  A
 * client that half-closes after sending its request (shutdown(SHUT_WR))
 * looks the same as one that has gone, as it does to nginx.  On the
 * request's MHD thread.  Returns 0, or -1 (logged at debug level: the
 * request then waits unwatched, as it did before watches existed).
 */
int
server_watch_begin(struct server_request *req)
{
	const union MHD_ConnectionInfo *info;
	struct epoll_event ev = { .events = EPOLLRDHUP, .data.ptr = req };

	info = MHD_get_connection_info(req->conn,
				       MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info == NULL ||
	    epoll_ctl(req->thread->epfd, EPOLL_CTL_ADD, info->connect_fd,
		      &ev) != 0) {
		log_debug("%s %s: cannot watch the connection for a hang-up",
			  req->method, req->path);
		return -1;
	}
	req->watch_fd = info->connect_fd;
	return 0;
}

/* Ends the watch, if any.  On the request's MHD thread. */
void
server_watch_end(struct server_request *req)
{
	if (req->watch_fd < 0)
		return;
	if (epoll_ctl(req->thread->epfd, EPOLL_CTL_DEL, req->watch_fd,
		      NULL) != 0)
		log_warn("%s %s: epoll_ctl", req->method, req->path);
	req->watch_fd = -1;
}
