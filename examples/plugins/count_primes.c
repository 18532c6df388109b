/*
 * count_primes.c - a CPU-bound taskpoold plugin: {"n": N, "primes": P},
 * P the number of primes <= N.
 *
 *	[job count_primes]
 *	kind = plugin
 *	library = /usr/local/lib/taskpoold/count_primes.so
 *	function = count_primes
 *	param.n = int min=1 max=100000000
 *
 * A segmented sieve of Eratosthenes: each segment of SEGMENT numbers fits
 * in the L1 cache, so that jobs on several cores do not compete for
 * memory, and the cancel flag is polled once per segment (about 30 us of
 * work).  n = 30000000 takes about 50 ms on one core of the machine of
 * docs/benchmarks.md (the n the benchmark uses: 1,857,859 primes);
 * n = 100000000, about 190 ms.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskpoold/job.h>

TASKPOOLD_PLUGIN;

#define SEGMENT 32768
#define N_MAX 100000000

json_t *count_primes(const struct taskpoold_call *call, char *error,
		     size_t errlen);

/* The primes up to limit (at most sqrt(N_MAX)), by a plain sieve. */
static uint32_t *
small_primes(uint32_t limit, size_t *count)
{
	bool *composite = calloc(limit + 1, sizeof(bool));
	uint32_t *primes = malloc((limit / 2 + 2) * sizeof(uint32_t));
	uint32_t i, j;
	size_t n = 0;

	if (composite == NULL || primes == NULL) {
		free(composite);
		free(primes);
		return NULL;
	}
	for (i = 2; i <= limit; i++) {
		if (composite[i])
			continue;
		primes[n++] = i;
		for (j = i * i; j <= limit; j += i)
			composite[j] = true;
	}
	free(composite);
	*count = n;
	return primes;
}

/* Primes in [low, low + len), marking multiples of the small primes. */
static uint64_t
count_segment(uint32_t low, uint32_t len, const uint32_t *primes,
	      size_t nprimes, unsigned char *mark)
{
	uint64_t found = 0;
	uint32_t i, p, start;
	size_t k;

	memset(mark, 0, len);
	for (k = 0; k < nprimes; k++) {
		p = primes[k];
		if ((uint64_t)p * p >= (uint64_t)low + len)
			break;
		start = (low + p - 1) / p * p;
		if (start < p * p)
			start = p * p;
		for (i = start - low; i < len; i += p)
			mark[i] = 1;
	}
	for (i = 0; i < len; i++)
		if (!mark[i] && low + i >= 2)
			found++;
	return found;
}

json_t *
count_primes(const struct taskpoold_call *call, char *error, size_t errlen)
{
	json_t *jn = json_object_get(call->params, "n");
	unsigned char mark[SEGMENT];
	uint32_t *primes, n, low, len;
	uint64_t total = 0;
	size_t nprimes;
	json_int_t v;

	if (!json_is_integer(jn) || (v = json_integer_value(jn)) < 1 ||
	    v > N_MAX) {
		snprintf(error, errlen, "n must be an integer from 1 to %d",
			 N_MAX);
		return NULL;
	}
	n = (uint32_t)v;
	if ((primes = small_primes(10000, &nprimes)) == NULL) {
		snprintf(error, errlen, "out of memory");
		return NULL;
	}
	for (low = 0; low <= n; low += len) {
		if (taskpoold_cancelled(call)) {
			free(primes);
			snprintf(error, errlen, "cancelled");
			return NULL;
		}
		len = n - low + 1 < SEGMENT ? n - low + 1 : SEGMENT;
		total += count_segment(low, len, primes, nprimes, mark);
	}
	free(primes);
	return json_pack("{s:I,s:I}", "n", (json_int_t)n, "primes",
			 (json_int_t)total);
}
