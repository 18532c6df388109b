/*
 * metrics.h - counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * A leaf: it knows no HTTP and no job.  Whoever owns a `struct metrics`
 * declares its families (a name, a help text, a type, label names) once,
 * before any other thread sees it; from then on any thread may find a
 * series (one set of label values) and count in it, and any thread may
 * render the whole.
 *
 * Cost: finding a series that exists is a lock-free probe of a hash table
 * (a hash of the label values and one string compare per value); counting
 * is one atomic add.  Only the first use of a new set of label values takes
 * the family's lock, to create its series.  Series are never removed, so
 * that a series found stays valid for the life of the metrics.
 *
 * Bounded: a family holds at most `max_series` series; past that, every
 * new set of label values counts in the one series whose values are all
 * "other" (METRICS_OTHER).  metrics_intern() is bounded the same way.
 *
 * A render reads each value once, without stopping the counters: a
 * histogram's buckets and _count always agree (both come from the same
 * reads), its _sum may include an observation that its buckets do not yet
 * show, or the reverse.
 */
#ifndef TASKPOOLD_METRICS_H
#define TASKPOOLD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_LABELS_MAX 4	/* label names per family */
#define METRICS_BOUNDS_MAX 32	/* a histogram's finite bucket bounds */
#define METRICS_OTHER "other"
/* What an HTTP answer of a render carries. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics;
struct metrics_family;
struct metrics_series;

/*
 * What a family is.  name, help and the label names are borrowed for the
 * life of the metrics (string constants); bounds are copied.
 */
struct metrics_desc {
	enum metrics_type type;
	const char *name;		/* [a-zA-Z_:][a-zA-Z0-9_:]* */
	const char *help;		/* any text; escaped when rendered */
	const char *labels[METRICS_LABELS_MAX];	/* [a-zA-Z_][a-zA-Z0-9_]* */
	size_t nlabels;
	size_t max_series;		/* >= 1; ignored without labels */
	const double *bounds;		/* histograms: finite upper bounds, */
	size_t nbounds;			/* increasing, 1 to METRICS_BOUNDS_MAX */
};

/*
 * A new, empty set of families; intern_max bounds metrics_intern().
 * Returns NULL when out of memory.
 */
struct metrics *metrics_new(size_t intern_max);

/* Frees m, its families and series; no other thread may use it.  NULL ok. */
void metrics_free(struct metrics *m);

/*
 * Declares a family, rendered after those declared before.  Only before
 * m is shared with other threads.  Returns the family (borrowed: it lives
 * as long as m), or NULL with errno EINVAL (a bad name, a label named
 * "le" in a histogram, bounds not increasing, a name used twice) or
 * ENOMEM.
 */
struct metrics_family *metrics_family_new(struct metrics *m,
					  const struct metrics_desc *desc);

/*
 * The series of f with these label values (desc.nlabels of them, any
 * bytes, copied on first use; NULL for a family without labels), created
 * on first use.  Past f's max_series, the series whose values are all
 * "other".  Any thread.  Returns a series borrowed for the life of the
 * metrics, or NULL when out of memory; the functions below take NULL and
 * then do nothing, so that a failed lookup only loses one count.
 */
struct metrics_series *metrics_series(struct metrics_family *f,
				      const char *const *values);

/*
 * A counter or gauge counts up by n, exactly (one atomic add).  For a
 * counter, use either this or metrics_set(), not both.
 */
void metrics_add(struct metrics_series *s, uint64_t n);

/*
 * Sets a gauge to v, or a counter whose value comes from a source that
 * only grows (the process's CPU time).
 */
void metrics_set(struct metrics_series *s, double v);

/* A histogram takes one observation of v (seconds, bytes, ...). */
void metrics_observe(struct metrics_series *s, double v);

/*
 * s's value as a render would show it: a counter's or gauge's value, a
 * histogram's count.  For tests and for /healthz-like readers.
 */
double metrics_value(const struct metrics_series *s);

/*
 * A copy of s that lives as long as m, the same pointer for the same
 * string, so that it may be kept where a borrowed string must outlive its
 * source (a label value from a config that a reload frees).  Past
 * intern_max different strings, METRICS_OTHER.  Any thread; lock-free
 * when s was seen before.  Returns METRICS_OTHER when out of memory too.
 */
const char *metrics_intern(struct metrics *m, const char *s);

/*
 * Every family in the text format 0.0.4: HELP and TYPE lines, then one
 * line per series (per bucket, _sum and _count for histograms), in the
 * order of declaration and of first use.  Any thread.  Returns a new
 * string (the caller frees it) of *len bytes, or NULL when out of memory.
 */
char *metrics_render(struct metrics *m, size_t *len);

#endif
