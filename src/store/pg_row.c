/*
 * pg_row.c - rows of the PostgreSQL backend into records.  Every value
 * read from the database is untrusted (another version of taskpoold, an
 * operator's UPDATE, a hostile server): lengths are bounded, numbers and
 * states checked, and a row that fails is refused whole (EIO) rather
 * than half-read.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

/* Copies a bounded text value into a fixed field; -1 if too long or NULL. */
static int
get_fixed(const PGresult *res, int r, int c, char *out, size_t size)
{
	int len = PQgetlength(res, r, c);

	if (PQgetisnull(res, r, c) || len < 0 || (size_t)len >= size)
		return -1;
	memcpy(out, PQgetvalue(res, r, c), (size_t)len);
	out[len] = '\0';
	return 0;
}

/* A new copy of a text value, NULL for SQL NULL.  -1 if too long. */
static int
get_text(const PGresult *res, int r, int c, char **out)
{
	int len = PQgetlength(res, r, c);

	*out = NULL;
	if (PQgetisnull(res, r, c))
		return 0;
	if (len < 0 || (size_t)len > PG_VALUE_MAX)
		return -1;
	*out = strndup(PQgetvalue(res, r, c), (size_t)len);
	return *out == NULL ? -1 : 0;
}

static int
get_bool(const PGresult *res, int r, int c, bool *out)
{
	const char *v = PQgetvalue(res, r, c);

	if (PQgetisnull(res, r, c) || (strcmp(v, "t") != 0 &&
				       strcmp(v, "f") != 0))
		return -1;
	*out = v[0] == 't';
	return 0;
}

/* A decimal integer in [min, max]; NULL reads as 0 where allowed. */
static int
get_int(const PGresult *res, int r, int c, int64_t min, int64_t max,
	int64_t *out)
{
	const char *v = PQgetvalue(res, r, c);
	char *end;
	long long n;

	*out = 0;
	if (PQgetisnull(res, r, c))
		return min <= 0 && max >= 0 ? 0 : -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int
pg_row_job(const PGresult *res, int r, struct store_job *out)
{
	int64_t state, created, started, finished, attempt, seq;

	memset(out, 0, sizeof(*out));
	if (PQnfields(res) != 14 || r >= PQntuples(res))
		goto bad;
	if (get_fixed(res, r, 0, out->id, sizeof(out->id)) < 0 ||
	    out->id[0] == '\0' ||
	    get_fixed(res, r, 1, out->job, sizeof(out->job)) < 0 ||
	    get_int(res, r, 2, STORE_QUEUED, STORE_TIMED_OUT, &state) < 0 ||
	    get_text(res, r, 3, &out->result) < 0 ||
	    get_bool(res, r, 4, &out->result_json) < 0 ||
	    get_bool(res, r, 5, &out->truncated) < 0 ||
	    get_text(res, r, 6, &out->error) < 0 ||
	    get_text(res, r, 7, &out->params) < 0 ||
	    get_text(res, r, 8, &out->joined) < 0 ||
	    get_int(res, r, 9, 0, INT64_MAX, &created) < 0 ||
	    get_int(res, r, 10, 0, INT64_MAX, &started) < 0 ||
	    get_int(res, r, 11, 0, INT64_MAX, &finished) < 0 ||
	    get_int(res, r, 12, 0, UINT32_MAX, &attempt) < 0 ||
	    get_int(res, r, 13, 1, INT64_MAX, &seq) < 0)
		goto bad;
	if (out->joined != NULL && strlen(out->joined) >= STORE_ID_MAX)
		goto bad;
	out->state = (enum store_state)state;
	out->created = created;
	out->started = started;
	out->finished = finished;
	out->attempt = (unsigned)attempt;
	out->cursor = (uint64_t)seq;
	return 0;
bad:
	store_job_clear(out);
	errno = EIO;
	return -1;
}

/* A JSON array of ids into rec->jobs. */
static int
parse_jobs(const char *text, struct store_run *rec)
{
	json_t *a, *v;
	size_t i;
	int rc = -1;

	a = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (a == NULL || !json_is_array(a) ||
	    json_array_size(a) > PG_VALUE_MAX / STORE_ID_MAX)
		goto out;
	rec->njobs = json_array_size(a);
	if (rec->njobs > 0) {
		rec->jobs = calloc(rec->njobs, sizeof(*rec->jobs));
		if (rec->jobs == NULL)
			goto out;
	}
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= STORE_ID_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			goto out;
		memcpy(rec->jobs[i], json_string_value(v),
		       json_string_length(v) + 1);
	}
	rc = 0;
out:
	json_decref(a);
	return rc;
}

int
pg_row_run(const PGresult *res, int r, struct store_run *out)
{
	int64_t status, fingerprint, created;

	memset(out, 0, sizeof(*out));
	if (PQnfields(res) != 10 || r >= PQntuples(res))
		goto bad;
	if (get_fixed(res, r, 0, out->id, sizeof(out->id)) < 0 ||
	    out->id[0] == '\0' ||
	    get_text(res, r, 1, &out->route) < 0 ||
	    get_text(res, r, 2, &out->wait) < 0 ||
	    get_bool(res, r, 3, &out->done) < 0 ||
	    get_int(res, r, 4, 0, 999, &status) < 0 ||
	    get_text(res, r, 5, &out->answer) < 0 ||
	    PQgetisnull(res, r, 6) ||
	    (size_t)PQgetlength(res, r, 6) > PG_VALUE_MAX ||
	    parse_jobs(PQgetvalue(res, r, 6), out) < 0 ||
	    get_text(res, r, 7, &out->idempotency_key) < 0 ||
	    get_int(res, r, 8, INT64_MIN, INT64_MAX, &fingerprint) < 0 ||
	    get_int(res, r, 9, 0, INT64_MAX, &created) < 0)
		goto bad;
	out->status = (unsigned)status;
	/* Kept as bigint: the same 64 bits, read back as unsigned. */
	out->fingerprint = (uint64_t)fingerprint;
	out->created = created;
	return 0;
bad:
	store_run_clear(out);
	errno = EIO;
	return -1;
}

char *
pg_jobs_json(const struct store_run *rec)
{
	json_t *a = json_array();
	char *text;
	size_t i;

	if (a == NULL)
		return NULL;
	for (i = 0; i < rec->njobs; i++)
		if (json_array_append_new(a, json_string(rec->jobs[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}
