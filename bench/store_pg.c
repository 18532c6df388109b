/*
 * store_pg.c - what the shared queue on PostgreSQL does per second, and
 * how soon a queued job is claimed elsewhere, through the backend's ops
 * directly (src/store/postgresql.c), no daemon:
 *
 *   1. the trivial loop: enqueue one job, claim it, finish it, N times
 *      (one thread: the latency of three statements in a row);
 *   2. the same N jobs enqueued by T threads, then claimed (16 at a time)
 *      and finished by T threads on two instances;
 *   0. the writer's batches: write_batch of 1,000 new job records, 10
 *      times, then the same ids again (updates);
 *   3. claim latency after NOTIFY: instance a enqueues, instance b's
 *      listening thread hears it and b claims; from before the enqueue to
 *      the claim's return, M times, percentiles.
 *
 * Built on demand and run in a throwaway cluster:
 *   make bench/store_pg && tests/pg-cluster run bench/store_pg [N [T [M]]]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "store/backend.h"

static const struct store_ops *ops = &store_postgresql_ops;
static const char *url;

static void *
open_as(const char *instance)
{
	struct store_options o = {
		.backend = STORE_POSTGRESQL, .url = url, .instance = instance,
		.lease_ns = INT64_C(30000000000), .max_attempts = 3,
	};
	char err[256];
	void *b = ops->open(&o, err, sizeof(err));

	if (b == NULL) {
		fprintf(stderr, "store_pg: %s\n", err);
		exit(1);
	}
	return b;
}

static double
seconds(void)
{
	return (double)clock_now_ns(CLOCK_MONOTONIC) / 1e9;
}

static void
enqueue(void *b, const char *prefix, long i)
{
	struct store_job j;

	memset(&j, 0, sizeof(j));
	snprintf(j.id, sizeof(j.id), "%s-%ld", prefix, i);
	snprintf(j.job, sizeof(j.job), "bench");
	j.params = "{}";
	j.created = clock_now_ns(CLOCK_REALTIME);
	if (ops->enqueue(b, &j) != 0) {
		fprintf(stderr, "store_pg: enqueue failed\n");
		exit(1);
	}
}

/* Claims up to max and finishes them; returns how many. */
static int
claim_finish(void *b, size_t max)
{
	struct store_job out[16];
	int i, n = ops->claim(b, max, out);

	if (n < 0) {
		fprintf(stderr, "store_pg: claim failed\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		out[i].state = STORE_SUCCEEDED;
		out[i].finished = clock_now_ns(CLOCK_REALTIME);
		if (ops->finish(b, &out[i]) != 0) {
			fprintf(stderr, "store_pg: finish refused\n");
			exit(1);
		}
		store_job_clear(&out[i]);
	}
	return n;
}

struct worker {
	void *b;
	long from, to;		/* enqueue: ids [from, to) */
	long done;
};

static void *
enqueuer(void *arg)
{
	struct worker *w = arg;
	long i;

	for (i = w->from; i < w->to; i++)
		enqueue(w->b, "bulk", i);
	return NULL;
}

static void *
claimer(void *arg)
{
	struct worker *w = arg;
	int n, empty = 0;

	while (empty < 3) {
		n = claim_finish(w->b, 16);
		w->done += n;
		empty = n == 0 ? empty + 1 : 0;
	}
	return NULL;
}

static void
run_threads(void *(*fn)(void *), struct worker *w, int t)
{
	pthread_t th[64];
	int i;

	for (i = 0; i < t; i++)
		pthread_create(&th[i], NULL, fn, &w[i]);
	for (i = 0; i < t; i++)
		pthread_join(th[i], NULL);
}

/* Latency: the handler wakes the waiting thread. */
static pthread_mutex_t heard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t heard_cond = PTHREAD_COND_INITIALIZER;
static char heard_id[STORE_ID_MAX];

static void
on_event(enum store_event ev, const char *id, void *arg)
{
	(void)arg;
	if (ev != STORE_EVENT_QUEUED)
		return;
	pthread_mutex_lock(&heard_lock);
	snprintf(heard_id, sizeof(heard_id), "%s", id);
	pthread_cond_signal(&heard_cond);
	pthread_mutex_unlock(&heard_lock);
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static void
latency(void *a, void *b, long m)
{
	double *ms = calloc((size_t)m, sizeof(*ms)), t0;
	char id[STORE_ID_MAX];
	long i;

	ops->set_events(b, on_event, NULL);
	for (i = 0; i < m; i++) {
		snprintf(id, sizeof(id), "lat-%ld", i);
		t0 = seconds();
		enqueue(a, "lat", i);
		pthread_mutex_lock(&heard_lock);
		while (strcmp(heard_id, id) != 0)
			pthread_cond_wait(&heard_cond, &heard_lock);
		pthread_mutex_unlock(&heard_lock);
		if (claim_finish(b, 1) != 1) {
			fprintf(stderr, "store_pg: nothing to claim\n");
			exit(1);
		}
		ms[i] = (seconds() - t0) * 1e3;
	}
	ops->set_events(b, NULL, NULL);
	qsort(ms, (size_t)m, sizeof(*ms), cmp_double);
	printf("claim latency after NOTIFY (enqueue on a -> claimed on b, "
	       "%ld): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", m,
	       ms[m / 2], ms[m * 99 / 100], ms[m - 1]);
	free(ms);
}

/* The writer's side: records per second in batches of STORE_BATCH_MAX. */
static void
batches(void *b)
{
	static struct store_change c[STORE_BATCH_MAX];
	double t0, dt;
	int round, i, k;

	for (k = 0; k < 2; k++) {
		t0 = seconds();
		for (round = 0; round < 10; round++) {
			for (i = 0; i < STORE_BATCH_MAX; i++) {
				struct store_job *j = &c[i].u.job;

				memset(&c[i], 0, sizeof(c[i]));
				snprintf(j->id, sizeof(j->id), "w-%d-%d",
					 round, i);
				snprintf(j->job, sizeof(j->job), "bench");
				j->state = k == 0 ? STORE_RUNNING :
					STORE_SUCCEEDED;
				j->params = "{\"n\":1}";
				j->result = k == 0 ? NULL : "{\"ok\":true}";
				j->result_json = true;
				j->created = clock_now_ns(CLOCK_REALTIME);
			}
			if (ops->write_batch(b, c, STORE_BATCH_MAX) != 0) {
				fprintf(stderr, "store_pg: a batch failed\n");
				exit(1);
			}
		}
		dt = seconds() - t0;
		printf("write_batch (%s, 10 batches of %d): %.0f records/s\n",
		       k == 0 ? "inserts" : "updates", STORE_BATCH_MAX,
		       10.0 * STORE_BATCH_MAX / dt);
	}
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000;
	int t = argc > 2 ? atoi(argv[2]) : 4;
	long m = argc > 3 ? atol(argv[3]) : 500;
	struct worker w[64];
	void *a, *b;
	double t0, dt;
	long i, done;

	url = getenv("TASKPOOLD_PG_URL");
	if (url == NULL || n <= 0 || t <= 0 || t > 32 || m <= 0) {
		fprintf(stderr, "usage: TASKPOOLD_PG_URL=... store_pg "
			"[N [THREADS<=32 [M]]]\n");
		return 64;
	}
	a = open_as("bench-a");
	b = open_as("bench-b");
	batches(a);

	t0 = seconds();
	for (i = 0; i < n; i++) {
		enqueue(a, "loop", i);
		if (claim_finish(a, 1) != 1) {
			fprintf(stderr, "store_pg: nothing to claim\n");
			return 1;
		}
	}
	dt = seconds() - t0;
	printf("trivial loop (enqueue, claim, finish; 1 thread): %ld jobs "
	       "in %.2f s: %.0f jobs/s\n", n, dt, (double)n / dt);

	memset(w, 0, sizeof(w));
	for (i = 0; i < t; i++) {
		w[i].b = i % 2 ? b : a;
		w[i].from = n * i / t;
		w[i].to = n * (i + 1) / t;
	}
	t0 = seconds();
	run_threads(enqueuer, w, t);
	dt = seconds() - t0;
	printf("enqueue (%d threads): %ld jobs in %.2f s: %.0f jobs/s\n", t,
	       n, dt, (double)n / dt);
	t0 = seconds();
	run_threads(claimer, w, t);
	dt = seconds() - t0;
	for (done = 0, i = 0; i < t; i++)
		done += w[i].done;
	printf("claim 16 + finish (%d threads, 2 instances): %ld jobs in "
	       "%.2f s: %.0f jobs/s\n", t, done, dt, (double)done / dt);
	if (done != n)
		fprintf(stderr, "store_pg: %ld claimed of %ld\n", done, n);

	latency(a, b, m);
	ops->close(a);
	ops->close(b);
	return done == n ? 0 : 1;
}
