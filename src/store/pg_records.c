/*
 * pg_records.c - the records of the PostgreSQL backend: the writer's
 * batches of UPSERTs, the reads, expiry.
 *
 * A batch is one transaction.  If it fails for its values' sake (text
 * that is not UTF-8, an idempotency key another instance took first), no
 * retry would ever pass it, and it would hold every later change back;
 * so it is done again with a savepoint around each change, and those
 * that fail are left out, logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/pg.h"

#define LIST_MAX 10000		/* one page, at most */

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

/* Writes one change on conn.  0 or -1 as pg_exec(). */
static int
write_change(struct pg *pg, PGconn *conn, const struct store_change *c,
	     bool *broken)
{
	char num[6][24], *jobs = NULL;
	const char *v[14];
	PGresult *res;

	if (!c->is_run) {
		const struct store_job *j = &c->u.job;

		if ((unsigned)j->state > STORE_TIMED_OUT) {
			errno = EINVAL;
			return -1;
		}
		snprintf(num[0], sizeof(num[0]), "%d", (int)j->state);
		snprintf(num[1], sizeof(num[1]), "%" PRId64, j->created);
		snprintf(num[2], sizeof(num[2]), "%" PRId64, j->started);
		snprintf(num[3], sizeof(num[3]), "%" PRId64, j->finished);
		snprintf(num[4], sizeof(num[4]), "%u", j->attempt);
		v[0] = j->id;
		v[1] = j->job;
		v[2] = num[0];
		v[3] = j->result;
		v[4] = j->result_json ? "t" : "f";
		v[5] = j->truncated ? "t" : "f";
		v[6] = j->error;
		v[7] = j->params;
		v[8] = j->joined;
		v[9] = num[1];
		v[10] = num[2];
		v[11] = num[3];
		v[12] = num[4];
		v[13] = pg->instance;
		res = pg_exec(pg, conn, job_upsert, 14, v, PGRES_COMMAND_OK,
			      pg_deadline(), broken);
	} else {
		const struct store_run *r = &c->u.run;

		jobs = pg_jobs_json(r);
		if (jobs == NULL) {
			errno = EINVAL;
			return -1;
		}
		snprintf(num[0], sizeof(num[0]), "%u", r->status);
		/* The 64 bits as a bigint: pg_row_run() turns them back. */
		snprintf(num[1], sizeof(num[1]), "%" PRId64,
			 (int64_t)r->fingerprint);
		snprintf(num[2], sizeof(num[2]), "%" PRId64, r->created);
		v[0] = r->id;
		v[1] = r->route;
		v[2] = r->wait;
		v[3] = r->done ? "t" : "f";
		v[4] = num[0];
		v[5] = r->answer;
		v[6] = jobs;
		v[7] = r->idempotency_key;
		v[8] = num[1];
		v[9] = num[2];
		res = pg_exec(pg, conn, run_upsert, 10, v, PGRES_COMMAND_OK,
			      pg_deadline(), broken);
		free(jobs);
	}
	if (res == NULL)
		return -1;
	PQclear(res);
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
 * The batch in one transaction; careful: each change under a savepoint,
 * and those refused for their values left out.  0, or -1 with errno
 * EINVAL (not careful: a value was refused) or EIO, ETIMEDOUT.
 */
static int
write_all(struct pg *pg, const struct store_change *c, size_t n,
	  bool careful, bool *broken)
{
	size_t i;

	if (command(pg, pg->writer, "BEGIN", broken) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (careful && command(pg, pg->writer, "SAVEPOINT change",
				       broken) < 0)
			goto fail;
		if (write_change(pg, pg->writer, &c[i], broken) == 0) {
			if (careful && command(pg, pg->writer,
					       "RELEASE SAVEPOINT change",
					       broken) < 0)
				goto fail;
			continue;
		}
		if (!careful || errno != EINVAL)
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
	rc = write_all(pg, c, n, false, &broken);
	if (rc < 0 && errno == EINVAL && !broken)
		rc = write_all(pg, c, n, true, &broken);
	if (broken) {
		PQfinish(pg->writer);
		pg->writer = NULL;
	}
	if (rc < 0 && errno != ETIMEDOUT)
		errno = EIO;
	return rc;
}

/*
 * Runs a read on a pool connection.  Returns its result, or NULL with
 * errno ETIMEDOUT or EIO.
 */
static PGresult *
query(struct pg *pg, const char *sql, int n, const char *const *v)
{
	struct pg_slot *slot;
	PGresult *res;
	int64_t deadline = pg_deadline();
	bool broken;
	int saved;

	slot = pg_take(pg, deadline);
	if (slot == NULL)
		return NULL;
	res = pg_exec(pg, slot->conn, sql, n, v, PGRES_TUPLES_OK, deadline,
		      &broken);
	saved = errno;
	pg_give(pg, slot, broken);
	if (res == NULL)
		errno = saved == ETIMEDOUT ? ETIMEDOUT : EIO;
	return res;
}

int
pg_job_get(void *b, const char *id, struct store_job *out)
{
	const char *v[1] = { id };
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	res = query(b, "SELECT " PG_JOB_COLUMNS " FROM taskpoold_jobs"
		    " WHERE id = $1", 1, v);
	if (res == NULL)
		return -1;
	rc = PQntuples(res) == 0 ? 1 : pg_row_job(res, 0, out);
	PQclear(res);
	return rc;
}

int
pg_run_get(void *b, const char *id, struct store_run *out)
{
	const char *v[1] = { id };
	PGresult *res;
	int rc;

	memset(out, 0, sizeof(*out));
	res = query(b, "SELECT " PG_RUN_COLUMNS " FROM taskpoold_runs"
		    " WHERE id = $1", 1, v);
	if (res == NULL)
		return -1;
	rc = PQntuples(res) == 0 ? 1 : pg_row_run(res, 0, out);
	PQclear(res);
	return rc;
}

/* The states of a filter as a smallint[] literal, or NULL for any. */
static const char *
states_array(unsigned states, char *buf, size_t size)
{
	size_t len = 0;
	int s;

	if (states == 0)
		return NULL;
	buf[len++] = '{';
	for (s = STORE_QUEUED; s <= STORE_TIMED_OUT; s++)
		if ((states & (1u << s)) && len + 4 < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%d",
						len > 1 ? "," : "", s);
	snprintf(buf + len, size - len, "}");
	return buf;
}

int
pg_job_list(void *b, const struct store_filter *f, uint64_t before,
	    size_t limit, struct store_job *out, uint64_t *next)
{
	char cursor[24], lim[24], states[32];
	const char *v[4];
	PGresult *res;
	int i, n;

	*next = 0;
	if (limit == 0)
		return 0;
	if (limit > LIST_MAX)
		limit = LIST_MAX;
	if (before > INT64_MAX)
		before = INT64_MAX;
	snprintf(cursor, sizeof(cursor), "%" PRIu64, before);
	/* One more than asked: whether there is a next page. */
	snprintf(lim, sizeof(lim), "%zu", limit + 1);
	v[0] = cursor;
	v[1] = f != NULL ? f->job : NULL;
	v[2] = states_array(f != NULL ? f->states : 0, states,
			    sizeof(states));
	v[3] = lim;
	res = query(b, "SELECT " PG_JOB_COLUMNS " FROM taskpoold_jobs"
		    " WHERE ($1::bigint = 0 OR seq < $1::bigint)"
		    " AND ($2::text IS NULL OR job = $2::text)"
		    " AND ($3::smallint[] IS NULL OR state = ANY($3::smallint[]))"
		    " ORDER BY seq DESC LIMIT $4::bigint", 4, v);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if ((size_t)n > limit + 1)
		n = 0;		/* a server that ignores LIMIT: refused */
	for (i = 0; i < n && (size_t)i < limit; i++)
		if (pg_row_job(res, i, &out[i]) < 0) {
			while (i-- > 0)
				store_job_clear(&out[i]);
			PQclear(res);
			errno = EIO;
			return -1;
		}
	if ((size_t)n > limit)
		*next = out[i - 1].cursor;
	PQclear(res);
	return i;
}

int
pg_expire(void *b, int64_t before_ns)
{
	struct pg *pg = b;
	struct pg_slot *slot;
	char before[24];
	const char *v[1] = { before };
	PGresult *res = NULL;
	int64_t deadline = pg_deadline();
	bool broken = false;

	snprintf(before, sizeof(before), "%" PRId64, before_ns);
	slot = pg_take(pg, deadline);
	if (slot == NULL)
		return -1;
	res = pg_exec(pg, slot->conn, "DELETE FROM taskpoold_jobs"
		      " WHERE state >= 2 AND finished < $1::bigint", 1, v,
		      PGRES_COMMAND_OK, deadline, &broken);
	if (res != NULL) {
		PQclear(res);
		res = pg_exec(pg, slot->conn, "DELETE FROM taskpoold_runs"
			      " WHERE done AND created < $1::bigint", 1, v,
			      PGRES_COMMAND_OK, deadline, &broken);
	}
	pg_give(pg, slot, broken);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	PQclear(res);
	return 0;
}
