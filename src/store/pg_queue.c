/*
 * pg_queue.c - the shared queue on PostgreSQL, the way River, Oban,
 * graphile-worker and Solid Queue keep theirs: rows of taskpoold_jobs with
 * queued = true, claimed with FOR UPDATE SKIP LOCKED (two instances never
 * take one row, and neither waits for the other), held under a lease
 * that the claimer renews, and fenced by the attempt number: a finish
 * lands only for the attempt that holds the row now.
 *
 * Each operation is one statement (a NOTIFY in it with pg_notify() is
 * sent when it commits, never before), on a pool connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "store/pg.h"

#define CLAIM_MAX 1000		/* rows of one claim, at most */
/* Lapsed rows are retired by a claim at most this often (per instance). */
#define RETIRE_EVERY_NS INT64_C(100000000)

/*
 * Runs one statement on a pool connection and returns its result (want),
 * or NULL with errno ETIMEDOUT or EIO (or EINVAL: the values refused).
 */
static PGresult *
run(struct pg *pg, const char *sql, int n, const char *const *v,
    ExecStatusType want)
{
	struct pg_slot *slot;
	PGresult *res;
	int64_t deadline = pg_deadline();
	bool broken;
	int saved;

	slot = pg_take(pg, deadline);
	if (slot == NULL)
		return NULL;
	res = pg_exec(pg, slot->conn, sql, n, v, want, deadline, &broken);
	saved = errno;
	pg_give(pg, slot, broken);
	errno = saved;
	return res;
}

int
pg_enqueue(void *b, const struct store_job *rec)
{
	struct pg *pg = b;
	char created[24];
	const char *v[4];
	PGresult *res;
	int rc;

	snprintf(created, sizeof(created), "%" PRId64, rec->created);
	v[0] = rec->id;
	v[1] = rec->job;
	v[2] = rec->params;
	v[3] = created;
	res = run(pg, "WITH ins AS (INSERT INTO taskpoold_jobs"
		  " (id, job, state, params, created, attempt, queued)"
		  " VALUES ($1, $2, 0, $3, $4::bigint, 0, true)"
		  " ON CONFLICT (id) DO NOTHING RETURNING id)"
		  " SELECT pg_notify('taskpoold_queue', id) FROM ins",
		  4, v, PGRES_TUPLES_OK);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	/* No row: the id is taken already; nothing was queued. */
	rc = PQntuples(res) == 1 ? 0 : -1;
	PQclear(res);
	if (rc < 0)
		errno = EEXIST;
	return rc;
}

/*
 * Rows of the queue that no attempt may take any more: a lapsed lease at
 * max_attempts fails, a lapsed lease of a job whose cancel was asked is
 * cancelled (its holder is gone).  Those who wait hear it finished.
 */
static int
retire(struct pg *pg)
{
	char now[24], max[16];
	const char *v[2] = { now, max };
	PGresult *res;
	int64_t mono = clock_now_ns(CLOCK_MONOTONIC), last;

	/*
	 * Once per RETIRE_EVERY_NS is enough (a lease is seconds), and it
	 * saves a claim in a busy queue one statement of two.
	 */
	last = atomic_load_explicit(&pg->retired_ns, memory_order_relaxed);
	if (last != 0 && mono - last < RETIRE_EVERY_NS)
		return 0;
	atomic_store_explicit(&pg->retired_ns, mono, memory_order_relaxed);
	pg_now_text(now, sizeof(now));
	snprintf(max, sizeof(max), "%u", pg->max_attempts);
	res = run(pg, "WITH gone AS (UPDATE taskpoold_jobs SET"
		  " state = CASE WHEN cancel_requested THEN 4 ELSE 3 END,"
		  " error = CASE WHEN cancel_requested THEN error ELSE"
		  " 'lease lapsed after ' || attempt || ' attempts' END,"
		  " finished = $1::bigint, lease_until = NULL"
		  " WHERE queued AND ((state = 1 AND lease_until < now()"
		  " AND (attempt >= $2::integer OR cancel_requested))"
		  " OR (state = 0 AND attempt >= $2::integer))"
		  " RETURNING id)"
		  " SELECT count(pg_notify('taskpoold_finished', id)) FROM gone",
		  2, v, PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
pg_claim(void *b, size_t max, struct store_job *out)
{
	struct pg *pg = b;
	char now[24], lease[24], attempts[16], limit[24];
	const char *v[5];
	PGresult *res;
	int i, n;

	if (max == 0)
		return 0;
	if (max > CLAIM_MAX)
		max = CLAIM_MAX;
	if (retire(pg) < 0) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	pg_now_text(now, sizeof(now));
	snprintf(lease, sizeof(lease), "%" PRId64, pg->lease_ns / 1000);
	snprintf(attempts, sizeof(attempts), "%u", pg->max_attempts);
	snprintf(limit, sizeof(limit), "%zu", max);
	v[0] = pg->instance;
	v[1] = lease;
	v[2] = now;
	v[3] = attempts;
	v[4] = limit;
	res = run(pg, "UPDATE taskpoold_jobs SET state = 1, owner = $1,"
		  " attempt = attempt + 1,"
		  " lease_until = now() + $2::bigint * interval '1 microsecond',"
		  " started = $3::bigint, finished = 0, result = NULL,"
		  " error = NULL"
		  " WHERE id IN (SELECT id FROM taskpoold_jobs"
		  " WHERE queued AND (state = 0 OR (state = 1"
		  " AND lease_until < now())) AND NOT cancel_requested"
		  " AND attempt < $4::integer"
		  " ORDER BY seq FOR UPDATE SKIP LOCKED LIMIT $5::bigint)"
		  " RETURNING " PG_JOB_COLUMNS, 5, v, PGRES_TUPLES_OK);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	n = PQntuples(res);
	if ((size_t)n > max)
		n = (int)max;	/* never past out[]: the server is untrusted */
	for (i = 0; i < n; i++)
		if (pg_row_job(res, i, &out[i]) < 0) {
			/*
			 * Claimed but unreadable: its lease lapses and it is
			 * retried, up to max_attempts, then failed.
			 */
			while (i-- > 0)
				store_job_clear(&out[i]);
			PQclear(res);
			errno = EIO;
			return -1;
		}
	PQclear(res);
	return n;
}

/*
 * ids as a text[] literal, each element quoted: an id "NULL" stays text.
 * A new string, or NULL when out of memory.
 */
static char *
id_array(const char (*ids)[STORE_ID_MAX], size_t n)
{
	char *out = malloc(n * (2 * STORE_ID_MAX + 3) + 3), *p;
	size_t i, k;

	if (out == NULL)
		return NULL;
	p = out;
	*p++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		for (k = 0; k < STORE_ID_MAX - 1 && ids[i][k] != '\0'; k++) {
			if (ids[i][k] == '"' || ids[i][k] == '\\')
				*p++ = '\\';
			*p++ = ids[i][k];
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

int
pg_renew(void *b, const char (*ids)[STORE_ID_MAX], size_t n)
{
	struct pg *pg = b;
	char lease[24], *array;
	const char *v[3] = { pg->instance, lease, NULL };
	PGresult *res;

	if (n == 0)
		return 0;
	if ((array = id_array(ids, n)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	v[2] = array;
	snprintf(lease, sizeof(lease), "%" PRId64, pg->lease_ns / 1000);
	/* Only what the runner holds: no lease of a row it does not run. */
	res = run(pg, "UPDATE taskpoold_jobs SET lease_until = now() +"
		  " $2::bigint * interval '1 microsecond'"
		  " WHERE owner = $1 AND queued AND state = 1"
		  " AND id = ANY ($3::text[])", 3, v, PGRES_COMMAND_OK);
	free(array);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	PQclear(res);
	return 0;
}

int
pg_finish(void *b, const struct store_job *rec)
{
	struct pg *pg = b;
	char state[8], attempt[16], finished[24];
	const char *v[9];
	PGresult *res;
	int rc;

	if (rec->state < STORE_SUCCEEDED || rec->state > STORE_TIMED_OUT) {
		errno = EINVAL;
		return -1;
	}
	snprintf(state, sizeof(state), "%d", (int)rec->state);
	snprintf(attempt, sizeof(attempt), "%u", rec->attempt);
	snprintf(finished, sizeof(finished), "%" PRId64, rec->finished);
	v[0] = rec->id;
	v[1] = attempt;
	v[2] = pg->instance;
	v[3] = state;
	v[4] = rec->result;
	v[5] = rec->result_json ? "t" : "f";
	v[6] = rec->truncated ? "t" : "f";
	v[7] = rec->error;
	v[8] = finished;
	res = run(pg, "WITH done AS (UPDATE taskpoold_jobs SET"
		  " state = $4::smallint, result = $5,"
		  " result_json = $6::boolean, truncated = $7::boolean,"
		  " error = $8, finished = $9::bigint, lease_until = NULL"
		  " WHERE id = $1 AND attempt = $2::integer AND owner = $3"
		  " AND queued AND state = 1 RETURNING id)"
		  " SELECT pg_notify('taskpoold_finished', id) FROM done",
		  9, v, PGRES_TUPLES_OK);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	/* No row: another attempt holds it now (fenced), or it is gone. */
	rc = PQntuples(res) == 1 ? 0 : 1;
	PQclear(res);
	return rc;
}

int
pg_cancel(void *b, const char *id)
{
	struct pg *pg = b;
	char now[24];
	const char *v[2] = { id, now };
	PGresult *res;
	int rc;

	/*
	 * A row still waiting in the queue is nobody's: cancelled here.  A
	 * row that runs (claimed, or run where its client is) is its
	 * owner's to stop: only the owner acts on the notification.
	 */
	pg_now_text(now, sizeof(now));
	res = run(pg, "WITH q AS (UPDATE taskpoold_jobs SET state = 4,"
		  " finished = $2::bigint, lease_until = NULL"
		  " WHERE id = $1 AND queued AND state = 0 RETURNING id),"
		  " r AS (UPDATE taskpoold_jobs SET cancel_requested = true"
		  " WHERE id = $1 AND state <= 1 AND NOT (queued AND state = 0)"
		  " RETURNING id, owner),"
		  " n1 AS (SELECT pg_notify('taskpoold_finished', id) FROM q),"
		  " n2 AS (SELECT pg_notify('taskpoold_cancel',"
		  " coalesce(owner, '') || ' ' || id) FROM r)"
		  " SELECT (SELECT count(*) FROM n1) + (SELECT count(*) FROM n2)",
		  2, v, PGRES_TUPLES_OK);
	if (res == NULL) {
		errno = errno == ETIMEDOUT ? ETIMEDOUT : EIO;
		return -1;
	}
	rc = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0 ?
		0 : 1;
	PQclear(res);
	return rc;
}
