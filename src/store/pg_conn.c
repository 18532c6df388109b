/*
 * pg_conn.c - the PostgreSQL backend's connections: making one with the
 * session settings, the readers' pool, and statements bounded by a
 * deadline.
 *
 * libpq's blocking PQexecParams() would wait for as long as the kernel
 * keeps a dead TCP connection open; so a statement is sent with
 * PQsendQueryParams() and its answer awaited with poll() until the
 * deadline.  The connections are non-blocking for the same reason on the
 * way out: a send that a dead peer's full window holds up (a big result,
 * a batch of 1,000 upserts) stays in libpq's buffer, and pg_wait()
 * flushes it under the deadline.  statement_timeout bounds it on the server's side too, so a
 * statement given up here does not run on there for long.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "store/pg.h"

#define WARN_EVERY_NS INT64_C(1000000000)

void
pg_warn(struct pg *pg, const char *fmt, ...)
{
	int64_t now = clock_now_ns(CLOCK_MONOTONIC);
	int64_t last = atomic_load_explicit(&pg->warned_ns,
					    memory_order_relaxed);
	uint64_t more;
	char line[1024];
	va_list ap;
	int saved = errno;	/* callers set errno, then warn, then return */

	/*
	 * A database that is down fails every call: one line a second says
	 * so, and how many more there were, instead of one a call.
	 */
	if ((last != 0 && now - last < WARN_EVERY_NS) ||
	    !atomic_compare_exchange_strong(&pg->warned_ns, &last, now)) {
		atomic_fetch_add_explicit(&pg->unwarned, 1,
					  memory_order_relaxed);
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	more = atomic_exchange_explicit(&pg->unwarned, 0,
					memory_order_relaxed);
	if (more > 0)
		log_warnx("store: postgresql %s: %s (and %" PRIu64 " more "
			  "failures since the last line)", pg->where, line,
			  more);
	else
		log_warnx("store: postgresql %s: %s", pg->where, line);
	errno = saved;
}

const char *
pg_message(const char *msg, char *buf, size_t size)
{
	size_t i, n = 0;

	/* libpq's messages end with a newline and may span lines. */
	for (i = 0; msg != NULL && msg[i] != '\0' && n + 1 < size; i++)
		if (msg[i] == '\n' || msg[i] == '\t')
			buf[n++] = ' ';
		else
			buf[n++] = msg[i];
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

/* Notices (a table that exists already...) are not the log's business. */
static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int64_t
pg_deadline(void)
{
	return clock_now_ns(CLOCK_MONOTONIC) + STORE_TIMEOUT_NS;
}

void
pg_now_text(char *buf, size_t size)
{
	snprintf(buf, size, "%" PRId64, clock_now_ns(CLOCK_REALTIME));
}

/*
 * Whether the url names a connect_timeout of its own: then it is the
 * operator's, else ours (a stopped server behind a dropped route would
 * hold a connect for the kernel's two minutes).
 */
static bool
url_has_connect_timeout(const char *url)
{
	PQconninfoOption *opts, *o;
	bool has = false;

	opts = PQconninfoParse(url, NULL);
	if (opts == NULL)
		return false;
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 &&
		    o->val != NULL && o->val[0] != '\0')
			has = true;
	PQconninfoFree(opts);
	return has;
}

PGconn *
pg_connect(struct pg *pg)
{
	char appname[PG_INSTANCE_MAX + 16], timeout[64], msg[512];
	const char *keys[5], *vals[5];
	PGresult *res;
	PGconn *conn;
	bool broken;
	int k = 0;

	snprintf(appname, sizeof(appname), "taskpoold/%s", pg->instance);
	/* Later keywords override earlier ones, and the url's own. */
	if (!url_has_connect_timeout(pg->url)) {
		keys[k] = "connect_timeout";
		vals[k++] = "2";
	}
	keys[k] = "dbname";
	vals[k++] = pg->url;
	keys[k] = "application_name";
	vals[k++] = appname;
	keys[k] = NULL;
	vals[k] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		log_warnx("store: postgresql %s: out of memory", pg->where);
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password. */
		pg_warn(pg, "%s",
			pg_message(PQerrorMessage(conn), msg, sizeof(msg)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet, NULL);
	if (PQsetnonblocking(conn, 1) != 0) {
		pg_warn(pg, "%s",
			pg_message(PQerrorMessage(conn), msg, sizeof(msg)));
		PQfinish(conn);
		return NULL;
	}
	snprintf(timeout, sizeof(timeout), "SET statement_timeout = %d",
		 (int)(STORE_TIMEOUT_NS / 1000000));
	res = pg_exec(pg, conn, timeout, 0, NULL, PGRES_COMMAND_OK,
		      pg_deadline(), &broken);
	if (res == NULL) {
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

bool
pg_alive(PGconn *conn)
{
	struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };

	/*
	 * An idle connection has nothing to read; a server that stopped has
	 * sent its farewell (FATAL 57P01) and closed.  Reading it now marks
	 * the connection bad, before a request is failed for it.
	 */
	int i;

	if (PQstatus(conn) == CONNECTION_BAD || pfd.fd < 0)
		return false;
	/* The farewell, then the end of the stream: a read for each. */
	for (i = 0; i < 4 && poll(&pfd, 1, 0) > 0; i++)
		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			return false;
	return i < 4 && PQstatus(conn) == CONNECTION_OK;
}

struct pg_slot *
pg_take(struct pg *pg, int64_t deadline)
{
	struct pg_slot *slot = NULL;
	struct timespec ts;
	size_t i;
	int rc = 0;

	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&pg->pool_lock);
	for (;;) {
		/* A slot with a connection first: connecting is slow. */
		for (i = 0; i < PG_POOL_SIZE; i++)
			if (!pg->slots[i].busy && (slot == NULL ||
			    (slot->conn == NULL && pg->slots[i].conn != NULL)))
				slot = &pg->slots[i];
		if (slot != NULL || rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&pg->pool_free, &pg->pool_lock,
					    &ts);
	}
	if (slot != NULL)
		slot->busy = true;
	pthread_mutex_unlock(&pg->pool_lock);
	if (slot == NULL) {
		errno = ETIMEDOUT;
		return NULL;
	}
	/* The slot is ours now: its connection is touched unlocked. */
	if (slot->conn != NULL && !pg_alive(slot->conn)) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	if (slot->conn == NULL)
		slot->conn = pg_connect(pg);
	if (slot->conn == NULL) {
		pg_give(pg, slot, true);
		errno = EIO;
		return NULL;
	}
	return slot;
}

void
pg_give(struct pg *pg, struct pg_slot *slot, bool broken)
{
	if (broken && slot->conn != NULL) {
		PQfinish(slot->conn);
		slot->conn = NULL;
	}
	pthread_mutex_lock(&pg->pool_lock);
	slot->busy = false;
	pthread_cond_signal(&pg->pool_free);
	pthread_mutex_unlock(&pg->pool_lock);
}

int
pg_wait(PGconn *conn, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n, unsent;

	while (PQisBusy(conn)) {
		left = deadline - clock_now_ns(CLOCK_MONOTONIC);
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		/* What the statement left unsent (non-blocking) goes first. */
		if ((unsent = PQflush(conn)) < 0) {
			errno = EIO;
			return -1;
		}
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN | (unsent ? POLLOUT : 0);
		if (pfd.fd < 0) {
			errno = EIO;
			return -1;
		}
		n = poll(&pfd, 1, (int)((left + 999999) / 1000000));
		if (n < 0 && errno != EINTR) {
			errno = EIO;
			return -1;
		}
		if (n > 0 && (pfd.revents & ~POLLOUT) != 0 &&
		    !PQconsumeInput(conn)) {
			errno = EIO;
			return -1;
		}
	}
	return 0;
}

PGresult *
pg_exec(struct pg *pg, PGconn *conn, const char *sql, int n,
	const char *const *values, ExecStatusType want, int64_t deadline,
	bool *broken)
{
	PGresult *res, *first = NULL;
	char msg[512];
	int saved;

	*broken = false;
	/* Without parameters, several statements may go at once. */
	if (n == 0 ? !PQsendQuery(conn, sql) :
	    !PQsendQueryParams(conn, sql, n, NULL, values, NULL, NULL, 0)) {
		pg_warn(pg, "%s",
			pg_message(PQerrorMessage(conn), msg, sizeof(msg)));
		*broken = true;
		errno = EIO;
		return NULL;
	}
	/* A result per statement, then NULL: keep the first, or an error. */
	for (;;) {
		if (pg_wait(conn, deadline) < 0) {
			saved = errno;

			pg_warn(pg, "%s", saved == ETIMEDOUT ?
				"no answer in time" :
				pg_message(PQerrorMessage(conn), msg,
					   sizeof(msg)));
			PQclear(first);
			*broken = true;
			errno = saved;
			return NULL;
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (first == NULL ||
		    (PQresultStatus(res) == PGRES_FATAL_ERROR &&
		     PQresultStatus(first) != PGRES_FATAL_ERROR)) {
			PQclear(first);
			first = res;
		} else {
			PQclear(res);
		}
	}
	if (first != NULL && PQresultStatus(first) == want)
		return first;
	if (first != NULL && PQresultStatus(first) == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(first, PG_DIAG_SQLSTATE);

		/* 57014: statement_timeout; 08...: the connection. */
		errno = EIO;
		if (state != NULL && strcmp(state, "57014") == 0)
			errno = ETIMEDOUT;
		/*
		 * Classes 22 (data exception: text that is not UTF-8) and
		 * 23 (a unique key taken): the values' fault, not the
		 * database's, and no retry will help.
		 */
		if (state != NULL && (strncmp(state, "22", 2) == 0 ||
				      strncmp(state, "23", 2) == 0))
			errno = EINVAL;
		pg_warn(pg, "%s", pg_message(PQresultErrorMessage(first),
					     msg, sizeof(msg)));
	} else {
		errno = EIO;
		pg_warn(pg, "unexpected %s", first != NULL ?
			PQresStatus(PQresultStatus(first)) : "no result");
	}
	saved = errno;
	PQclear(first);
	if (PQstatus(conn) == CONNECTION_BAD)
		*broken = true;
	errno = saved;
	return NULL;
}
