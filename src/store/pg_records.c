/*
 * pg_records.c - the reads of the PostgreSQL backend's records (a job, a
 * run, a page of the listing) and their expiry, on pool connections.
 * The writer's batches are in pg_batch.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

#define LIST_MAX 10000		/* one page, at most */

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
