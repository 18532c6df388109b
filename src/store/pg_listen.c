/*
 * pg_listen.c - the PostgreSQL backend's listening thread: one connection
 * that LISTENs on the queue's channels and turns notifications into the
 * store's events.
 *
 *   taskpoold_queue     payload: the id     -> STORE_EVENT_QUEUED
 *   taskpoold_cancel    "owner id"          -> STORE_EVENT_CANCEL, only
 *                                              on the owner's instance
 *   taskpoold_finished  the id              -> STORE_EVENT_FINISHED
 *
 * When the connection is lost the thread makes it again, waiting 100 ms
 * and doubling up to 2 s between tries.  Notifications sent meanwhile are
 * lost (PostgreSQL keeps none for an absent listener), so every
 * connection made, once it listens, is followed by a look back: a
 * STORE_EVENT_QUEUED with the id "" that sends the runner to look at the
 * queue itself, and a STORE_EVENT_CANCEL for each unfinished job of this
 * instance whose cancel was asked (cancel_requested).  The same look back
 * is made again when a handler is set after the listener told something
 * to nobody.  A cancel may so be told twice; handlers take that.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store/pg.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

void
pg_set_events(void *b, void (*fn)(enum store_event, const char *, void *),
	      void *arg)
{
	struct pg *pg = b;
	bool again;

	pthread_mutex_lock(&pg->events_lock);
	pg->events_fn = fn;
	pg->events_arg = arg;
	again = fn != NULL && pg->events_missed;
	if (fn != NULL)
		pg->events_missed = false;
	pthread_mutex_unlock(&pg->events_lock);
	/* What the listener told nobody: it looks back again, for fn. */
	if (again && write(pg->wake_fd, &(uint64_t){ 1 },
			   sizeof(uint64_t)) < 0)
		log_warn("store: postgresql: cannot wake the listener");
}

/* Calls the handler, outside the lock (it may take its own). */
static void
deliver(struct pg *pg, enum store_event ev, const char *id)
{
	void (*fn)(enum store_event, const char *, void *);
	void *arg;

	pthread_mutex_lock(&pg->events_lock);
	fn = pg->events_fn;
	arg = pg->events_arg;
	if (fn == NULL)
		pg->events_missed = true;
	pthread_mutex_unlock(&pg->events_lock);
	if (fn != NULL)
		fn(ev, id, arg);
}

/* One notification: its payload is untrusted (anyone may NOTIFY). */
static void
notified(struct pg *pg, const PGnotify *n)
{
	size_t me = strlen(pg->instance);
	const char *id = n->extra;

	if (id == NULL || strlen(id) >= STORE_ID_MAX + PG_INSTANCE_MAX)
		return;
	if (strcmp(n->relname, "taskpoold_queue") == 0) {
		if (strlen(id) < STORE_ID_MAX)
			deliver(pg, STORE_EVENT_QUEUED, id);
	} else if (strcmp(n->relname, "taskpoold_finished") == 0) {
		if (id[0] != '\0' && strlen(id) < STORE_ID_MAX)
			deliver(pg, STORE_EVENT_FINISHED, id);
	} else if (strcmp(n->relname, "taskpoold_cancel") == 0) {
		if (strncmp(id, pg->instance, me) == 0 && id[me] == ' ' &&
		    id[me + 1] != '\0' && strlen(id + me + 1) < STORE_ID_MAX)
			deliver(pg, STORE_EVENT_CANCEL, id + me + 1);
	}
}

/*
 * The look back (see the top): what was asked while nobody listened or
 * no handler was set.  Runs on the listening connection, after its
 * LISTEN, so a cancel asked later is notified.  -1 when it failed.
 */
static int
look_back(struct pg *pg, PGconn *conn)
{
	const char *v[1] = { pg->instance };
	PGresult *res;
	bool broken;
	int i;

	deliver(pg, STORE_EVENT_QUEUED, "");
	res = pg_exec(pg, conn, "SELECT id FROM taskpoold_jobs"
		      " WHERE owner = $1 AND cancel_requested AND state <= 1"
		      " AND NOT (queued AND state = 0)", 1, v,
		      PGRES_TUPLES_OK, pg_deadline(), &broken);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
		if (strlen(PQgetvalue(res, i, 0)) < STORE_ID_MAX)
			deliver(pg, STORE_EVENT_CANCEL, PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

/* Waits ms or until stop; true when stopping. */
static bool
pause_or_stop(struct pg *pg, int ms)
{
	struct pollfd pfd = { .fd = pg->stop_fd, .events = POLLIN };

	return poll(&pfd, 1, ms) > 0;
}

/* A connection listening on the three channels, or NULL. */
static PGconn *
listen_connect(struct pg *pg)
{
	PGconn *conn;
	PGresult *res;
	bool broken;

	conn = pg_connect(pg);
	if (conn == NULL)
		return NULL;
	res = pg_exec(pg, conn, "LISTEN taskpoold_queue; "
		      "LISTEN taskpoold_cancel; LISTEN taskpoold_finished",
		      0, NULL, PGRES_COMMAND_OK, pg_deadline(), &broken);
	if (res == NULL) {
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	/* What was asked while nobody listened: look. */
	if (look_back(pg, conn) < 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Hands on what libpq holds; false when the connection failed. */
static bool
drain(struct pg *pg, PGconn *conn)
{
	PGnotify *n;

	while ((n = PQnotifies(conn)) != NULL) {
		notified(pg, n);
		PQfreemem(n);
	}
	return PQstatus(conn) != CONNECTION_BAD;
}

/* Reads notifications until the connection fails (0) or stop (1). */
static int
listen_loop(struct pg *pg, PGconn *conn)
{
	struct pollfd pfd[3];
	uint64_t count;

	for (;;) {
		/* Also what came in during a statement: before a wait. */
		if (!drain(pg, conn))
			return 0;
		pfd[0].fd = PQsocket(conn);
		pfd[0].events = POLLIN;
		pfd[1].fd = pg->stop_fd;
		pfd[1].events = POLLIN;
		pfd[2].fd = pg->wake_fd;
		pfd[2].events = POLLIN;
		if (pfd[0].fd < 0)
			return 0;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (pfd[1].revents & POLLIN)
			return 1;
		/* A handler came: the look back again, for it. */
		if ((pfd[2].revents & POLLIN) &&
		    read(pg->wake_fd, &count, sizeof(count)) > 0 &&
		    look_back(pg, conn) < 0)
			return 0;
		if (pfd[0].revents != 0 && !PQconsumeInput(conn))
			return 0;
	}
}

static void *
listener(void *arg)
{
	struct pg *pg = arg;
	PGconn *conn;
	int backoff = BACKOFF_MIN_MS;

	for (;;) {
		conn = listen_connect(pg);
		if (conn == NULL) {
			if (pause_or_stop(pg, backoff))
				return NULL;
			backoff = backoff * 2 > BACKOFF_MAX_MS ?
				BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		backoff = BACKOFF_MIN_MS;
		if (listen_loop(pg, conn) == 1) {
			PQfinish(conn);
			return NULL;
		}
		log_warnx("store: postgresql %s: the listening connection "
			  "was lost; connecting again", pg->where);
		PQfinish(conn);
	}
}

int
pg_listen_start(struct pg *pg)
{
	sigset_t all, old;
	int rc;

	/* As every thread but main: signals are main's to take. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&pg->listener, NULL, listener, pg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (rc != 0) {
		errno = rc;
		return -1;
	}
	pg->listener_started = true;
	return 0;
}

void
pg_listen_stop(struct pg *pg)
{
	uint64_t one = 1;

	if (!pg->listener_started)
		return;
	if (write(pg->stop_fd, &one, sizeof(one)) < 0)
		log_warn("store: postgresql: cannot stop the listener");
	pthread_join(pg->listener, NULL);
	pg->listener_started = false;
}
