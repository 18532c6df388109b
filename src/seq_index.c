/*
 * seq_index.c - see seq_index.h.
 *
 * Invariants, kept by every function: slots [start, end) are sorted by
 * seq, strictly; `holes` counts those with no item; the slots at start
 * and end - 1 are items (or the index is empty, with start = end = 0);
 * there are no more holes than items.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "seq_index.h"

#define SEQ_INDEX_MIN_CAP 64

static size_t
item_count(const struct seq_index *x)
{
	return x->end - x->start - x->holes;
}

/* The first slot in use whose number is >= seq; end if none. */
static size_t
lower_bound(const struct seq_index *x, uint64_t seq)
{
	size_t lo = x->start, hi = x->end, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x->slots[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Moves the items down to slots [0, n), leaving out the holes. */
static void
compact(struct seq_index *x)
{
	size_t i, n = 0;

	for (i = x->start; i < x->end; i++)
		if (x->slots[i].item != NULL)
			x->slots[n++] = x->slots[i];
	x->start = 0;
	x->end = n;
	x->holes = 0;
}

/* Reallocates the array to cap slots (>= end); false if out of memory. */
static bool
resize(struct seq_index *x, size_t cap)
{
	struct seq_index_slot *s = realloc(x->slots, cap * sizeof(*s));

	if (s == NULL)
		return false;
	x->slots = s;
	x->cap = cap;
	return true;
}

/*
 * Room for a slot at the end: closing up the holes and the free slots
 * below start when that frees at least half of the array, growing it
 * (doubling) only when it is at least half full of items.  Either is O(n)
 * once per n/2 adds at least.  False if out of memory, nothing changed.
 */
static bool
make_room(struct seq_index *x)
{
	if (x->end < x->cap)
		return true;
	if (x->cap > 0 && item_count(x) < x->cap / 2) {
		compact(x);
		return true;
	}
	return resize(x, x->cap == 0 ? SEQ_INDEX_MIN_CAP : x->cap * 2);
}

/*
 * Gives memory back after a burst: halves the array when less than an
 * eighth of it holds items (the hysteresis against make_room() keeps it
 * from flapping).  A failed shrink keeps the larger array.
 */
static void
maybe_shrink(struct seq_index *x)
{
	if (x->cap <= SEQ_INDEX_MIN_CAP || item_count(x) * 8 >= x->cap)
		return;
	compact(x);
	resize(x, x->cap / 2);
}

void
seq_index_init(struct seq_index *x)
{
	memset(x, 0, sizeof(*x));
}

void
seq_index_clear(struct seq_index *x)
{
	free(x->slots);
	seq_index_init(x);
}

int
seq_index_add(struct seq_index *x, uint64_t seq, void *item)
{
	struct seq_index_slot slot = { seq, item };
	size_t i;

	/* The usual case: newer than every slot. */
	if (x->end == x->start || x->slots[x->end - 1].seq < seq) {
		if (!make_room(x)) {
			errno = ENOMEM;
			return -1;
		}
		x->slots[x->end++] = slot;
		return 0;
	}
	/* A late add: to its place among the newest few, as a rule. */
	i = lower_bound(x, seq);
	if (x->slots[i].seq == seq) {	/* i < end: the last slot is newer */
		if (x->slots[i].item != NULL) {
			errno = EEXIST;
			return -1;
		}
		x->slots[i].item = item;
		x->holes--;
		return 0;
	}
	if (i == x->start && x->start > 0) {
		x->slots[--x->start] = slot;
		return 0;
	}
	if (x->end == x->cap) {
		if (!make_room(x)) {
			errno = ENOMEM;
			return -1;
		}
		i = lower_bound(x, seq);	/* a compaction moved it */
	}
	memmove(&x->slots[i + 1], &x->slots[i],
		(x->end - i) * sizeof(x->slots[0]));
	x->slots[i] = slot;
	x->end++;
	return 0;
}

bool
seq_index_remove(struct seq_index *x, uint64_t seq)
{
	/* The oldest first, as the registry drops them: no search. */
	size_t i = x->start < x->end && x->slots[x->start].seq == seq ?
		   x->start : lower_bound(x, seq);

	if (i == x->end || x->slots[i].seq != seq || x->slots[i].item == NULL)
		return false;
	x->slots[i].item = NULL;
	x->holes++;
	/* Each hole is passed over here once at most: amortized O(1). */
	while (x->start < x->end && x->slots[x->start].item == NULL) {
		x->start++;
		x->holes--;
	}
	while (x->end > x->start && x->slots[x->end - 1].item == NULL) {
		x->end--;
		x->holes--;
	}
	if (x->start == x->end)
		x->start = x->end = 0;
	else if (x->holes > item_count(x))
		compact(x);	/* O(n) once per n/2 removes at least */
	maybe_shrink(x);
	return true;
}

size_t
seq_index_count(const struct seq_index *x)
{
	return item_count(x);
}

uint64_t
seq_index_walk(const struct seq_index *x, uint64_t before, size_t max,
	       seq_index_visit_fn visit, void *arg)
{
	size_t i = before == 0 ? x->end : lower_bound(x, before);
	size_t looked = 0;

	if (max == 0)
		max = 1;
	while (i > x->start && looked < max) {
		const struct seq_index_slot *s = &x->slots[--i];

		looked++;
		if (s->item != NULL && visit(s->item, s->seq, arg))
			break;
	}
	/* The slot at start is an item: above it, one is left below. */
	return i > x->start ? x->slots[i].seq : 0;
}

size_t
seq_index_slots(const struct seq_index *x)
{
	return x->end - x->start;
}

size_t
seq_index_capacity(const struct seq_index *x)
{
	return x->cap;
}
