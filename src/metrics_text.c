/*
 * metrics_text.c - see metrics.h: the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Every value is read once, with no lock: a render runs while other
 * threads count, and shows each count as it was when read.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_private.h"

/* A growing string; `failed` once out of memory, then it takes nothing. */
struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap > 0 ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/*
 * s escaped as the format wants: a backslash and a newline always, a
 * double quote in label values only (not in HELP).
 */
static void
put_escaped(struct buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" :
				  *s == '"' && quote ? "\\\"" : NULL;

		if (esc == NULL)
			continue;
		put(b, run, (size_t)(s - run));
		puts_(b, esc);
		run = s + 1;
	}
	put(b, run, (size_t)(s - run));
}

/*
 * v as the format wants it ("NaN", "+Inf", "-Inf"), in the fewest digits
 * that read back as v: 0.1 and not 0.10000000000000001.
 */
static void
format_double(char *out, size_t size, double v)
{
	int prec;

	if (isnan(v)) {
		snprintf(out, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
	snprintf(out, size, "%.17g", v);
}

/*
 * One sample line: NAME SUFFIX{labels[,le="LE"]} VALUE.  le is NULL but
 * for buckets.
 */
static void
put_sample(struct buf *b, const struct metrics_series *s,
	   const char *suffix, const char *le, const char *value)
{
	const struct metrics_desc *d = &s->family->desc;
	size_t i;

	puts_(b, d->name);
	puts_(b, suffix);
	if (d->nlabels > 0 || le != NULL) {
		puts_(b, "{");
		for (i = 0; i < d->nlabels; i++) {
			if (i > 0)
				puts_(b, ",");
			puts_(b, d->labels[i]);
			puts_(b, "=\"");
			put_escaped(b, s->values[i], true);
			puts_(b, "\"");
		}
		if (le != NULL) {
			puts_(b, d->nlabels > 0 ? ",le=\"" : "le=\"");
			puts_(b, le);
			puts_(b, "\"");
		}
		puts_(b, "}");
	}
	puts_(b, " ");
	puts_(b, value);
	puts_(b, "\n");
}

static void
put_histogram(struct buf *b, const struct metrics_series *s)
{
	const struct metrics_family *f = s->family;
	uint64_t buckets[METRICS_BOUNDS_MAX + 1], total, cumulative = 0;
	char value[32], le[32];
	size_t i;

	total = metrics_read_buckets(s, buckets);
	for (i = 0; i < f->desc.nbounds; i++) {
		cumulative += buckets[i];
		format_double(le, sizeof(le), f->bounds[i]);
		snprintf(value, sizeof(value), "%" PRIu64, cumulative);
		put_sample(b, s, "_bucket", le, value);
	}
	snprintf(value, sizeof(value), "%" PRIu64, total);
	put_sample(b, s, "_bucket", "+Inf", value);
	format_double(value, sizeof(value), bits_to_double(
		atomic_load_explicit(&s->bits, memory_order_relaxed)));
	put_sample(b, s, "_sum", NULL, value);
	snprintf(value, sizeof(value), "%" PRIu64, total);
	put_sample(b, s, "_count", NULL, value);
}

/* A counter or gauge: a whole count exactly, a set value as a double. */
static void
put_value(struct buf *b, const struct metrics_series *s)
{
	uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
	double set = bits_to_double(atomic_load_explicit(&s->bits,
							 memory_order_relaxed));
	char value[32];

	if (set == 0)
		snprintf(value, sizeof(value), "%" PRIu64, count);
	else
		format_double(value, sizeof(value), (double)count + set);
	put_sample(b, s, "", NULL, value);
}

static void
put_family(struct buf *b, struct metrics_family *f)
{
	static const char *const types[] = {
		[METRICS_COUNTER] = "counter",
		[METRICS_GAUGE] = "gauge",
		[METRICS_HISTOGRAM] = "histogram",
	};
	size_t i, n = atomic_load_explicit(&f->nseries, memory_order_acquire);

	puts_(b, "# HELP ");
	puts_(b, f->desc.name);
	puts_(b, " ");
	put_escaped(b, f->desc.help, false);
	puts_(b, "\n# TYPE ");
	puts_(b, f->desc.name);
	puts_(b, " ");
	puts_(b, types[f->desc.type]);
	puts_(b, "\n");
	for (i = 0; i < n; i++) {
		if (f->desc.type == METRICS_HISTOGRAM)
			put_histogram(b, f->order[i]);
		else
			put_value(b, f->order[i]);
	}
}

char *
metrics_render(struct metrics *m, size_t *len)
{
	struct buf b = { NULL, 0, 0, false };
	struct metrics_family *f;

	for (f = m->first; f != NULL; f = f->next)
		put_family(&b, f);
	if (b.p == NULL)
		put(&b, "", 0);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
