/*
 * metrics_private.h - what metrics.c (the families, series and counts) and
 * metrics_text.c (their rendering) share; the rest of the daemon sees only
 * metrics.h.  metrics.c's header comment tells how the series are found
 * without a lock.
 */
#ifndef TASKPOOLD_METRICS_PRIVATE_H
#define TASKPOOLD_METRICS_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "metrics.h"

struct metrics_series {
	uint64_t hash;			/* of the label values */
	const struct metrics_family *family;
	char *values[METRICS_LABELS_MAX];	/* owned copies */
	atomic_uint_fast64_t count;	/* metrics_add() */
	_Atomic uint64_t bits;		/* a double: metrics_set(), or a
					 * histogram's sum */
	atomic_uint_fast64_t buckets[];	/* histograms: nbounds + 1, the
					 * last for +Inf; not cumulative */
};

struct metrics_family {
	struct metrics_desc desc;	/* bounds point to ours */
	double bounds[METRICS_BOUNDS_MAX];
	size_t mask;			/* slots in the table, less one */
	_Atomic(struct metrics_series *) *slots;
	struct metrics_series **order;	/* by first use, max_series + 1 */
	atomic_size_t nseries;		/* entries of order published */
	pthread_mutex_t lock;		/* guards making a series */
	struct metrics_family *next;	/* in render order */
};

struct metrics {
	struct metrics_family *first, *last;	/* rendered */
	struct metrics_family *interned;	/* not rendered */
};

static inline double
bits_to_double(uint64_t bits)
{
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

/*
 * A histogram's buckets (not cumulative, the last for +Inf) into out, each
 * read once.  Returns their total: the histogram's count.
 */
uint64_t metrics_read_buckets(const struct metrics_series *s, uint64_t *out);

#endif
