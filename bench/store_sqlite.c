/*
 * store_sqlite.c - what the store's SQLite backend sustains: job records
 * committed per second by write_batch in batches of 1,000 (finished
 * records with a 100-byte result, as a busy daemon writes them), and the
 * latency of job_get on another thread while the writer commits.
 *
 * usage: bench/store_sqlite [DIR [BATCHES]]
 *
 * DIR (default: the working directory) is where the file goes, removed
 * at the end: put it on the disk the daemon would use, not a tmpfs.
 * Built on demand, never by make check: make bench/store_sqlite.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store/backend.h"

#define BATCH 1000
#define OPS store_sqlite_ops

static char result[101];
static struct store_change batch[BATCH];

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Batch k: ids k*BATCH .. k*BATCH + BATCH - 1, finished. */
static void
fill(unsigned k)
{
	size_t i;

	for (i = 0; i < BATCH; i++) {
		struct store_job *j = &batch[i].u.job;

		snprintf(j->id, sizeof(j->id), "bench-%010zu",
			 (size_t)k * BATCH + i);
		snprintf(j->job, sizeof(j->job), "greet");
		j->state = STORE_SUCCEEDED;
		j->result = result;
		j->params = "{\"name\":\"world\"}";
		j->created = 1700000000000000000 + (int64_t)(k * BATCH + i);
		j->started = j->created + 1000;
		j->finished = j->created + 2000;
	}
}

static void
commit(void *b, unsigned k)
{
	fill(k);
	if (OPS.write_batch(b, batch, BATCH) != 0) {
		perror("write_batch");
		exit(1);
	}
}

struct writer {
	void *b;
	unsigned from, to;
	atomic_bool done;
};

static void *
writer_main(void *p)
{
	struct writer *w = p;
	unsigned k;

	for (k = w->from; k < w->to; k++)
		commit(w->b, k);
	atomic_store(&w->done, true);
	return NULL;
}

/* CPU time of the process so far, user and system. */
static int64_t
cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
		       1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t lat[1 << 20];

/* job_get of a random id of the first `batches` batches. */
static void
get_random(void *b, unsigned batches)
{
	char id[STORE_ID_MAX];
	struct store_job got;
	int rc;

	snprintf(id, sizeof(id), "bench-%010zu",
		 (size_t)rand() % ((size_t)batches * BATCH));
	if ((rc = OPS.job_get(b, id, &got)) != 0) {
		fprintf(stderr, "job_get %s: %d\n", id, rc);
		exit(1);
	}
	free(got.result);
	free(got.params);
}

static void
report(const char *what, size_t n, int64_t ns)
{
	qsort(lat, n, sizeof(lat[0]), cmp_i64);
	printf("%s: %zu gets in %.2f s: p50 %.1f us, p99 %.1f us,"
	       " p99.9 %.1f us, max %.1f us\n", what, n, (double)ns / 1e9,
	       lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n * 999 / 1000] / 1e3, lat[n - 1] / 1e3);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	unsigned batches = argc > 2 ? (unsigned)atoi(argv[2]) : 200, k;
	struct store_options o = { .backend = STORE_SQLITE };
	struct writer w = { 0 };
	char path[4096], side[4200], err[512];
	size_t n;
	pthread_t t;
	int64_t t0, t1, c0, c1;
	void *b;

	memset(result, 'r', 100);
	snprintf(path, sizeof(path), "%s/store_sqlite_bench.%d.db", dir,
		 (int)getpid());
	o.path = path;
	if ((b = OPS.open(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}

	/* 1: the writer alone. */
	c0 = cpu_ns();
	t0 = now_ns();
	for (k = 0; k < batches; k++)
		commit(b, k);
	t1 = now_ns();
	c1 = cpu_ns();
	/* Per CPU second too: the wall clock says little on a busy host. */
	printf("write_batch: %u batches of %d: %.0f records/s"
	       " (%.2f ms a batch), %.0f records per CPU second\n", batches,
	       BATCH, (double)batches * BATCH * 1e9 / (double)(t1 - t0),
	       (double)(t1 - t0) / batches / 1e6,
	       (double)batches * BATCH * 1e9 / (double)(c1 - c0));

	/* 2: job_get of random committed ids, alone, for comparison. */
	t0 = now_ns();
	for (n = 0; n < 100000; n++) {
		int64_t s = now_ns();

		get_random(b, batches);
		lat[n] = now_ns() - s;
	}
	t1 = now_ns();
	report("job_get alone", n, t1 - t0);

	/* 3: job_get of random committed ids while the writer goes on. */
	n = 0;
	w.b = b;
	w.from = batches;
	w.to = 2 * batches;
	if (pthread_create(&t, NULL, writer_main, &w) != 0)
		return 1;
	t0 = now_ns();
	while (!atomic_load(&w.done) && n < sizeof(lat) / sizeof(lat[0])) {
		int64_t s = now_ns();

		get_random(b, batches);
		lat[n++] = now_ns() - s;
	}
	pthread_join(t, NULL);
	t1 = now_ns();
	report("job_get beside the writer", n, t1 - t0);
	printf("writer meanwhile: %.0f records/s\n",
	       (double)batches * BATCH * 1e9 / (double)(t1 - t0));
	OPS.close(b);
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	return 0;
}
