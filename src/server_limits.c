/*
 * server_limits.c - see server_limits.h: the table of open connections
 * (in all and per client address), each HTTP thread's clock of requests
 * coming in, and the hooks that the server's callbacks call.
 *
 * Cutting a slow client off.  libmicrohttpd owns the connection's socket
 * and closes it only in MHD_cleanup_connections(), at the end of each
 * MHD_run() on the connection's own thread, right after telling us
 * (MHD_CONNECTION_NOTIFY_CLOSED, which takes the connection off our
 * lists).  A connection refused at accept, at libmicrohttpd's own limit,
 * is never told STARTED nor CLOSED; one that fails after STARTED (only
 * without MHD_USE_TURBO, when epoll_ctl() fails) is told CLOSED before its
 * close too (daemon.c: new_connection_process_(), 0.9.75).  The cut runs on that same thread, under its
 * lock and between two MHD_run() calls: a connection still on a list
 * there has its descriptor open and its own, never closed and reused.
 * It is cut only while libmicrohttpd writes nothing to it (waiting for
 * headers or body: the previous answer was all handed to the kernel
 * before NOTIFY_COMPLETED), and our 408 goes only where the kernel holds
 * nothing unsent either, so it cannot interleave with its bytes.  We
 * write the 408, then shutdown(SHUT_RDWR): libmicrohttpd reads the end
 * of the stream at its next turn and closes the connection its usual way.
 */
#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "fnv.h"
#include "http.h"
#include "log.h"
#include "server_private.h"
#include "timer.h"

/* A client address and its connections counted; a hash chain's link. */
struct addr_entry {
	struct addr_entry *next;
	unsigned char addr[16];
	unsigned char addrlen;
	unsigned count;		/* connections counted */
	unsigned over;		/* over the limit, waiting for a 503 */
};

struct server_limits {
	unsigned max, per_ip;		/* 0: no limit */
	pthread_mutex_t lock;		/* a leaf: guards what follows */
	size_t open;			/* connections counted */
	size_t naddrs;			/* entries in the table */
	size_t nbuckets;		/* a power of 2; 0 without per_ip */
	struct addr_entry **buckets;	/* owned, with the entries */
	uint64_t seed;			/* secret: see bucket_of() */
};

struct server_limits *
server_limits_new(unsigned max, unsigned per_ip)
{
	struct server_limits *l = calloc(1, sizeof(*l));
	unsigned expect = max > 0 ? max : 65536;

	if (l == NULL)
		return NULL;
	l->max = max;
	l->per_ip = per_ip;
	if (per_ip > 0) {
		/* About one entry per bucket at the limit, up to 64 Ki. */
		l->nbuckets = 64;
		while (l->nbuckets < expect && l->nbuckets < 65536)
			l->nbuckets *= 2;
		l->buckets = calloc(l->nbuckets, sizeof(*l->buckets));
		if (l->buckets == NULL) {
			free(l);
			return NULL;
		}
		/* Without entropy (not yet seeded at boot) the addresses
		 * still hash; only their spread is then guessable. */
		if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(l->seed))
			l->seed = FNV1A_INIT ^ (uint64_t)(uintptr_t)l;
	}
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void
server_limits_free(struct server_limits *l)
{
	struct addr_entry *e, *next;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nbuckets; i++)
		for (e = l->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(l->buckets);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* c's address from sa, IPv4-mapped IPv6 as IPv4; none for other kinds. */
static void
take_address(struct server_limits_conn *c, const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };

	c->addrlen = 0;
	if (sa != NULL && sa->sa_family == AF_INET) {
		memcpy(c->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		c->addrlen = 4;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(c->addr, a + 12, 4);
			c->addrlen = 4;
		} else {
			memcpy(c->addr, a, 16);
			c->addrlen = 16;
		}
	}
}

/*
 * The bucket of an address.  Clients choose their addresses (an IPv6 /64
 * holds 2^64), so the hash starts from a secret seed and is mixed at the
 * end (the finalizer of splitmix64): FNV-1a's low bits, which pick the
 * bucket, depend only on the low bits of each byte, and without the mix
 * addresses that differ in the high bits alone would share a chain.
 */
static size_t
bucket_of(const struct server_limits *l, const struct server_limits_conn *c)
{
	uint64_t h = fnv1a(l->seed, c->addr, c->addrlen);

	h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return (size_t)(h & (l->nbuckets - 1));
}

/* The link that points at c's address's entry (at NULL when none). */
static struct addr_entry **
find(struct server_limits *l, const struct server_limits_conn *c)
{
	struct addr_entry **p = &l->buckets[bucket_of(l, c)];

	while (*p != NULL && ((*p)->addrlen != c->addrlen ||
			      memcmp((*p)->addr, c->addr, c->addrlen) != 0))
		p = &(*p)->next;
	return p;
}

/* The verdict on c, and c counted if OK; under l->lock. */
static enum server_limits_verdict
judge(struct server_limits *l, struct server_limits_conn *c)
{
	struct addr_entry **p, *e;

	if (l->max > 0 && l->open >= l->max)
		return SERVER_LIMITS_OVER;
	if (l->per_ip > 0 && c->addrlen > 0) {
		p = find(l, c);
		if (*p != NULL && (*p)->count >= l->per_ip) {
			/* As many waiting for a 503 as it may be served. */
			if ((*p)->over >= l->per_ip)
				return SERVER_LIMITS_DROP_PER_IP;
			(*p)->over++;
			c->over = true;
			return SERVER_LIMITS_OVER_PER_IP;
		}
		if (*p == NULL) {
			e = calloc(1, sizeof(*e));
			if (e == NULL)
				return SERVER_LIMITS_NO_MEMORY;
			memcpy(e->addr, c->addr, c->addrlen);
			e->addrlen = c->addrlen;
			*p = e;
			l->naddrs++;
		}
		(*p)->count++;
	}
	l->open++;
	c->counted = true;
	return SERVER_LIMITS_OK;
}

enum server_limits_verdict
server_limits_enter(struct server_limits *l, struct server_limits_conn *c,
		    const struct sockaddr *addr)
{
	take_address(c, addr);
	c->counted = false;
	c->over = false;
	pthread_mutex_lock(&l->lock);
	c->verdict = judge(l, c);
	pthread_mutex_unlock(&l->lock);
	return c->verdict;
}

void
server_limits_leave(struct server_limits *l, struct server_limits_conn *c)
{
	struct addr_entry **p, *e = NULL;

	if (!c->counted && !c->over)
		return;
	pthread_mutex_lock(&l->lock);
	if (c->counted)
		l->open--;
	if (l->per_ip > 0 && c->addrlen > 0) {
		p = find(l, c);
		if (*p != NULL) {
			if (c->counted)
				(*p)->count--;
			else
				(*p)->over--;
			if ((*p)->count == 0 && (*p)->over == 0) {
				e = *p;
				*p = e->next;
				l->naddrs--;
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
	c->counted = c->over = false;
	free(e);
}

size_t
server_limits_open(struct server_limits *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->open;
	pthread_mutex_unlock(&l->lock);
	return n;
}

size_t
server_limits_addresses(struct server_limits *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->naddrs;
	pthread_mutex_unlock(&l->lock);
	return n;
}

const char *
server_limits_reason(enum server_limits_verdict v)
{
	switch (v) {
	case SERVER_LIMITS_OVER:	return "connection_limit";
	case SERVER_LIMITS_OVER_PER_IP:
	case SERVER_LIMITS_DROP_PER_IP:	return "connection_limit_per_ip";
	case SERVER_LIMITS_NO_MEMORY:	return "out_of_memory";
	default:			return NULL;
	}
}

#define MARGIN_MIN 16u

unsigned
server_limits_hard(unsigned max)
{
	unsigned long long h;

	if (max == 0)
		return 0;
	h = (unsigned long long)max + max / 10 + MARGIN_MIN;
	return h > UINT_MAX ? UINT_MAX : (unsigned)h;
}

unsigned
server_limits_soft(unsigned hard)
{
	unsigned s;

	if (hard <= MARGIN_MIN + 1)
		return 1;
	/* About (hard - 16) * 10 / 11; then step to the exact largest. */
	s = (unsigned)(((unsigned long long)hard - MARGIN_MIN) * 10 / 11);
	while (s > 1 && server_limits_hard(s) > hard)
		s--;
	while (server_limits_hard(s + 1) <= hard)
		s++;
	return s;
}

/* ---- the clock: one HTTP thread's, on that thread only ---- */

void
server_limits_clock_init(struct server_limits_clock *k, int64_t header_ns,
			 int64_t body_ns)
{
	memset(k, 0, sizeof(*k));
	k->timeout_ns[SERVER_LIMITS_HEADERS] = header_ns;
	k->timeout_ns[SERVER_LIMITS_BODY] = body_ns;
}

/*
 * Takes c off its phase's list, if it is on one: a connection taken off
 * by server_limits_clock_due() keeps its phase and is on none.
 */
static void
unlink_conn(struct server_limits_clock *k, struct server_limits_conn *c)
{
	enum server_limits_phase p = c->phase;

	if (p == SERVER_LIMITS_IDLE || (c->prev == NULL && k->head[p] != c))
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		k->head[p] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		k->tail[p] = c->prev;
	c->prev = c->next = NULL;
}

/*
 * Each list is in deadline order because every entry of a phase has the
 * same timeout and the clock only goes forward: append at the tail.
 */
void
server_limits_clock_set(struct server_limits_clock *k,
			struct server_limits_conn *c,
			enum server_limits_phase p, int64_t now_ns,
			uint64_t bytes_in)
{
	unlink_conn(k, c);
	c->phase = p;
	c->since_ns = now_ns;
	c->bytes_in = bytes_in;
	if (p == SERVER_LIMITS_IDLE || k->timeout_ns[p] == 0)
		return;
	c->deadline_ns = now_ns + k->timeout_ns[p];
	c->next = NULL;
	c->prev = k->tail[p];
	if (k->tail[p] != NULL)
		k->tail[p]->next = c;
	else
		k->head[p] = c;
	k->tail[p] = c;
}

int
server_limits_clock_next_ms(const struct server_limits_clock *k,
			    int64_t now_ns)
{
	int64_t next = INT64_MAX, ms;
	int p;

	for (p = SERVER_LIMITS_HEADERS; p <= SERVER_LIMITS_BODY; p++)
		if (k->head[p] != NULL && k->head[p]->deadline_ns < next)
			next = k->head[p]->deadline_ns;
	if (next == INT64_MAX)
		return -1;
	if (next <= now_ns)
		return 0;
	ms = (next - now_ns + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

struct server_limits_conn *
server_limits_clock_due(struct server_limits_clock *k, int64_t now_ns)
{
	struct server_limits_conn *c;
	int p;

	for (p = SERVER_LIMITS_HEADERS; p <= SERVER_LIMITS_BODY; p++) {
		c = k->head[p];
		if (c != NULL && c->deadline_ns <= now_ns) {
			unlink_conn(k, c);
			return c;	/* its phase stays, for the cut */
		}
	}
	return NULL;
}

/* ---- the hooks: on the connection's HTTP thread, under its lock ---- */

/* The connection's socket; -1 if libmicrohttpd will not say. */
static int
socket_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	return info != NULL ? info->connect_fd : -1;
}

/*
 * Bytes the socket has received in all (TCP_INFO, Linux 4.1+), or
 * UINT64_MAX when it cannot say: then any cut counts as a request begun.
 */
static uint64_t
bytes_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
		  sizeof(ti.tcpi_bytes_received))
		return UINT64_MAX;
	return ti.tcpi_bytes_received;
}

void
server_limits_accepted(struct server_thread *t, struct MHD_Connection *conn,
		       struct server_limits_conn *c)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	const struct server_options *o = &t->server->opts;
	struct server_report r = { .method = "-", .status = 0 };
	int fd;

	memset(c, 0, sizeof(*c));
	c->mhd = conn;
	if (server_limits_enter(t->server->limits, c, info != NULL ?
				info->client_addr : NULL) ==
	    SERVER_LIMITS_DROP_PER_IP) {
		/*
		 * Closed as a cut one is (server_reject.c adds nothing): the
		 * descriptor is open until after CLOSED, and libmicrohttpd
		 * reads the end of it at its first turn.
		 */
		c->cut = true;
		r.reason = server_limits_reason(c->verdict);
		if (o->observe != NULL)
			o->observe(o->observe_arg, &r);
		if ((fd = socket_of(conn)) >= 0)
			shutdown(fd, SHUT_RDWR);
		return;
	}
	/* From 0 bytes: whatever came before accept is this request's. */
	server_limits_clock_set(&t->clock, c, SERVER_LIMITS_HEADERS,
				timer_now_ns(), 0);
}

void
server_limits_closed(struct server_thread *t, struct server_limits_conn *c)
{
	server_limits_clock_set(&t->clock, c, SERVER_LIMITS_IDLE, 0, 0);
	server_limits_leave(t->server->limits, c);
}

int
server_limits_headers_in(struct server_request *req,
			 struct server_limits_conn *c, int status,
			 const char **why, const char **reason)
{
	struct server_thread *t = req->thread;

	req->limits = c;
	if (c == NULL)
		return status;	/* no socket context: not limited */
	if (c->cut)
		return -1;	/* cut off already: answer nothing more */
	server_limits_clock_set(&t->clock, c, SERVER_LIMITS_IDLE, 0, 0);
	if (c->verdict != SERVER_LIMITS_OK) {
		*reason = server_limits_reason(c->verdict);
		*why = c->verdict == SERVER_LIMITS_OVER_PER_IP ?
		       "too many connections from this address" :
		       c->verdict == SERVER_LIMITS_OVER ?
		       "too many connections" :
		       "out of memory for a new connection";
		server_add_header(req, "Retry-After", "1");
		server_add_header(req, "Connection", "close");
		return 503;
	}
	/* Refused already: libmicrohttpd sends it and reads no body. */
	if (status != 0)
		return status;
	server_limits_clock_set(&t->clock, c, SERVER_LIMITS_BODY,
				timer_now_ns(), 0);
	return 0;
}

int
server_limits_body_in(struct server_request *req)
{
	struct server_limits_conn *c = req->limits;

	if (c == NULL)
		return 0;
	server_limits_clock_set(&req->thread->clock, c, SERVER_LIMITS_IDLE,
				0, 0);
	return c->cut ? -1 : 0;
}

void
server_limits_request_done(struct server_request *req)
{
	struct server_limits_conn *c = req->limits;
	struct server_limits_clock *k = &req->thread->clock;

	if (c == NULL || c->cut)
		return;
	/* A kept-alive connection waits for its next request's headers. */
	server_limits_clock_set(k, c, SERVER_LIMITS_HEADERS, timer_now_ns(),
				k->timeout_ns[SERVER_LIMITS_HEADERS] > 0 ?
				bytes_received(socket_of(c->mhd)) : 0);
}

/*
 * Whether our bytes may go first on fd: nothing unsent in the kernel.  A
 * client that stopped reading an earlier answer may have left libmicrohttpd
 * bytes there (and more of them in its own buffer, sent as room comes):
 * a 408 written then would be mixed into them.
 */
static bool
nothing_unsent(int fd)
{
	int queued = 1;

	return ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0;
}

/*
 * Cuts c off: its deadline passed while it was waiting for headers or a
 * body (the file's top says why this is safe).  With some of a request
 * received, and the socket ours to write (not TLS, no answer of
 * libmicrohttpd's queued, nothing unsent), the client is told 408 first;
 * a client that sent nothing is closed without a word, as an idle
 * kept-alive connection is.  Counted by reason.
 */
static void
cut(struct server_thread *t, struct server_limits_conn *c)
{
	const struct server_options *o = &t->server->opts;
	bool body = c->phase == SERVER_LIMITS_BODY;
	int fd = socket_of(c->mhd);
	struct server_report r = { .method = "-", .status = 0,
		.reason = body ? "body_timeout" : "header_timeout" };
	char detail[96], *answer = NULL;
	size_t len = 0;

	c->cut = true;
	/* Counted before the client can see it, and ask /metrics. */
	if (o->observe != NULL)
		o->observe(o->observe_arg, &r);
	if (fd < 0)
		return;
	if ((body || bytes_received(fd) > c->bytes_in) &&
	    !t->server->tls_on &&
	    MHD_get_connection_info(c->mhd,
				    MHD_CONNECTION_INFO_HTTP_STATUS) == NULL &&
	    nothing_unsent(fd)) {
		snprintf(detail, sizeof(detail), "the request %s took longer "
			 "than %lld ms", body ? "body" : "headers",
			 (long long)(t->clock.timeout_ns[c->phase] / 1000000));
		answer = http_problem_answer(408, detail, &len);
	}
	/* One try, never waiting: a client that reads nothing gets less. */
	if (answer != NULL &&
	    send(fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("408 to a slow client: send: %s", strerror(errno));
	free(answer);
	/* libmicrohttpd reads the end at its next turn, and closes. */
	shutdown(fd, SHUT_RDWR);
	log_debug("connection cut off: %s", r.reason);
}

void
server_limits_expire(struct server_thread *t)
{
	struct server_limits_conn *c;
	int64_t now;

	if (t->clock.head[SERVER_LIMITS_HEADERS] == NULL &&
	    t->clock.head[SERVER_LIMITS_BODY] == NULL)
		return;
	now = timer_now_ns();
	while ((c = server_limits_clock_due(&t->clock, now)) != NULL)
		cut(t, c);
}

int
server_limits_timeout_ms(struct server_thread *t)
{
	if (t->clock.head[SERVER_LIMITS_HEADERS] == NULL &&
	    t->clock.head[SERVER_LIMITS_BODY] == NULL)
		return -1;
	return server_limits_clock_next_ms(&t->clock, timer_now_ns());
}
