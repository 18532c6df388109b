/*
 * server_limits.h - connection limits and the time a request may take to
 * come in.  Part of the server (server_private.h lists the parts); it
 * knows libmicrohttpd only in server_limits_cut().
 *
 * Two pieces:
 *  - the table (struct server_limits): how many connections are open, in
 *    all and per client address, shared by every HTTP thread under its
 *    own lock, a leaf (docs/THREADS.md).  A connection over a limit is
 *    still accepted by libmicrohttpd, whose own limit is a margin above
 *    ours (server_limits_hard()), and its first request is answered 503
 *    with Retry-After and "Connection: close".  An address over its own
 *    limit has at most as many more waiting for that 503; any further
 *    one is shut down at accept (SERVER_LIMITS_DROP_PER_IP).
 *  - the clock (struct server_limits_clock), one per HTTP thread and
 *    touched by that thread only: the connections waiting for a request's
 *    headers (from accept, or from the end of the previous request on a
 *    kept-alive connection) or for its body (from the end of its headers),
 *    each in deadline order.  A connection waiting for its answer
 *    (suspended) or sending it is on neither list, and never cut.
 *
 * Why our own clock: libmicrohttpd's connection timeout measures
 * inactivity only, and a client that sends one byte a second resets it
 * for ever.  These deadlines count the whole time.
 */
#ifndef TASKPOOLD_SERVER_LIMITS_H
#define TASKPOOLD_SERVER_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct MHD_Connection;
struct server_limits;

/* What the table says of a connection when it comes. */
enum server_limits_verdict {
	SERVER_LIMITS_OK,
	SERVER_LIMITS_OVER,		/* max_connections */
	SERVER_LIMITS_OVER_PER_IP,	/* max_connections_per_ip */
	SERVER_LIMITS_NO_MEMORY,	/* no room to count a new address */
	/*
	 * Over max_connections_per_ip, and its address already has as many
	 * connections waiting for their 503: closed at once, unanswered.
	 * Without this bound, one address that connects and sends nothing
	 * fills libmicrohttpd's own limit (a margin above max_connections)
	 * until header_timeout, and every other client waits.
	 */
	SERVER_LIMITS_DROP_PER_IP,
};

enum server_limits_phase {
	SERVER_LIMITS_IDLE,	/* on no list: handling, answering, closed */
	SERVER_LIMITS_HEADERS,	/* waiting for a request's headers */
	SERVER_LIMITS_BODY,	/* waiting for a request's body */
};

/*
 * One connection's part, embedded in the server's socket context, zeroed
 * before use.  The table's fields are written by server_limits_enter()
 * and read by _leave(); the clock's by its thread only.
 */
struct server_limits_conn {
	unsigned char addr[16];	/* IPv4 (4 bytes; also from ::ffff:0:0/96)
				 * or IPv6 (16) */
	unsigned char addrlen;	/* 0: no address, never counted per IP */
	bool counted;		/* in the counts: leave() takes it out */
	bool over;		/* in its address's count of connections
				 * waiting for their 503: leave() too */
	enum server_limits_verdict verdict;

	enum server_limits_phase phase;
	int64_t since_ns;	/* the phase began (CLOCK_MONOTONIC) */
	int64_t deadline_ns;	/* since_ns + that phase's timeout */
	uint64_t bytes_in;	/* bytes received when the phase began */
	bool cut;		/* server_limits_cut() closed it */
	struct MHD_Connection *mhd;	/* borrowed: MHD's, until CLOSED */
	struct server_limits_conn *prev, *next;	/* on a clock list */
};

/*
 * A new table: max connections in all (0: no limit of ours), at most
 * per_ip from one address (0: none).  NULL when out of memory.
 */
struct server_limits *server_limits_new(unsigned max, unsigned per_ip);
void server_limits_free(struct server_limits *l);	/* NULL is ok */

/*
 * Counts connection c from addr (borrowed; NULL or a family other than
 * IPv4 and IPv6: counted in all only).  A connection over a limit is not
 * counted, so that it does not keep a served one out once it goes; one
 * over the per-address limit is counted apart, as waiting for its 503,
 * up to max_connections_per_ip of them an address (past that: DROP).
 * Returns the verdict, also left in c->verdict.  Any thread; every c
 * entered leaves once, whatever its verdict.
 */
enum server_limits_verdict server_limits_enter(struct server_limits *l,
					       struct server_limits_conn *c,
					       const struct sockaddr *addr);

/* Takes c out of the counts, if it was in them.  Any thread, once. */
void server_limits_leave(struct server_limits *l,
			 struct server_limits_conn *c);

/* Connections counted, and addresses in the table (for tests). */
size_t server_limits_open(struct server_limits *l);
size_t server_limits_addresses(struct server_limits *l);

/* The reason a verdict is counted under in /metrics; NULL for OK. */
const char *server_limits_reason(enum server_limits_verdict v);

/*
 * libmicrohttpd's own limit for ours (max, 0: none): a margin above it,
 * so that connections over ours can still be accepted and told 503.
 * margin = max / 10 + 16.  server_limits_soft() is the inverse: the
 * largest limit of ours whose hard limit fits in `hard`.
 */
unsigned server_limits_hard(unsigned max);
unsigned server_limits_soft(unsigned hard);

/* One HTTP thread's deadlines; timeouts in ns, 0: none. */
struct server_limits_clock {
	int64_t timeout_ns[3];	/* by phase; [IDLE] unused */
	struct server_limits_conn *head[3], *tail[3];
};

void server_limits_clock_init(struct server_limits_clock *k,
			      int64_t header_ns, int64_t body_ns);

/*
 * Puts c in phase p (IDLE: on no list) from now_ns, bytes_in being the
 * bytes its socket had received by then.  A phase whose timeout is 0
 * puts it on no list.
 */
void server_limits_clock_set(struct server_limits_clock *k,
			     struct server_limits_conn *c,
			     enum server_limits_phase p, int64_t now_ns,
			     uint64_t bytes_in);

/* Milliseconds until the next deadline (rounded up), or -1: none. */
int server_limits_clock_next_ms(const struct server_limits_clock *k,
				int64_t now_ns);

/*
 * The first connection whose deadline has passed at now_ns, taken off its
 * list with its phase kept (for the caller to cut); NULL when none has.
 */
struct server_limits_conn *server_limits_clock_due(
	struct server_limits_clock *k, int64_t now_ns);

#endif
