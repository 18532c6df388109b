/*
 * check_store_pg.c - the store's postgresql backend, through
 * store_postgresql_ops directly, against a real PostgreSQL: records
 * (every field, last write wins, listing, expiry, recovery), the shared
 * queue (claims by two instances at once, leases, fencing, attempts,
 * cancel), its events (LISTEN/NOTIFY) and an outage.
 *
 * Run by tests/unit/check_store_pg.sh in a throwaway cluster
 * (tests/pg-cluster): TASKPOOLD_PG_URL names it, and TASKPOOLD_PG_CLUSTER
 * with TASKPOOLD_PG_DIR stop and start it.  Each test starts from empty
 * tables.  Two "instances" are two backend handles with different
 * instance names on the same database.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "store/backend.h"
#include "store/store.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define QUEUE_JOBS 1000
#define EVENTS_MAX 4096
/*
 * How long a test waits for what must come (an event, a lapsed lease):
 * generous, for a loaded machine, and the wait ends as soon as it comes.
 */
#define WAIT_NS (15 * NS_PER_S)
/* A call's bound while the database is down: its timeout and a margin. */
#define BOUND_NS (STORE_TIMEOUT_NS + 500 * NS_PER_MS)

static const struct store_ops *ops = &store_postgresql_ops;
static const char *url;

/* ---- fixtures and helpers ------------------------------------------------ */

/* Runs sql on a connection of the test's own (superuser-free: the owner). */
static void
sql(const char *text)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;

	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, text);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
		      PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", text,
		      PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static void
setup(void)
{
	url = getenv("TASKPOOLD_PG_URL");
	ck_assert_msg(url != NULL, "run me through tests/pg-cluster");
	sql("DROP TABLE IF EXISTS taskpoold_jobs, taskpoold_runs, "
	    "taskpoold_schema_version");
}

static void *
open_as(const char *instance, int64_t lease_ns, unsigned max_attempts)
{
	struct store_options o = {
		.backend = STORE_POSTGRESQL, .url = url, .instance = instance,
		.lease_ns = lease_ns, .max_attempts = max_attempts,
		.retain_ns = 3600 * NS_PER_S,
	};
	char err[256] = "";
	void *b = ops->open(&o, err, sizeof(err));

	ck_assert_msg(b != NULL, "open: %s", err);
	return b;
}

static struct store_job
job_rec(const char *id, enum store_state state, int64_t created)
{
	struct store_job j;

	memset(&j, 0, sizeof(j));
	snprintf(j.id, sizeof(j.id), "%s", id);
	snprintf(j.job, sizeof(j.job), "%s", "x");
	j.state = state;
	j.created = created;
	return j;
}

static void
write_job(void *b, const struct store_job *j)
{
	struct store_change c = { .is_run = false };

	c.u.job = *j;
	ck_assert_int_eq(ops->write_batch(b, &c, 1), 0);
}

static int
get_state(void *b, const char *id)
{
	struct store_job j;
	int state;

	ck_assert_int_eq(ops->job_get(b, id, &j), 0);
	state = (int)j.state;
	store_job_clear(&j);
	return state;
}

/* Events, as a handler records them, and waits for one by a deadline. */
struct events {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t n;
	enum store_event ev[EVENTS_MAX];
	char id[EVENTS_MAX][STORE_ID_MAX];
};

static void
events_init(struct events *e)
{
	pthread_condattr_t ca;

	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void
on_event(enum store_event ev, const char *id, void *arg)
{
	struct events *e = arg;

	pthread_mutex_lock(&e->lock);
	if (e->n < EVENTS_MAX) {
		e->ev[e->n] = ev;
		snprintf(e->id[e->n], STORE_ID_MAX, "%s", id);
		e->n++;
	}
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static bool
has_event(struct events *e, enum store_event ev, const char *id)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->ev[i] == ev && strcmp(e->id[i], id) == 0)
			return true;
	return false;
}

/* Waits for (ev, id) until timeout_ns; true when it came. */
static bool
wait_event(struct events *e, enum store_event ev, const char *id,
	   int64_t timeout_ns)
{
	int64_t deadline = clock_now_ns(CLOCK_MONOTONIC) + timeout_ns;
	struct timespec ts = { .tv_sec = deadline / NS_PER_S,
			       .tv_nsec = deadline % NS_PER_S };
	bool found;

	pthread_mutex_lock(&e->lock);
	while (!(found = has_event(e, ev, id)))
		if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) != 0)
			break;
	found = has_event(e, ev, id);
	pthread_mutex_unlock(&e->lock);
	return found;
}

static void
enqueue(void *b, const char *id)
{
	struct store_job j = job_rec(id, STORE_QUEUED,
				     clock_now_ns(CLOCK_REALTIME));

	j.params = "{\"n\":1}";
	ck_assert_int_eq(ops->enqueue(b, &j), 0);
}

/* Claims until one job comes or timeout_ns passes: the count claimed. */
static int
claim_within(void *b, struct store_job *out, int64_t timeout_ns)
{
	int64_t deadline = clock_now_ns(CLOCK_MONOTONIC) + timeout_ns;
	struct timespec pause = { 0, 10 * NS_PER_MS };
	int n;

	do {
		n = ops->claim(b, 1, out);
		ck_assert_int_ge(n, 0);
		if (n > 0)
			return n;
		/* Polling a lease by the clock: nothing to wait on. */
		nanosleep(&pause, NULL);
	} while (clock_now_ns(CLOCK_MONOTONIC) < deadline);
	return 0;
}

/* ---- records ------------------------------------------------------------- */

START_TEST(test_batch_round_trip_keeps_every_field)
{
	void *b = open_as("a", 30 * NS_PER_S, 3);
	struct store_change c[2];
	struct store_job got;
	struct store_run run;
	char jobs[2][STORE_ID_MAX] = { "j1", "j2 with \"quotes\"" };

	memset(c, 0, sizeof(c));
	c[0].u.job = job_rec("j1", STORE_SUCCEEDED, 111);
	c[0].u.job.result = "{\"sum\":3}";
	c[0].u.job.result_json = true;
	c[0].u.job.truncated = true;
	c[0].u.job.error = "an error, é";
	c[0].u.job.params = "{\"token\":\"***\"}";
	c[0].u.job.joined = "j0";
	c[0].u.job.started = 222;
	c[0].u.job.finished = 333;
	c[0].u.job.attempt = 0;
	c[1].is_run = true;
	snprintf(c[1].u.run.id, STORE_ID_MAX, "r1");
	c[1].u.run.route = "GET /tasks";
	c[1].u.run.wait = "all";
	c[1].u.run.done = true;
	c[1].u.run.status = 207;
	c[1].u.run.answer = "{\"jobs\":[]}";
	c[1].u.run.njobs = 2;
	c[1].u.run.jobs = jobs;
	c[1].u.run.idempotency_key = "key-1";
	c[1].u.run.fingerprint = UINT64_C(0xfedcba9876543210);
	c[1].u.run.created = 444;
	ck_assert_int_eq(ops->write_batch(b, c, 2), 0);

	ck_assert_int_eq(ops->job_get(b, "j1", &got), 0);
	ck_assert_str_eq(got.id, "j1");
	ck_assert_str_eq(got.job, "x");
	ck_assert_int_eq(got.state, STORE_SUCCEEDED);
	ck_assert_str_eq(got.result, "{\"sum\":3}");
	ck_assert(got.result_json && got.truncated);
	ck_assert_str_eq(got.error, "an error, é");
	ck_assert_str_eq(got.params, "{\"token\":\"***\"}");
	ck_assert_str_eq(got.joined, "j0");
	ck_assert_int_eq(got.created, 111);
	ck_assert_int_eq(got.started, 222);
	ck_assert_int_eq(got.finished, 333);
	ck_assert_uint_eq(got.attempt, 0);
	ck_assert_uint_gt(got.cursor, 0);
	store_job_clear(&got);

	ck_assert_int_eq(ops->run_get(b, "r1", &run), 0);
	ck_assert_str_eq(run.id, "r1");
	ck_assert_str_eq(run.route, "GET /tasks");
	ck_assert_str_eq(run.wait, "all");
	ck_assert(run.done);
	ck_assert_uint_eq(run.status, 207);
	ck_assert_str_eq(run.answer, "{\"jobs\":[]}");
	ck_assert_uint_eq(run.njobs, 2);
	ck_assert_str_eq(run.jobs[0], "j1");
	ck_assert_str_eq(run.jobs[1], "j2 with \"quotes\"");
	ck_assert_str_eq(run.idempotency_key, "key-1");
	ck_assert(run.fingerprint == UINT64_C(0xfedcba9876543210));
	ck_assert_int_eq(run.created, 444);
	store_run_clear(&run);

	/* NULLs stay NULL; unknown ids are 1. */
	write_job(b, &(struct store_job){ .id = "j2", .job = "y" });
	ck_assert_int_eq(ops->job_get(b, "j2", &got), 0);
	ck_assert_ptr_null(got.result);
	ck_assert_ptr_null(got.error);
	ck_assert_ptr_null(got.params);
	ck_assert_ptr_null(got.joined);
	store_job_clear(&got);
	ck_assert_int_eq(ops->job_get(b, "nope", &got), 1);
	ck_assert_int_eq(ops->run_get(b, "nope", &run), 1);
	ops->close(b);
}
END_TEST

START_TEST(test_last_write_wins_and_keeps_the_cursor)
{
	void *b = open_as("a", 30 * NS_PER_S, 3);
	struct store_job j = job_rec("j1", STORE_RUNNING, 1), got;
	uint64_t cursor;

	write_job(b, &j);
	write_job(b, &(struct store_job){ .id = "j2", .job = "x" });
	ck_assert_int_eq(ops->job_get(b, "j1", &got), 0);
	cursor = got.cursor;
	store_job_clear(&got);
	j.state = STORE_FAILED;
	j.error = "boom";
	write_job(b, &j);
	ck_assert_int_eq(ops->job_get(b, "j1", &got), 0);
	ck_assert_int_eq(got.state, STORE_FAILED);
	ck_assert_str_eq(got.error, "boom");
	ck_assert_uint_eq(got.cursor, cursor);
	store_job_clear(&got);
	ops->close(b);
}
END_TEST

START_TEST(test_list_pages_newest_first_with_filters)
{
	void *b = open_as("a", 30 * NS_PER_S, 3);
	struct store_change c[10];
	struct store_job out[4];
	struct store_filter f = { NULL, 0 };
	uint64_t next;
	int i, n;

	memset(c, 0, sizeof(c));
	for (i = 0; i < 10; i++) {
		char id[16];

		snprintf(id, sizeof(id), "j%d", i);
		c[i].u.job = job_rec(id, i % 2 ? STORE_FAILED : STORE_SUCCEEDED,
				     i);
		if (i >= 5)
			snprintf(c[i].u.job.job, STORE_NAME_MAX, "y");
	}
	ck_assert_int_eq(ops->write_batch(b, c, 10), 0);

	n = ops->job_list(b, &f, 0, 4, out, &next);
	ck_assert_int_eq(n, 4);
	ck_assert_str_eq(out[0].id, "j9");
	ck_assert_str_eq(out[3].id, "j6");
	ck_assert_uint_eq(next, out[3].cursor);
	for (i = 0; i < n; i++)
		store_job_clear(&out[i]);
	n = ops->job_list(b, &f, next, 4, out, &next);
	ck_assert_int_eq(n, 4);
	ck_assert_str_eq(out[0].id, "j5");
	for (i = 0; i < n; i++)
		store_job_clear(&out[i]);
	n = ops->job_list(b, &f, next, 4, out, &next);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(out[1].id, "j0");
	ck_assert_uint_eq(next, 0);
	for (i = 0; i < n; i++)
		store_job_clear(&out[i]);

	f.job = "y";
	f.states = 1u << STORE_FAILED;
	n = ops->job_list(b, &f, 0, 4, out, &next);
	ck_assert_int_eq(n, 3);		/* j9, j7, j5 */
	ck_assert_str_eq(out[0].id, "j9");
	ck_assert_str_eq(out[2].id, "j5");
	ck_assert_uint_eq(next, 0);
	for (i = 0; i < n; i++)
		store_job_clear(&out[i]);
	ops->close(b);
}
END_TEST

START_TEST(test_expire_deletes_finished_records_only)
{
	void *b = open_as("a", 30 * NS_PER_S, 3);
	struct store_job j = job_rec("old", STORE_SUCCEEDED, 1), got;

	j.finished = 1000;
	write_job(b, &j);
	j = job_rec("new", STORE_SUCCEEDED, 1);
	j.finished = 3000;
	write_job(b, &j);
	write_job(b, &(struct store_job){ .id = "live", .job = "x",
					  .state = STORE_RUNNING });
	ck_assert_int_eq(ops->expire(b, 2000), 0);
	ck_assert_int_eq(ops->job_get(b, "old", &got), 1);
	ck_assert_int_eq(get_state(b, "new"), STORE_SUCCEEDED);
	ck_assert_int_eq(get_state(b, "live"), STORE_RUNNING);
	ops->close(b);
}
END_TEST

START_TEST(test_recovery_fails_this_instances_unfinished_rows_only)
{
	void *a = open_as("a", 30 * NS_PER_S, 3);
	void *b = open_as("b", 30 * NS_PER_S, 3);
	struct store_job got;

	write_job(a, &(struct store_job){ .id = "a-run", .job = "x",
					  .state = STORE_RUNNING });
	write_job(a, &(struct store_job){ .id = "a-wait", .job = "x" });
	write_job(a, &(struct store_job){ .id = "a-done", .job = "x",
					  .state = STORE_SUCCEEDED });
	write_job(b, &(struct store_job){ .id = "b-run", .job = "x",
					  .state = STORE_RUNNING });
	enqueue(a, "a-queued");
	ops->close(a);
	a = open_as("a", 30 * NS_PER_S, 3);
	ck_assert_int_eq(ops->job_get(a, "a-run", &got), 0);
	ck_assert_int_eq(got.state, STORE_FAILED);
	ck_assert_str_eq(got.error, "daemon restarted");
	ck_assert_int_gt(got.finished, 0);
	store_job_clear(&got);
	ck_assert_int_eq(get_state(a, "a-wait"), STORE_FAILED);
	ck_assert_int_eq(get_state(a, "a-done"), STORE_SUCCEEDED);
	ck_assert_int_eq(get_state(a, "b-run"), STORE_RUNNING);
	ck_assert_int_eq(get_state(a, "a-queued"), STORE_QUEUED);
	ops->close(a);
	ops->close(b);
}
END_TEST

static void *
open_thread(void *arg)
{
	struct store_options o = {
		.backend = STORE_POSTGRESQL, .url = url, .instance = arg,
	};
	char err[256];

	return ops->open(&o, err, sizeof(err));
}

START_TEST(test_instances_that_start_at_once_share_one_schema)
{
	static char names[4][8] = { "s0", "s1", "s2", "s3" };
	pthread_t t[4];
	void *b[4];
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, open_thread,
						names[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &b[i]);
		ck_assert_ptr_nonnull(b[i]);
	}
	write_job(b[0], &(struct store_job){ .id = "j", .job = "x" });
	ck_assert_int_eq(get_state(b[3], "j"), STORE_QUEUED);
	for (i = 0; i < 4; i++)
		ops->close(b[i]);
}
END_TEST

START_TEST(test_a_newer_schema_is_refused)
{
	void *b = open_as("a", 30 * NS_PER_S, 3);
	struct store_options o = { .backend = STORE_POSTGRESQL, .url = url,
				   .instance = "a" };
	char err[256] = "";

	ops->close(b);
	sql("INSERT INTO taskpoold_schema_version VALUES (99)");
	ck_assert_ptr_null(ops->open(&o, err, sizeof(err)));
	ck_assert_msg(strstr(err, "schema version 99") != NULL, "%s", err);
}
END_TEST

START_TEST(test_a_refused_record_does_not_hold_the_batch_back)
{
	void *a = open_as("a", 30 * NS_PER_S, 3);
	struct store_change c[3];
	struct store_run run;
	struct store_job got;

	memset(c, 0, sizeof(c));
	c[0].is_run = c[1].is_run = true;
	snprintf(c[0].u.run.id, STORE_ID_MAX, "r1");
	c[0].u.run.idempotency_key = "k";
	snprintf(c[1].u.run.id, STORE_ID_MAX, "r2");
	c[1].u.run.idempotency_key = "k";	/* taken by r1 */
	c[2].u.job = job_rec("j", STORE_SUCCEEDED, 1);
	c[2].u.job.result = "not \xff UTF-8";
	ck_assert_int_eq(ops->write_batch(a, c, 3), 0);
	ck_assert_int_eq(ops->run_get(a, "r1", &run), 0);
	store_run_clear(&run);
	ck_assert_int_eq(ops->run_get(a, "r2", &run), 1);
	ck_assert_int_eq(ops->job_get(a, "j", &got), 1);
	ops->close(a);
}
END_TEST

START_TEST(test_through_the_store_a_synced_change_is_read_back)
{
	struct store_options o = {
		.backend = STORE_POSTGRESQL, .url = url, .instance = "a",
		.lease_ns = 30 * NS_PER_S, .max_attempts = 3,
		.retain_ns = 3600 * NS_PER_S,
	};
	struct store_job j = job_rec("j1", STORE_SUCCEEDED, 1), got;
	char err[256] = "";
	struct store *s = store_open(&o, err, sizeof(err));

	ck_assert_msg(s != NULL, "store_open: %s", err);
	ck_assert_int_eq(store_backend(s), STORE_POSTGRESQL);
	ck_assert(store_has_queue(s));
	j.result = "done";
	j.finished = clock_now_ns(CLOCK_REALTIME);	/* not expired yet */
	ck_assert_int_eq(store_job_changed(s, &j), 0);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(store_job_get(s, "j1", &got), 0);
	ck_assert_str_eq(got.result, "done");
	store_job_clear(&got);
	store_close(s);
}
END_TEST

/* ---- the queue ----------------------------------------------------------- */

struct claimer {
	void *b;
	int claimed;		/* ids[] holds the first QUEUE_JOBS */
	int refused;		/* finishes refused: claimed twice */
	char (*ids)[STORE_ID_MAX];
};

static void *
claim_all(void *arg)
{
	struct claimer *c = arg;
	struct store_job out[16];
	int empty = 0, i, n;

	/* Until three claims in a row find nothing: the queue is empty. */
	while (empty < 3) {
		n = ops->claim(c->b, 16, out);
		if (n < 0)
			return NULL;
		empty = n == 0 ? empty + 1 : 0;
		for (i = 0; i < n; i++) {
			if (c->claimed < QUEUE_JOBS)
				memcpy(c->ids[c->claimed], out[i].id,
				       STORE_ID_MAX);
			c->claimed++;
			out[i].state = STORE_SUCCEEDED;
			out[i].finished = clock_now_ns(CLOCK_REALTIME);
			if (ops->finish(c->b, &out[i]) != 0)
				c->refused++;
			store_job_clear(&out[i]);
		}
	}
	return NULL;
}

static int
cmp_id(const void *x, const void *y)
{
	return strcmp(x, y);
}

START_TEST(test_two_instances_never_claim_one_job_twice)
{
	static char ids[2 * QUEUE_JOBS][STORE_ID_MAX];
	struct claimer c[2] = {
		{ open_as("a", 30 * NS_PER_S, 3), 0, 0, ids },
		{ open_as("b", 30 * NS_PER_S, 3), 0, 0, ids + QUEUE_JOBS },
	};
	pthread_t t[2];
	char id[32];
	int i;

	for (i = 0; i < QUEUE_JOBS; i++) {
		snprintf(id, sizeof(id), "q%04d", i);
		enqueue(c[i % 2].b, id);
	}
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, claim_all, &c[i]),
				 0);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(c[0].refused + c[1].refused, 0);
	ck_assert_int_eq(c[0].claimed + c[1].claimed, QUEUE_JOBS);
	/* Each id exactly once: sorted, every neighbour differs. */
	memmove(ids + c[0].claimed, ids + QUEUE_JOBS,
		(size_t)c[1].claimed * STORE_ID_MAX);
	qsort(ids, QUEUE_JOBS, STORE_ID_MAX, cmp_id);
	for (i = 0; i < QUEUE_JOBS; i++) {
		snprintf(id, sizeof(id), "q%04d", i);
		ck_assert_str_eq(ids[i], id);
	}
	ck_assert_int_eq(get_state(c[0].b, "q0000"), STORE_SUCCEEDED);
	ops->close(c[0].b);
	ops->close(c[1].b);
}
END_TEST

START_TEST(test_a_lapsed_lease_is_claimed_again_and_the_old_finish_fenced)
{
	void *a = open_as("a", 200 * NS_PER_MS, 3);
	void *b = open_as("b", 200 * NS_PER_MS, 3);
	struct store_job first, second;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(a, 1, &first), 1);
	ck_assert_uint_eq(first.attempt, 1);
	ck_assert_int_eq(first.state, STORE_RUNNING);
	ck_assert_str_eq(first.params, "{\"n\":1}");
	/* a renews: b finds nothing while the lease holds. */
	ck_assert_int_eq(ops->renew(a, &first.id, 1), 0);
	ck_assert_int_eq(ops->claim(b, 1, &second), 0);
	/* a stops renewing: after the lease, b takes it, attempt 2. */
	ck_assert_int_eq(claim_within(b, &second, WAIT_NS), 1);
	ck_assert_str_eq(second.id, "q1");
	ck_assert_uint_eq(second.attempt, 2);
	/* a's late finish is refused; b's lands. */
	first.state = STORE_SUCCEEDED;
	first.result = strdup("late");
	ck_assert_int_eq(ops->finish(a, &first), 1);
	second.state = STORE_FAILED;
	second.error = strdup("by b");
	ck_assert_int_eq(ops->finish(b, &second), 0);
	ck_assert_int_eq(ops->finish(b, &second), 1);
	store_job_clear(&first);
	store_job_clear(&second);
	ck_assert_int_eq(ops->job_get(a, "q1", &first), 0);
	ck_assert_int_eq(first.state, STORE_FAILED);
	ck_assert_str_eq(first.error, "by b");
	ck_assert_uint_eq(first.attempt, 2);
	store_job_clear(&first);
	ops->close(a);
	ops->close(b);
}
END_TEST

/*
 * A renewal holds the leases of the jobs the runner has now, no others:
 * what an earlier life of the instance claimed (or a claim it could not
 * start) lapses and goes to another instance while this one is busy.
 */
START_TEST(test_a_renewal_keeps_only_the_leases_of_jobs_run_now)
{
	/* Long enough that a pause of a loaded machine keeps q2's. */
	const int64_t lease = NS_PER_S;
	void *a = open_as("a", lease, 3);
	void *b = open_as("b", lease, 3);
	struct timespec pause = { 0, 20 * NS_PER_MS };
	struct store_job lost, kept, taken;
	int64_t deadline;
	int n = 0;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(a, 1, &lost), 1);
	store_job_clear(&lost);
	/* a dies with q1; its next life, same name, runs q2. */
	ops->close(a);
	a = open_as("a", lease, 3);
	enqueue(a, "q2");
	ck_assert_int_eq(ops->claim(a, 1, &kept), 1);
	ck_assert_str_eq(kept.id, "q2");
	/* Renewing all along, well past q1's lease: b gets q1. */
	deadline = clock_now_ns(CLOCK_MONOTONIC) + WAIT_NS;
	while (n == 0 && clock_now_ns(CLOCK_MONOTONIC) < deadline) {
		ck_assert_int_eq(ops->renew(a, &kept.id, 1), 0);
		n = ops->claim(b, 1, &taken);
		ck_assert_int_ge(n, 0);
		if (n == 0)	/* polling a lease by the clock */
			nanosleep(&pause, NULL);
	}
	ck_assert_msg(n == 1, "q1 stayed leased to a's earlier life");
	ck_assert_str_eq(taken.id, "q1");
	ck_assert_uint_eq(taken.attempt, 2);
	/* q2's lease held: its finish lands. */
	kept.state = STORE_SUCCEEDED;
	ck_assert_int_eq(ops->finish(a, &kept), 0);
	store_job_clear(&kept);
	store_job_clear(&taken);
	ops->close(a);
	ops->close(b);
}
END_TEST

START_TEST(test_a_late_batch_of_an_old_attempt_does_not_overwrite)
{
	void *a = open_as("a", 200 * NS_PER_MS, 3);
	void *b = open_as("b", 200 * NS_PER_MS, 3);
	struct store_job first, second;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(a, 1, &first), 1);
	ck_assert_int_eq(claim_within(b, &second, WAIT_NS), 1);
	first.state = STORE_SUCCEEDED;
	write_job(a, &first);		/* attempt 1, owned by b now */
	ck_assert_int_eq(get_state(a, "q1"), STORE_RUNNING);
	store_job_clear(&first);
	store_job_clear(&second);
	ops->close(a);
	ops->close(b);
}
END_TEST

START_TEST(test_max_attempts_exhausted_fails_the_job)
{
	void *a = open_as("a", 100 * NS_PER_MS, 2);
	struct store_job j;
	int64_t deadline;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(a, 1, &j), 1);
	store_job_clear(&j);
	ck_assert_int_eq(claim_within(a, &j, WAIT_NS), 1);
	ck_assert_uint_eq(j.attempt, 2);
	store_job_clear(&j);
	/* The second lease lapses too: no third claim, the job fails. */
	deadline = clock_now_ns(CLOCK_MONOTONIC) + WAIT_NS;
	while (get_state(a, "q1") == STORE_RUNNING &&
	       clock_now_ns(CLOCK_MONOTONIC) < deadline)
		ck_assert_int_eq(claim_within(a, &j, 50 * NS_PER_MS), 0);
	ck_assert_int_eq(ops->job_get(a, "q1", &j), 0);
	ck_assert_int_eq(j.state, STORE_FAILED);
	ck_assert_str_eq(j.error, "lease lapsed after 2 attempts");
	store_job_clear(&j);
	ops->close(a);
}
END_TEST

START_TEST(test_cancel_of_a_queued_job_is_at_once)
{
	void *a = open_as("a", 30 * NS_PER_S, 3);
	struct store_job j;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->cancel(a, "q1"), 0);
	ck_assert_int_eq(get_state(a, "q1"), STORE_CANCELLED);
	ck_assert_int_eq(ops->claim(a, 1, &j), 0);
	ck_assert_int_eq(ops->cancel(a, "q1"), 1);
	ck_assert_int_eq(ops->cancel(a, "unknown"), 1);
	ops->close(a);
}
END_TEST

START_TEST(test_cancel_of_a_running_job_reaches_its_owner_only)
{
	static struct events ea, eb;
	void *a = open_as("a", 30 * NS_PER_S, 3);
	void *b = open_as("b", 30 * NS_PER_S, 3);
	struct store_job j;

	events_init(&ea);
	events_init(&eb);
	ops->set_events(a, on_event, &ea);
	ops->set_events(b, on_event, &eb);
	/*
	 * a hears FINISHED by NOTIFY only: its listener must be up (it says
	 * so).  b's need not: a cancel asked before it listens is found.
	 */
	ck_assert(wait_event(&ea, STORE_EVENT_QUEUED, "", WAIT_NS));
	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(b, 1, &j), 1);
	ck_assert_int_eq(ops->cancel(a, "q1"), 0);
	ck_assert(wait_event(&eb, STORE_EVENT_CANCEL, "q1", WAIT_NS));
	/* The owner finishes it cancelled; everyone hears it finished. */
	j.state = STORE_CANCELLED;
	ck_assert_int_eq(ops->finish(b, &j), 0);
	ck_assert(wait_event(&ea, STORE_EVENT_FINISHED, "q1", WAIT_NS));
	pthread_mutex_lock(&ea.lock);
	ck_assert(!has_event(&ea, STORE_EVENT_CANCEL, "q1"));
	pthread_mutex_unlock(&ea.lock);
	store_job_clear(&j);
	ops->close(a);
	ops->close(b);
}
END_TEST

/*
 * A cancel asked while its owner did not listen (its listener not yet
 * connected, or connecting again) is not lost: the owner's listener
 * finds it when it listens.  Here the owner's first life claims q1 and
 * goes; the cancel comes; its next life, same name, hears it.
 */
START_TEST(test_cancel_asked_while_the_owner_did_not_listen_reaches_it)
{
	static struct events eb;
	void *a = open_as("a", 30 * NS_PER_S, 3);
	void *b = open_as("b", 30 * NS_PER_S, 3);
	struct store_job j;

	enqueue(a, "q1");
	ck_assert_int_eq(ops->claim(b, 1, &j), 1);
	store_job_clear(&j);
	ops->close(b);
	ck_assert_int_eq(ops->cancel(a, "q1"), 0);
	b = open_as("b", 30 * NS_PER_S, 3);
	events_init(&eb);
	ops->set_events(b, on_event, &eb);
	ck_assert(wait_event(&eb, STORE_EVENT_CANCEL, "q1", WAIT_NS));
	ops->close(a);
	ops->close(b);
}
END_TEST

START_TEST(test_listen_delivers_queued_in_bounded_time)
{
	static struct events eb;
	void *a = open_as("a", 30 * NS_PER_S, 3);
	void *b = open_as("b", 30 * NS_PER_S, 3);

	events_init(&eb);
	ops->set_events(b, on_event, &eb);
	/* The listener is up once it said so (its first QUEUED, ""). */
	ck_assert(wait_event(&eb, STORE_EVENT_QUEUED, "", WAIT_NS));
	/* Nothing polls: only the notification can bring it in time. */
	enqueue(a, "q1");
	ck_assert(wait_event(&eb, STORE_EVENT_QUEUED, "q1", WAIT_NS));
	ops->close(a);
	ops->close(b);
}
END_TEST

/* ---- an outage ----------------------------------------------------------- */

static void
cluster(const char *verb)
{
	const char *prog = getenv("TASKPOOLD_PG_CLUSTER");
	const char *dir = getenv("TASKPOOLD_PG_DIR");
	char cmd[4096];

	ck_assert(prog != NULL && dir != NULL);
	ck_assert_int_lt(snprintf(cmd, sizeof(cmd), "'%.1000s' %s '%.1000s'"
				  " >/dev/null", prog, verb, dir),
			 (int)sizeof(cmd));
	ck_assert_int_eq(system(cmd), 0);
}

/*
 * A TCP relay to the database that can stop reading what the client
 * sends, as a peer that vanished behind a dropped route does: the
 * client's sends then fill the window and stop.
 */
#define RELAY_PAIRS 8

struct relay {
	int lfd, port, to_port;
	atomic_bool frozen, quit;
	pthread_t thread;
};

static void
relay_write(int fd, const char *p, ssize_t n)
{
	ssize_t w;

	while (n > 0 && (w = write(fd, p, (size_t)n)) > 0) {
		p += w;
		n -= w;
	}
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	struct pollfd p[1 + 2 * RELAY_PAIRS];
	static char buf[65536];
	int fds[2 * RELAY_PAIRS], n = 0, i, c, s;
	struct sockaddr_in to;
	ssize_t got;

	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)r->to_port);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!atomic_load(&r->quit)) {
		p[0].fd = r->lfd;
		p[0].events = POLLIN;
		for (i = 0; i < n; i++) {
			p[1 + i].fd = fds[i];
			/* Even: a client's side, unread while frozen. */
			p[1 + i].events = i % 2 == 0 &&
				atomic_load(&r->frozen) ? 0 : POLLIN;
		}
		/* A tick to see the flags: this is the test's relay. */
		if (poll(p, (nfds_t)(1 + n), 20) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n < 2 * RELAY_PAIRS &&
		    (c = accept(r->lfd, NULL, NULL)) >= 0) {
			s = socket(AF_INET, SOCK_STREAM, 0);
			ck_assert_int_ge(s, 0);
			ck_assert_int_eq(connect(s, (struct sockaddr *)&to,
						 sizeof(to)), 0);
			fds[n++] = c;
			fds[n++] = s;
			continue;
		}
		for (i = 0; i < n; i++) {
			if (fds[i] < 0 || !(p[1 + i].revents &
					    (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(fds[i], buf, sizeof(buf));
			if (got <= 0) {
				close(fds[i]);
				close(fds[i ^ 1]);
				fds[i] = fds[i ^ 1] = -1;
				continue;
			}
			relay_write(fds[i ^ 1], buf, got);
		}
	}
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return NULL;
}

/* Starts r before the database of url; its conninfo into out. */
static void
relay_start(struct relay *r, char *out, size_t size)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL), *o;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	size_t used = 0;
	const char *v;

	ck_assert_ptr_nonnull(opts);
	memset(r, 0, sizeof(*r));
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0' ||
		    strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0)
			continue;
		if (strcmp(o->keyword, "port") == 0) {
			r->to_port = atoi(o->val);
			continue;
		}
		used += (size_t)snprintf(out + used, size - used, "%s='",
					 o->keyword);
		for (v = o->val; *v != '\0' && used + 4 < size; v++) {
			if (*v == '\'' || *v == '\\')
				out[used++] = '\\';
			out[used++] = *v;
		}
		used += (size_t)snprintf(out + used, size - used, "' ");
		ck_assert_uint_lt(used, size);
	}
	PQconninfoFree(opts);
	if (r->to_port == 0)
		r->to_port = 5432;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->lfd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(r->lfd, 8), 0);
	ck_assert_int_eq(getsockname(r->lfd, (struct sockaddr *)&a, &len), 0);
	r->port = ntohs(a.sin_port);
	snprintf(out + used, size - used, "host=127.0.0.1 port=%d", r->port);
	ck_assert_int_eq(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static void
relay_stop(struct relay *r)
{
	atomic_store(&r->quit, true);
	pthread_join(r->thread, NULL);
	close(r->lfd);
}

/* Thaws the relay after a while, so that a send stuck for ever ends. */
static void *
thaw_later(void *arg)
{
	struct relay *r = arg;
	struct timespec t = { (time_t)(3 * (STORE_TIMEOUT_NS / NS_PER_S)), 0 };

	nanosleep(&t, NULL);
	atomic_store(&r->frozen, false);
	return NULL;
}

START_TEST(test_a_send_the_database_does_not_take_fails_in_time)
{
	static char conninfo[4096];
	struct relay r;
	struct store_options o = {
		.backend = STORE_POSTGRESQL, .url = conninfo, .instance = "a",
		.lease_ns = 30 * NS_PER_S, .max_attempts = 3,
		.retain_ns = 3600 * NS_PER_S,
	};
	struct store_change c = { .is_run = false };
	size_t big = 32u << 20;
	char err[256] = "";
	pthread_t thaw;
	int64_t t0, took;
	void *a;
	int rc;

	relay_start(&r, conninfo, sizeof(conninfo));
	a = ops->open(&o, err, sizeof(err));
	ck_assert_msg(a != NULL, "open through the relay: %s", err);
	c.u.job = job_rec("big", STORE_SUCCEEDED, 1);
	c.u.job.result = malloc(big + 1);
	ck_assert_ptr_nonnull(c.u.job.result);
	memset(c.u.job.result, 'x', big);
	c.u.job.result[big] = '\0';
	atomic_store(&r.frozen, true);
	ck_assert_int_eq(pthread_create(&thaw, NULL, thaw_later, &r), 0);
	t0 = clock_now_ns(CLOCK_MONOTONIC);
	rc = ops->write_batch(a, &c, 1);
	took = clock_now_ns(CLOCK_MONOTONIC) - t0;
	pthread_join(thaw, NULL);
	/* Building the 32 MB statement counts too (slow under TSan). */
	ck_assert_msg(took < 2 * BOUND_NS, "took %lld ns", (long long)took);
	ck_assert_int_eq(rc, -1);
	ck_assert(errno == EIO || errno == ETIMEDOUT);
	free(c.u.job.result);
	ops->close(a);
	relay_stop(&r);
}
END_TEST

START_TEST(test_a_stopped_database_fails_in_time_and_reconnects)
{
	static struct events ea;
	void *a = open_as("a", 30 * NS_PER_S, 3);
	struct store_job j;
	int64_t t0, took;

	events_init(&ea);
	ops->set_events(a, on_event, &ea);
	ck_assert(wait_event(&ea, STORE_EVENT_QUEUED, "", WAIT_NS));
	write_job(a, &(struct store_job){ .id = "j1", .job = "x" });
	/* From here, a QUEUED "" is the listener's after its reconnect. */
	pthread_mutex_lock(&ea.lock);
	ea.n = 0;
	pthread_mutex_unlock(&ea.lock);
	cluster("stop");
	/* Each call fails on its own, within the bound, with its reason. */
	t0 = clock_now_ns(CLOCK_MONOTONIC);
	ck_assert_int_eq(ops->job_get(a, "j1", &j), -1);
	ck_assert(errno == EIO || errno == ETIMEDOUT);
	took = clock_now_ns(CLOCK_MONOTONIC) - t0;
	ck_assert_msg(took < BOUND_NS, "took %lld ns", (long long)took);
	t0 = clock_now_ns(CLOCK_MONOTONIC);
	ck_assert_int_eq(ops->enqueue(a, &(struct store_job){ .id = "q" }),
			 -1);
	ck_assert(errno == EIO || errno == ETIMEDOUT);
	took = clock_now_ns(CLOCK_MONOTONIC) - t0;
	ck_assert_msg(took < BOUND_NS, "took %lld ns", (long long)took);
	t0 = clock_now_ns(CLOCK_MONOTONIC);
	ck_assert_int_eq(ops->claim(a, 1, &j), -1);
	ck_assert_int_eq(ops->write_batch(a, &(struct store_change){
		.u.job = { .id = "j3", .job = "x" } }, 1), -1);
	took = clock_now_ns(CLOCK_MONOTONIC) - t0;
	ck_assert_msg(took < 2 * BOUND_NS, "took %lld ns", (long long)took);
	cluster("start");
	/* The next call works: each connection is made again. */
	ck_assert_int_eq(get_state(a, "j1"), STORE_QUEUED);
	write_job(a, &(struct store_job){ .id = "j2", .job = "x" });
	/* The listener is back, and says so: look at the queue. */
	ck_assert(wait_event(&ea, STORE_EVENT_QUEUED, "", WAIT_NS));
	enqueue(a, "q2");
	ck_assert(wait_event(&ea, STORE_EVENT_QUEUED, "q2", WAIT_NS));
	ops->close(a);
}
END_TEST

static Suite *
store_pg_suite(void)
{
	Suite *s = suite_create("store_pg");
	TCase *tc = tcase_create("records");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_batch_round_trip_keeps_every_field);
	tcase_add_test(tc, test_last_write_wins_and_keeps_the_cursor);
	tcase_add_test(tc, test_list_pages_newest_first_with_filters);
	tcase_add_test(tc, test_expire_deletes_finished_records_only);
	tcase_add_test(tc,
		test_recovery_fails_this_instances_unfinished_rows_only);
	tcase_add_test(tc, test_instances_that_start_at_once_share_one_schema);
	tcase_add_test(tc, test_a_newer_schema_is_refused);
	tcase_add_test(tc, test_a_refused_record_does_not_hold_the_batch_back);
	tcase_add_test(tc, test_through_the_store_a_synced_change_is_read_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_two_instances_never_claim_one_job_twice);
	tcase_add_test(tc,
		test_a_lapsed_lease_is_claimed_again_and_the_old_finish_fenced);
	tcase_add_test(tc,
		test_a_late_batch_of_an_old_attempt_does_not_overwrite);
	tcase_add_test(tc,
		test_a_renewal_keeps_only_the_leases_of_jobs_run_now);
	tcase_add_test(tc, test_max_attempts_exhausted_fails_the_job);
	tcase_add_test(tc, test_cancel_of_a_queued_job_is_at_once);
	tcase_add_test(tc, test_cancel_of_a_running_job_reaches_its_owner_only);
	tcase_add_test(tc,
		       test_cancel_asked_while_the_owner_did_not_listen_reaches_it);
	tcase_add_test(tc, test_listen_delivers_queued_in_bounded_time);
	tcase_add_test(tc,
		test_a_send_the_database_does_not_take_fails_in_time);
	tcase_add_test(tc,
		test_a_stopped_database_fails_in_time_and_reconnects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_pg_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
