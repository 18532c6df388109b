/*
 * postgresql.c - the store's backend on PostgreSQL (libpq): the records of
 * every instance in one database, and the shared queue (pg_queue.c) with
 * its events (pg_listen.c).
 *
 * The schema is made or migrated at open under an advisory lock, since
 * several instances start at once; taskpoold_schema_version says which
 * version the tables are, and a newer one than this build knows is
 * refused rather than written into.
 *
 * Times are CLOCK_REALTIME nanoseconds in bigint columns, as store.h has
 * them; only a lease is a timestamptz, compared with the server's now()
 * so that the instances' clocks need not agree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "store/pg.h"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS taskpoold_jobs ("
	" id text PRIMARY KEY,"
	" seq bigserial NOT NULL UNIQUE,"
	" job text NOT NULL,"
	" state smallint NOT NULL,"
	" result text,"
	" result_json boolean NOT NULL DEFAULT false,"
	" truncated boolean NOT NULL DEFAULT false,"
	" error text,"
	" params text,"
	" joined text,"
	" created bigint NOT NULL DEFAULT 0,"
	" started bigint NOT NULL DEFAULT 0,"
	" finished bigint NOT NULL DEFAULT 0,"
	" attempt integer NOT NULL DEFAULT 0,"
	" owner text,"
	" queued boolean NOT NULL DEFAULT false,"
	" lease_until timestamptz,"
	" cancel_requested boolean NOT NULL DEFAULT false);"
	/* Listing newest first, by job or by state (seq's own index: all). */
	"CREATE INDEX IF NOT EXISTS taskpoold_jobs_job_seq"
	" ON taskpoold_jobs (job, seq);"
	"CREATE INDEX IF NOT EXISTS taskpoold_jobs_state_seq"
	" ON taskpoold_jobs (state, seq);"
	/* Claiming: the unfinished rows of the queue, oldest first. */
	"CREATE INDEX IF NOT EXISTS taskpoold_jobs_claim"
	" ON taskpoold_jobs (seq) WHERE queued AND state <= 1;"
	/* Recovery at open: an instance's unfinished rows. */
	"CREATE INDEX IF NOT EXISTS taskpoold_jobs_owner"
	" ON taskpoold_jobs (owner) WHERE state <= 1;"
	/* Expiry: the finished rows by age. */
	"CREATE INDEX IF NOT EXISTS taskpoold_jobs_finished"
	" ON taskpoold_jobs (finished) WHERE state >= 2;"
	"CREATE TABLE IF NOT EXISTS taskpoold_runs ("
	" id text PRIMARY KEY,"
	" route text,"
	" wait text,"
	" done boolean NOT NULL DEFAULT false,"
	" status integer NOT NULL DEFAULT 0,"
	" answer text,"
	" jobs text NOT NULL DEFAULT '[]',"
	" idempotency_key text,"
	" fingerprint bigint NOT NULL DEFAULT 0,"
	" created bigint NOT NULL DEFAULT 0);"
	"CREATE UNIQUE INDEX IF NOT EXISTS taskpoold_runs_idempotency"
	" ON taskpoold_runs (idempotency_key)"
	" WHERE idempotency_key IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS taskpoold_runs_created"
	" ON taskpoold_runs (created);";

/* Runs sql (no parameters) on conn; 0 or -1 with a reason in err. */
static int
simple(struct pg *pg, PGconn *conn, const char *sql, ExecStatusType want,
       PGresult **out, char *err, size_t errsize)
{
	PGresult *res;
	char msg[512];
	bool broken;

	res = pg_exec(pg, conn, sql, 0, NULL, want, pg_deadline(), &broken);
	if (res == NULL) {
		snprintf(err, errsize, "postgresql %s: %s", pg->where,
			 PQerrorMessage(conn)[0] != '\0' ?
			 pg_message(PQerrorMessage(conn), msg, sizeof(msg)) :
			 "statement failed");
		return -1;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/*
 * Creates the tables (version 1) or checks their version, under the
 * advisory lock: the first instance makes them while the others wait.
 * Returns 0, or -1 with a reason in err.
 */
int
pg_schema(struct pg *pg, PGconn *conn, char *err, size_t errsize)
{
	char lock[96];
	PGresult *res = NULL;
	long version = 0;
	bool broken;
	int rc = -1;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%" PRId64 ")",
		 PG_SCHEMA_LOCK);
	if (simple(pg, conn, lock, PGRES_TUPLES_OK, NULL, err, errsize) < 0)
		return -1;
	if (simple(pg, conn, "CREATE TABLE IF NOT EXISTS "
		   "taskpoold_schema_version (version integer NOT NULL)",
		   PGRES_COMMAND_OK, NULL, err, errsize) < 0 ||
	    simple(pg, conn, "SELECT max(version) FROM "
		   "taskpoold_schema_version", PGRES_TUPLES_OK, &res, err,
		   errsize) < 0)
		goto out;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	if (version > PG_SCHEMA_VERSION || version < 0) {
		snprintf(err, errsize, "postgresql %s: schema version %ld is "
			 "newer than this taskpoold's (%d): upgrade taskpoold",
			 pg->where, version, PG_SCHEMA_VERSION);
		goto out;
	}
	if (version < 1 &&
	    (simple(pg, conn, "BEGIN", PGRES_COMMAND_OK, NULL, err,
		    errsize) < 0 ||
	     simple(pg, conn, schema_sql, PGRES_COMMAND_OK, NULL, err,
		    errsize) < 0 ||
	     simple(pg, conn, "INSERT INTO taskpoold_schema_version "
		    "VALUES (1)", PGRES_COMMAND_OK, NULL, err, errsize) < 0 ||
	     simple(pg, conn, "COMMIT", PGRES_COMMAND_OK, NULL, err,
		    errsize) < 0))
		goto out;
	/* Later versions migrate here, one step each, in turn. */
	rc = 0;
out:
	PQclear(res);
	/* Failed: no half-made schema.  Either way: the lock is given back. */
	if (rc < 0 && PQstatus(conn) == CONNECTION_OK)
		PQclear(pg_exec(pg, conn, "ROLLBACK", 0, NULL,
				PGRES_COMMAND_OK, pg_deadline(), &broken));
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%" PRId64 ")",
		 PG_SCHEMA_LOCK);
	if (PQstatus(conn) == CONNECTION_OK)
		PQclear(pg_exec(pg, conn, lock, 0, NULL, PGRES_TUPLES_OK,
				pg_deadline(), &broken));
	return rc;
}

/*
 * What an earlier life of this instance left unfinished and did not take
 * from the shared queue is failed: nobody runs it any more.  Rows of the
 * queue are the queue's: their lease lapses and someone claims them.
 */
static int
recover(struct pg *pg, PGconn *conn, char *err, size_t errsize)
{
	char now[24];
	const char *v[2] = { pg->instance, now };
	PGresult *res;
	bool broken;

	pg_now_text(now, sizeof(now));
	res = pg_exec(pg, conn,
		      "UPDATE taskpoold_jobs SET state = 3,"
		      " error = 'daemon restarted', finished = $2::bigint"
		      " WHERE owner = $1 AND NOT queued AND state <= 1",
		      2, v, PGRES_COMMAND_OK, pg_deadline(), &broken);
	if (res == NULL) {
		snprintf(err, errsize, "postgresql %s: recovery failed",
			 pg->where);
		return -1;
	}
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_info("store: postgresql %s: %s records of an earlier life "
			 "failed (daemon restarted)", pg->where,
			 PQcmdTuples(res));
	PQclear(res);
	return 0;
}

/* "host/dbname" of a url, for the log: never its password. */
static void
describe(const char *url, char *out, size_t size)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *db = NULL;

	opts = PQconninfoParse(url, NULL);
	for (o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(out, size, "%s/%s", host != NULL ? host : "(default)",
		 db != NULL ? db : "(default)");
	PQconninfoFree(opts);
}

static void pg_close(void *b);

static void *
pg_open(const struct store_options *o, char *err, size_t errsize)
{
	pthread_condattr_t ca;
	struct pg *pg;
	size_t i;

	if (o->url == NULL || o->instance == NULL ||
	    strlen(o->instance) >= PG_INSTANCE_MAX ||
	    strchr(o->instance, ' ') != NULL) {
		snprintf(err, errsize, "postgresql: needs a url and an "
			 "instance name without spaces");
		return NULL;
	}
	pg = calloc(1, sizeof(*pg));
	if (pg == NULL || (pg->url = strdup(o->url)) == NULL) {
		free(pg);
		snprintf(err, errsize, "postgresql: out of memory");
		return NULL;
	}
	pg->stop_fd = -1;
	pg->wake_fd = -1;
	describe(o->url, pg->where, sizeof(pg->where));
	snprintf(pg->instance, sizeof(pg->instance), "%s", o->instance);
	pg->lease_ns = o->lease_ns > 0 ? o->lease_ns : INT64_C(30000000000);
	pg->max_attempts = o->max_attempts > 0 ? o->max_attempts : 3;
	pthread_mutex_init(&pg->pool_lock, NULL);
	pthread_mutex_init(&pg->events_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pg->pool_free, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < PG_POOL_SIZE; i++)
		pg->slots[i].conn = NULL;

	pg->writer = pg_connect(pg);
	if (pg->writer == NULL) {
		snprintf(err, errsize, "postgresql %s: cannot connect",
			 pg->where);
		goto fail;
	}
	if (pg_schema(pg, pg->writer, err, errsize) < 0 ||
	    recover(pg, pg->writer, err, errsize) < 0)
		goto fail;
	pg->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pg->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pg->stop_fd < 0 || pg->wake_fd < 0 || pg_listen_start(pg) < 0) {
		snprintf(err, errsize, "postgresql: cannot start the "
			 "listening thread: %s", strerror(errno));
		goto fail;
	}
	log_info("store: postgresql %s as instance %s", pg->where,
		 pg->instance);
	return pg;
fail:
	pg_close(pg);
	return NULL;
}

static void
pg_close(void *b)
{
	struct pg *pg = b;
	size_t i;

	if (pg == NULL)
		return;
	pg_listen_stop(pg);
	if (pg->stop_fd >= 0)
		close(pg->stop_fd);
	if (pg->wake_fd >= 0)
		close(pg->wake_fd);
	for (i = 0; i < PG_POOL_SIZE; i++)
		if (pg->slots[i].conn != NULL)
			PQfinish(pg->slots[i].conn);
	if (pg->writer != NULL)
		PQfinish(pg->writer);
	pthread_cond_destroy(&pg->pool_free);
	pthread_mutex_destroy(&pg->pool_lock);
	pthread_mutex_destroy(&pg->events_lock);
	free(pg->url);
	free(pg);
}

const struct store_ops store_postgresql_ops = {
	.name = "postgresql",
	.open = pg_open,
	.write_batch = pg_write_batch,
	.job_get = pg_job_get,
	.run_get = pg_run_get,
	.job_list = pg_job_list,
	.expire = pg_expire,
	.enqueue = pg_enqueue,
	.claim = pg_claim,
	.renew = pg_renew,
	.finish = pg_finish,
	.cancel = pg_cancel,
	.set_events = pg_set_events,
	.close = pg_close,
};
