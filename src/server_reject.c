/*
 * server_reject.c - libmicrohttpd's own refusals: every one answered and
 * counted.
 *
 * libmicrohttpd 0.9.75 answers some bad requests itself, before any
 * callback of ours sees a request: a malformed version or header line
 * (400), an unsupported version (505), headers past connection_memory
 * (431), a request line past it (414), a bad Content-Length or chunk size
 * (400, 413).  Each such answer is logged through our logger as "Error
 * processing request (HTTP response code is N ...": that line is how it is
 * counted (server_reject_logged()).
 *
 * A request line it cannot split (no space, "GARBAGE"; an empty method)
 * it closes without a word (connection.c: parse_initial_message_line()
 * returns MHD_NO without transmit_error_response()).  Such a connection
 * is told apart when it closes (MHD_CONNECTION_NOTIFY_CLOSED), from the
 * kernel's TCP_INFO: the client sent bytes, libmicrohttpd wrote none,
 * took no request line of it (server_reject_line_seen()), did not time
 * it out, it is not TLS, and the server is not stopping.  Then the 400 is
 * written here.
 * This is safe: MHD calls the notification on this thread before it
 * closes the descriptor (daemon.c: MHD_cleanup_connections()), so the
 * descriptor is still this connection's; and with MHD_USE_TURBO it has
 * not shut the socket down for writing.  A connection that already had a
 * request line taken (keep-alive, then garbage) is closed silently, as
 * libmicrohttpd does: its bytes cannot be told from the earlier
 * request's.  A connection server_limits.c cut off (its limits.cut) was
 * answered or closed on purpose, and gets nothing added.
 */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"
#include "server_private.h"

/* What libmicrohttpd 0.9.75 logs as it queues an answer of its own. */
#define MHD_REFUSAL_PREFIX "Error processing request (HTTP response code is "

void
server_reject_line_seen(struct MHD_Connection *conn)
{
	struct server_conn *c = server_conn_of(conn);

	if (c != NULL)
		c->line_seen = true;
}

/* The metrics' reason for a status libmicrohttpd answered with. */
static const char *
mhd_reason(unsigned status)
{
	switch (status) {
	case 413: return "body_too_large";
	case 414: return "uri_too_long";
	case 431: return "headers_too_large";
	case 505: return "http_version_not_supported";
	default:  return "malformed_request";
	}
}

bool
server_reject_logged(struct server *s, const char *msg)
{
	unsigned status;

	if (strncmp(msg, MHD_REFUSAL_PREFIX, strlen(MHD_REFUSAL_PREFIX)) != 0)
		return false;
	if (sscanf(msg + strlen(MHD_REFUSAL_PREFIX), "%u", &status) != 1 ||
	    status < 400 || status > 599)
		return false;
	server_observe_refusal(s, status, mhd_reason(status));
	return true;
}

/*
 * True if libmicrohttpd closed fd for a request line it could not parse,
 * by the rules at the top; false when in doubt (not TCP, an old kernel).
 */
static bool
closed_silently(struct MHD_Connection *conn, int fd)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	unsigned long long timeout_ms;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_sent) +
		  sizeof(ti.tcpi_bytes_sent))
		return false;
	if (ti.tcpi_bytes_received == 0 || ti.tcpi_bytes_sent != 0 ||
	    ti.tcpi_notsent_bytes != 0)
		return false;
	/* Idle for its timeout (ms since the last byte, a second spare). */
	timeout_ms = info != NULL ? info->connection_timeout * 1000ULL : 0;
	return timeout_ms == 0 || ti.tcpi_last_data_recv + 1000ULL < timeout_ms;
}

/*
 * Writes a whole 400 problem, then FIN.  What the client sent after the
 * line is read away first: closing a socket with unread data sends a
 * reset, which may destroy the answer before the client reads it.
 */
static void
answer_bad_line(int fd)
{
	char buf[4096], *answer;
	size_t len = 0;
	int i;

	for (i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
	     i++)
		;
	answer = http_problem_answer(400, "malformed request line", &len);
	/* A fresh socket's buffer takes it whole; if not, it is cut short. */
	if (answer != NULL)
		(void)send(fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(answer);
	shutdown(fd, SHUT_WR);
}

void
server_reject_closed(struct server *s, struct MHD_Connection *conn,
		     const struct server_conn *c)
{
	const union MHD_ConnectionInfo *info;

	/* A connection server_limits.c cut off was answered or closed on
	 * purpose. */
	if (c == NULL || c->line_seen || c->limits.cut ||
	    atomic_load(&s->stop))
		return;
	/* Never plain text into a TLS connection (the whole server is). */
	if (s->tls_on)
		return;
	info = MHD_get_connection_info(conn,
				       MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info == NULL || !closed_silently(conn, info->connect_fd))
		return;
	answer_bad_line(info->connect_fd);
	server_observe_refusal(s, 400, "malformed_request_line");
}
