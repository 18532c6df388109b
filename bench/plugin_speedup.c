/*
 * plugin_speedup.c - the speed-up of count_primes from 1 worker to more:
 * JOBS instances of the example plugin (n = N) started at once through the
 * plugin kind on a real pool of WORKERS threads; prints the wall time from
 * the first start to the last completion.  No HTTP: the kind and the pool
 * are what is measured here (docs/benchmarks.md has the same over HTTP).
 *
 * usage: plugin_speedup CONFIG WORKERS JOBS N
 * where CONFIG has a [job count_primes] of kind plugin.  Build it in a
 * configured tree (docs/benchmarks.md, "count_primes across cores"):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Isrc -Iinclude bench/plugin_speedup.c \
 *       src/libtaskpoold.a $(pkg-config --libs jansson libmicrohttpd inih \
 *       libsystemd libcurl) -pthread -o plugin_speedup
 */
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "job.h"
#include "kinds/kinds.h"

static void
on_done(struct future *f, void *arg)
{
	(void)f;
	sem_post(arg);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct config_error err;
	struct config *cfg;
	struct job_instance **insts;
	struct future_waiter *waiters;
	struct job_env env;
	struct timer *timer;
	struct pool *pool;
	sem_t done;
	double t0, t1;
	int i, jobs, failed = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: plugin_speedup CONFIG WORKERS JOBS N\n");
		return 64;
	}
	jobs = atoi(argv[3]);
	if ((cfg = config_load(argv[1], &err)) == NULL) {
		fprintf(stderr, "%s:%d: %s\n", err.file, err.line, err.text);
		return 78;
	}
	timer = timer_new();
	pool = pool_new((unsigned)atoi(argv[2]), 100000);
	insts = calloc((size_t)jobs, sizeof(*insts));
	waiters = calloc((size_t)jobs, sizeof(*waiters));
	if (timer == NULL || pool == NULL || insts == NULL || waiters == NULL)
		return 1;
	job_env_init(&env, "bench", timer, pool);
	atomic_store(&env.log_jobs, false);
	if (kinds_open(&env) != 0)
		return 1;
	sem_init(&done, 0, 0);
	t0 = now();
	for (i = 0; i < jobs; i++) {
		insts[i] = job_new(&env, cfg, config_find_job(cfg,
			"count_primes"), json_pack("{s:I}", "n",
			(json_int_t)atoll(argv[4])));
		future_on_done(insts[i]->future, &waiters[i], on_done, &done);
		job_run(insts[i]);
	}
	for (i = 0; i < jobs; i++)
		sem_wait(&done);
	t1 = now();
	for (i = 0; i < jobs; i++) {
		failed += future_state(insts[i]->future) != FUTURE_SUCCEEDED;
		job_unref(insts[i]);
	}
	printf("workers %s, %d jobs of n = %s: %.3f s%s\n", argv[2], jobs,
	       argv[4], t1 - t0, failed ? " (some failed)" : "");
	kinds_close(&env);
	pool_free(pool);
	timer_free(timer);
	config_unref(cfg);
	free(insts);
	free(waiters);
	return failed ? 1 : 0;
}
