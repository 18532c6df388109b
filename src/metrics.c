/*
 * metrics.c - see metrics.h.
 *
 * A family's series sit in an open-addressing hash table of atomic
 * pointers, at most half full, and in an array in the order they were
 * made.  Readers probe the table without a lock; a series is written whole
 * before its pointer is stored (release), and never moves or goes, so that
 * a reader that loads the pointer (acquire) sees it complete.  Making a
 * series takes the family's lock (a leaf: nothing is called under it but
 * malloc), which guards the writes to the table, the array and its count.
 *
 * Values are atomics of 64 bits: integer counts (one fetch-add), and
 * doubles as their bits (sets, and a histogram's sum, added with a
 * compare-exchange loop), so that nothing here needs libatomic.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "metrics_private.h"

static const char *const all_other[METRICS_LABELS_MAX] = {
	METRICS_OTHER, METRICS_OTHER, METRICS_OTHER, METRICS_OTHER,
};

static uint64_t
double_to_bits(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits;
}

/* FNV-1a over each value, a 0xff between two. */
static uint64_t
hash_values(const char *const *values, size_t n)
{
	static const unsigned char sep = 0xff;
	uint64_t h = FNV1A_INIT;
	size_t i;

	for (i = 0; i < n; i++)
		h = fnv1a(fnv1a(h, values[i], strlen(values[i])), &sep, 1);
	return h;
}

static bool
valid_name(const char *s, bool colon)
{
	const char *p;

	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return false;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' ||
		      (colon && *p == ':')))
			return false;
	return true;
}

static void
series_free(struct metrics_series *s)
{
	size_t i;

	for (i = 0; i < METRICS_LABELS_MAX; i++)
		free(s->values[i]);
	free(s);
}

static void
family_free(struct metrics_family *f)
{
	size_t i, n;

	if (f == NULL)
		return;
	n = atomic_load(&f->nseries);
	for (i = 0; i < n; i++)
		series_free(f->order[i]);
	free(f->order);
	free((void *)f->slots);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* A new series of f, not yet published; NULL when out of memory. */
static struct metrics_series *
series_new(const struct metrics_family *f, const char *const *values,
	   uint64_t hash)
{
	size_t nbuckets = f->desc.type == METRICS_HISTOGRAM ?
			  f->desc.nbounds + 1 : 0;
	struct metrics_series *s = calloc(1, sizeof(*s) +
					  nbuckets * sizeof(s->buckets[0]));
	size_t i;

	if (s == NULL)
		return NULL;
	s->hash = hash;
	s->family = f;
	atomic_init(&s->count, 0);
	atomic_init(&s->bits, double_to_bits(0.0));
	for (i = 0; i < nbuckets; i++)
		atomic_init(&s->buckets[i], 0);
	for (i = 0; i < f->desc.nlabels; i++)
		if ((s->values[i] = strdup(values[i])) == NULL) {
			series_free(s);
			return NULL;
		}
	return s;
}

static bool
same_values(const struct metrics_series *s, const char *const *values,
	    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	return true;
}

static bool
is_all_other(const char *const *values, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(values[i], METRICS_OTHER) != 0)
			return false;
	return true;
}

/* The published series with these values, or NULL.  No lock. */
static struct metrics_series *
find(struct metrics_family *f, const char *const *values, uint64_t hash)
{
	struct metrics_series *s;
	size_t i;

	/* At most half full: the probe always meets an empty slot. */
	for (i = hash & f->mask;; i = (i + 1) & f->mask) {
		s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
		if (s == NULL)
			return NULL;
		if (s->hash == hash &&
		    same_values(s, values, f->desc.nlabels))
			return s;
	}
}

/*
 * Publishes s, made for the next place in order.  Under the family's
 * lock.  The series is complete before its pointer is stored.
 */
static void
publish(struct metrics_family *f, struct metrics_series *s, size_t n)
{
	size_t i;

	f->order[n] = s;
	atomic_store_explicit(&f->nseries, n + 1, memory_order_release);
	for (i = s->hash & f->mask;
	     atomic_load_explicit(&f->slots[i], memory_order_relaxed) != NULL;
	     i = (i + 1) & f->mask)
		;
	atomic_store_explicit(&f->slots[i], s, memory_order_release);
}

/* The slow path of metrics_series(): make the series, under the lock. */
static struct metrics_series *
make_series(struct metrics_family *f, const char *const *values,
	    uint64_t hash)
{
	struct metrics_series *s;
	size_t n;

	pthread_mutex_lock(&f->lock);
	s = find(f, values, hash);	/* another thread may have made it */
	if (s == NULL) {
		n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
		/* The all-"other" series may go one past the bound. */
		if (n >= f->desc.max_series &&
		    !is_all_other(values, f->desc.nlabels)) {
			pthread_mutex_unlock(&f->lock);
			return metrics_series(f, all_other);
		}
		s = series_new(f, values, hash);
		if (s != NULL)
			publish(f, s, n);
	}
	pthread_mutex_unlock(&f->lock);
	return s;
}

struct metrics_series *
metrics_series(struct metrics_family *f, const char *const *values)
{
	struct metrics_series *s;
	uint64_t hash;

	if (f->desc.nlabels == 0)	/* made with the family */
		return f->order[0];
	hash = hash_values(values, f->desc.nlabels);
	s = find(f, values, hash);
	return s != NULL ? s : make_series(f, values, hash);
}

/* Checks desc and copies it into f.  Returns 0, or -1 (EINVAL). */
static int
take_desc(struct metrics_family *f, const struct metrics_desc *desc)
{
	size_t i;

	if (!valid_name(desc->name, true) || desc->help == NULL ||
	    desc->nlabels > METRICS_LABELS_MAX ||
	    (desc->nlabels > 0 && desc->max_series == 0))
		return -1;
	for (i = 0; i < desc->nlabels; i++)
		if (!valid_name(desc->labels[i], false) ||
		    !strncmp(desc->labels[i], "__", 2) ||
		    (desc->type == METRICS_HISTOGRAM &&
		     !strcmp(desc->labels[i], "le")))
			return -1;
	f->desc = *desc;
	if (desc->nlabels == 0)
		f->desc.max_series = 1;
	if (desc->type != METRICS_HISTOGRAM) {
		f->desc.bounds = NULL;
		f->desc.nbounds = 0;
		return 0;
	}
	if (desc->nbounds == 0 || desc->nbounds > METRICS_BOUNDS_MAX)
		return -1;
	for (i = 0; i < desc->nbounds; i++) {
		if (!isfinite(desc->bounds[i]) ||
		    (i > 0 && desc->bounds[i] <= desc->bounds[i - 1]))
			return -1;
		f->bounds[i] = desc->bounds[i];
	}
	f->desc.bounds = f->bounds;
	return 0;
}

/* A new family (not linked into m); NULL with errno. */
static struct metrics_family *
family_new(const struct metrics_desc *desc)
{
	struct metrics_family *f = calloc(1, sizeof(*f));
	size_t slots = 4, i;

	if (f == NULL)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	atomic_init(&f->nseries, 0);
	if (take_desc(f, desc) != 0) {
		family_free(f);
		errno = EINVAL;
		return NULL;
	}
	/* Room for the all-"other" series past the bound; half full. */
	while (slots < 2 * (f->desc.max_series + 1))
		slots *= 2;
	f->mask = slots - 1;
	f->slots = calloc(slots, sizeof(f->slots[0]));
	f->order = calloc(f->desc.max_series + 1, sizeof(f->order[0]));
	if (f->slots == NULL || f->order == NULL) {
		family_free(f);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < slots; i++)
		atomic_init(&f->slots[i], NULL);
	if (f->desc.nlabels == 0) {
		struct metrics_series *s = series_new(f, NULL, 0);

		if (s == NULL) {
			family_free(f);
			errno = ENOMEM;
			return NULL;
		}
		publish(f, s, 0);
	}
	return f;
}

struct metrics *
metrics_new(size_t intern_max)
{
	struct metrics_desc interned = {
		.type = METRICS_COUNTER, .name = "interned", .help = "",
		.labels = { "value" }, .nlabels = 1,
		.max_series = intern_max > 0 ? intern_max : 1,
	};
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->interned = family_new(&interned);
	if (m->interned == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
metrics_free(struct metrics *m)
{
	struct metrics_family *f, *next;

	if (m == NULL)
		return;
	for (f = m->first; f != NULL; f = next) {
		next = f->next;
		family_free(f);
	}
	family_free(m->interned);
	free(m);
}

struct metrics_family *
metrics_family_new(struct metrics *m, const struct metrics_desc *desc)
{
	struct metrics_family *f;

	for (f = m->first; f != NULL; f = f->next)
		if (desc->name != NULL && !strcmp(f->desc.name, desc->name)) {
			errno = EINVAL;
			return NULL;
		}
	f = family_new(desc);
	if (f == NULL)
		return NULL;
	if (m->last != NULL)
		m->last->next = f;
	else
		m->first = f;
	m->last = f;
	return f;
}

const char *
metrics_intern(struct metrics *m, const char *s)
{
	struct metrics_series *series = metrics_series(m->interned, &s);

	return series != NULL ? series->values[0] : METRICS_OTHER;
}

void
metrics_add(struct metrics_series *s, uint64_t n)
{
	if (s != NULL)
		atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void
metrics_set(struct metrics_series *s, double v)
{
	if (s != NULL)
		atomic_store_explicit(&s->bits, double_to_bits(v),
				      memory_order_relaxed);
}

void
metrics_observe(struct metrics_series *s, double v)
{
	const struct metrics_family *f;
	uint64_t old, sum;
	size_t i;

	if (s == NULL)
		return;
	f = s->family;
	for (i = 0; i < f->desc.nbounds && !(v <= f->bounds[i]); i++)
		;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	old = atomic_load_explicit(&s->bits, memory_order_relaxed);
	do
		sum = double_to_bits(bits_to_double(old) + v);
	while (!atomic_compare_exchange_weak_explicit(&s->bits, &old, sum,
			memory_order_relaxed, memory_order_relaxed));
}

/* See metrics_private.h. */
uint64_t
metrics_read_buckets(const struct metrics_series *s, uint64_t *out)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i <= s->family->desc.nbounds; i++) {
		out[i] = atomic_load_explicit(&s->buckets[i],
					      memory_order_relaxed);
		total += out[i];
	}
	return total;
}

double
metrics_value(const struct metrics_series *s)
{
	uint64_t buckets[METRICS_BOUNDS_MAX + 1];

	if (s == NULL)
		return 0;
	if (s->family->desc.type == METRICS_HISTOGRAM)
		return (double)metrics_read_buckets(s, buckets);
	return (double)atomic_load_explicit(&s->count, memory_order_relaxed) +
	       bits_to_double(atomic_load_explicit(&s->bits,
						   memory_order_relaxed));
}
