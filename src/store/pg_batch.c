/*
 * pg_batch.c - the writer's batches on the PostgreSQL backend: UPSERTs of
 * job and run records on the writer's own connection, in one
 * transaction.
 *
 * A batch is sent as one libpq pipeline: every statement goes out before
 * the first answer is read, and the Sync at its end commits them all as
 * one implicit transaction (or none, on any error), so a batch of 1,000
 * costs about one round trip, not 1,000.
 *
 * If it fails for its values' sake (text that is not UTF-8, an
 * idempotency key another instance took first), no retry would ever pass
 * it, and it would hold every later change back; so it is done again,
 * one statement at a time, with a savepoint around each change, and
 * those that fail are left out, logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/pg.h"

/*
 * A row of the shared queue is its claimer's: a change from the writer
 * lands there only while this instance holds it at that attempt and it
 * is not finished (store_finish() may have been first), so a late write
 * of an attempt that lost its lease cannot undo the next one's.
 */
static const char job_upsert[] =
	"INSERT INTO taskpoold_jobs AS t (id, job, state, result,"
	" result_json, truncated, error, params, joined, created, started,"
	" finished, attempt, owner)"
	" VALUES ($1, $2, $3::smallint, $4, $5::boolean, $6::boolean, $7,"
	" $8, $9, $10::bigint, $11::bigint, $12::bigint, $13::integer, $14)"
	" ON CONFLICT (id) DO UPDATE SET job = EXCLUDED.job,"
	" state = EXCLUDED.state, result = EXCLUDED.result,"
	" result_json = EXCLUDED.result_json,"
	" truncated = EXCLUDED.truncated, error = EXCLUDED.error,"
	" params = EXCLUDED.params, joined = EXCLUDED.joined,"
	" created = EXCLUDED.created, started = EXCLUDED.started,"
	" finished = EXCLUDED.finished, attempt = EXCLUDED.attempt"
	" WHERE NOT t.queued OR (t.owner = EXCLUDED.owner"
	" AND t.attempt = EXCLUDED.attempt AND t.state <= 1)";

static const char run_upsert[] =
	"INSERT INTO taskpoold_runs AS r (id, route, wait, done, status,"
	" answer, jobs, idempotency_key, fingerprint, created)"
	" VALUES ($1, $2, $3, $4::boolean, $5::integer, $6, $7, $8,"
	" $9::bigint, $10::bigint)"
	" ON CONFLICT (id) DO UPDATE SET route = EXCLUDED.route,"
	" wait = EXCLUDED.wait, done = EXCLUDED.done,"
	" status = EXCLUDED.status, answer = EXCLUDED.answer,"
	" jobs = EXCLUDED.jobs, idempotency_key = EXCLUDED.idempotency_key,"
	" fingerprint = EXCLUDED.fingerprint, created = EXCLUDED.created";

/* One change's statement and its parameters, as text. */
struct change_sql {
	const char *sql;
	int n;
	const char *v[14];
	char num[5][24];
	char *jobs;		/* a run's jobs as JSON: freed by sql_free() */
};

/* Fills q for c; -1 (EINVAL) for a record no statement can hold. */
static int
change_sql(struct pg *pg, const struct store_change *c, struct change_sql *q)
{
	q->jobs = NULL;
	if (!c->is_run) {
		const struct store_job *j = &c->u.job;

		if ((unsigned)j->state > STORE_TIMED_OUT) {
			errno = EINVAL;
			return -1;
		}
		snprintf(q->num[0], sizeof(q->num[0]), "%d", (int)j->state);
		snprintf(q->num[1], sizeof(q->num[1]), "%" PRId64, j->created);
		snprintf(q->num[2], sizeof(q->num[2]), "%" PRId64, j->started);
		snprintf(q->num[3], sizeof(q->num[3]), "%" PRId64,
			 j->finished);
		snprintf(q->num[4], sizeof(q->num[4]), "%u", j->attempt);
		q->sql = job_upsert;
		q->n = 14;
		q->v[0] = j->id;
		q->v[1] = j->job;
		q->v[2] = q->num[0];
		q->v[3] = j->result;
		q->v[4] = j->result_json ? "t" : "f";
		q->v[5] = j->truncated ? "t" : "f";
		q->v[6] = j->error;
		q->v[7] = j->params;
		q->v[8] = j->joined;
		q->v[9] = q->num[1];
		q->v[10] = q->num[2];
		q->v[11] = q->num[3];
		q->v[12] = q->num[4];
		q->v[13] = pg->instance;
		return 0;
	}
	const struct store_run *r = &c->u.run;

	q->jobs = pg_jobs_json(r);
	if (q->jobs == NULL) {
		errno = EINVAL;
		return -1;
	}
	snprintf(q->num[0], sizeof(q->num[0]), "%u", r->status);
	/* The 64 bits as a bigint: pg_row_run() turns them back. */
	snprintf(q->num[1], sizeof(q->num[1]), "%" PRId64,
		 (int64_t)r->fingerprint);
	snprintf(q->num[2], sizeof(q->num[2]), "%" PRId64, r->created);
	q->sql = run_upsert;
	q->n = 10;
	q->v[0] = r->id;
	q->v[1] = r->route;
	q->v[2] = r->wait;
	q->v[3] = r->done ? "t" : "f";
	q->v[4] = q->num[0];
	q->v[5] = r->answer;
	q->v[6] = q->jobs;
	q->v[7] = r->idempotency_key;
	q->v[8] = q->num[1];
	q->v[9] = q->num[2];
	return 0;
}

/* Writes one change on conn.  0 or -1 as pg_exec(). */
static int
write_change(struct pg *pg, PGconn *conn, const struct store_change *c,
	     bool *broken)
{
	struct change_sql q;
	PGresult *res;

	if (change_sql(pg, c, &q) < 0)
		return -1;
	res = pg_exec(pg, conn, q.sql, q.n, q.v, PGRES_COMMAND_OK,
		      pg_deadline(), broken);
	free(q.jobs);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * Reads the answers of a pipeline of n statements and its Sync.  Each
 * answer must come within STORE_TIMEOUT_NS of the one before it.
 * Returns 0 when all were done, or -1 with errno EINVAL (a value refused:
 * nothing was committed), EIO or ETIMEDOUT (*broken).
 */
static int
read_pipeline(struct pg *pg, PGconn *conn, size_t n, bool *broken)
{
	PGresult *res;
	char msg[512];
	size_t i;
	int err = 0;

	for (i = 0; i <= n; i++) {
		if (pg_wait(conn, pg_deadline()) < 0 ||
		    (res = PQgetResult(conn)) == NULL) {
			*broken = true;
			pg_warn(pg, "a batch: %s", errno == ETIMEDOUT ?
				"no answer in time" : pg_message(
				PQerrorMessage(conn), msg, sizeof(msg)));
			return -1;
		}
		if (i == n) {
			/* The Sync's: committed, or rolled back on error. */
			if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
				*broken = true;
			PQclear(res);
			break;
		}
		if (PQresultStatus(res) == PGRES_FATAL_ERROR && err == 0) {
			const char *st = PQresultErrorField(res,
							    PG_DIAG_SQLSTATE);

			err = st != NULL && (strncmp(st, "22", 2) == 0 ||
					     strncmp(st, "23", 2) == 0) ?
				EINVAL : EIO;
			if (err == EIO)
				pg_warn(pg, "%s", pg_message(
					PQresultErrorMessage(res), msg,
					sizeof(msg)));
		}
		PQclear(res);
		/* Each statement's answers end with a NULL. */
		if (pg_wait(conn, pg_deadline()) < 0 ||
		    (res = PQgetResult(conn)) != NULL) {
			PQclear(res);
			*broken = true;
			errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
			return -1;
		}
	}
	if (*broken) {
		errno = EIO;
		return -1;
	}
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/*
 * The batch as one pipeline, one implicit transaction.  0, or -1 with
 * errno EINVAL (a value refused: nothing committed) or EIO, ETIMEDOUT.
 */
static int
write_pipelined(struct pg *pg, const struct store_change *c, size_t n,
		bool *broken)
{
	PGconn *conn = pg->writer;
	struct change_sql q;
	size_t i;
	int ok;

	for (i = 0; i < n; i++)
		if (change_sql(pg, &c[i], &q) < 0)
			return -1;	/* EINVAL: the careful way */
		else
			free(q.jobs);
	if (!PQenterPipelineMode(conn)) {
		*broken = true;
		errno = EIO;
		return -1;
	}
	for (i = 0; i < n; i++) {
		change_sql(pg, &c[i], &q);
		ok = PQsendQueryParams(conn, q.sql, q.n, NULL, q.v, NULL,
				       NULL, 0);
		free(q.jobs);
		if (!ok) {
			/* Dropped unsynced: nothing is committed. */
			*broken = true;
			errno = EIO;
			return -1;
		}
	}
	if (!PQpipelineSync(conn)) {
		*broken = true;
		errno = EIO;
		return -1;
	}
	if (read_pipeline(pg, conn, n, broken) < 0) {
		/* EINVAL: rolled back whole, the connection still good. */
		if (!*broken && !PQexitPipelineMode(conn)) {
			*broken = true;
			errno = EIO;
		}
		return -1;
	}
	/* Committed; a connection that cannot leave the mode is dropped. */
	if (!PQexitPipelineMode(conn))
		*broken = true;
	return 0;
}

/* A statement without parameters; 0 or -1 as pg_exec(). */
static int
command(struct pg *pg, PGconn *conn, const char *sql, bool *broken)
{
	PGresult *res;

	res = pg_exec(pg, conn, sql, 0, NULL, PGRES_COMMAND_OK,
		      pg_deadline(), broken);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/*
 * The batch in one transaction, one statement at a time, each change
 * under a savepoint: those refused for their values are left out.  0, or
 * -1 with errno EIO or ETIMEDOUT.
 */
static int
write_careful(struct pg *pg, const struct store_change *c, size_t n,
	      bool *broken)
{
	size_t i;

	if (command(pg, pg->writer, "BEGIN", broken) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (command(pg, pg->writer, "SAVEPOINT change", broken) < 0)
			goto fail;
		if (write_change(pg, pg->writer, &c[i], broken) == 0) {
			if (command(pg, pg->writer, "RELEASE SAVEPOINT change",
				    broken) < 0)
				goto fail;
			continue;
		}
		if (errno != EINVAL)
			goto fail;
		log_warnx("store: postgresql %s: the record of %s %s is "
			  "refused, left out", pg->where,
			  c[i].is_run ? "run" : "job",
			  c[i].is_run ? c[i].u.run.id : c[i].u.job.id);
		if (command(pg, pg->writer, "ROLLBACK TO SAVEPOINT change",
			    broken) < 0)
			goto fail;
	}
	if (command(pg, pg->writer, "COMMIT", broken) < 0)
		return -1;
	return 0;
fail:
	if (!*broken) {
		int saved = errno;
		bool ignored;

		command(pg, pg->writer, "ROLLBACK", &ignored);
		errno = saved;
	}
	return -1;
}

int
pg_write_batch(void *b, const struct store_change *c, size_t n)
{
	struct pg *pg = b;
	bool broken = false;
	int rc;

	if (pg->writer != NULL && !pg_alive(pg->writer)) {
		PQfinish(pg->writer);
		pg->writer = NULL;
	}
	if (pg->writer == NULL && (pg->writer = pg_connect(pg)) == NULL) {
		errno = EIO;
		return -1;
	}
	rc = write_pipelined(pg, c, n, &broken);
	if (rc < 0 && errno == EINVAL && !broken)
		rc = write_careful(pg, c, n, &broken);
	if (broken) {
		PQfinish(pg->writer);
		pg->writer = NULL;
	}
	if (rc < 0 && errno != ETIMEDOUT)
		errno = EIO;
	return rc;
}

