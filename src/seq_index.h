/*
 * seq_index.h - items in the order of a sequence number, walked newest
 * first from any number: the order of a listing paged with a cursor
 * (GET /jobs; GET /runs can use the same).
 *
 * Each item has a unique sequence number, given when it was created, and
 * items are added nearly in that order (an add may come a little late,
 * behind a few newer ones: it goes to its place all the same).  They are
 * removed in any order.  A walk starts below any number, whether or not
 * an item still has it, so a cursor that is a sequence number stays put
 * while items are added above it and removed anywhere.
 *
 * A sorted array of (seq, item) slots.  A removed item leaves a hole that
 * keeps its number, so the array stays sorted and a binary search finds
 * any number in O(log n).  Holes at either end are dropped at once; those
 * between items (behind a long-lived item) once they outnumber the items,
 * by one pass that closes them up (amortized O(1) a remove).  So a walk
 * looks at no more holes than there are items, and the slot at the low
 * end is always an item.
 *
 * Not thread-safe: its owner's lock guards it.  It holds no references:
 * the owner removes an item before letting go of it.
 */
#ifndef TASKPOOLD_SEQ_INDEX_H
#define TASKPOOLD_SEQ_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seq_index_slot {
	uint64_t seq;
	void *item;		/* NULL: a hole */
};

struct seq_index {
	struct seq_index_slot *slots;
	size_t cap;
	size_t start, end;	/* the slots in use: [start, end) */
	size_t holes;		/* among them */
};

/* An empty index (no memory yet).  This function can't fail. */
void seq_index_init(struct seq_index *x);

/* Frees the array; the index is empty again.  The items are the owner's. */
void seq_index_clear(struct seq_index *x);

/*
 * Adds item (borrowed, not NULL) with number seq (not 0).  Returns 0, or
 * -1 with errno ENOMEM or EEXIST (an item has that number), having
 * changed nothing.
 */
int seq_index_add(struct seq_index *x, uint64_t seq, void *item);

/* Removes the item with number seq; false if there is none. */
bool seq_index_remove(struct seq_index *x, uint64_t seq);

/* How many items it holds. */
size_t seq_index_count(const struct seq_index *x);

/*
 * Called on each item of a walk, with its number; returns true to stop
 * the walk there (a page is full), false to go on.
 */
typedef bool (*seq_index_visit_fn)(void *item, uint64_t seq, void *arg);

/*
 * Walks the items numbered below `before` (0: every item), newest first,
 * calling visit on each, until visit returns true or `max` slots (items
 * and holes; 0 counts as 1) have been looked at.  Returns the number to pass as `before`
 * to go on where it stopped: that of the last slot looked at, or 0 when
 * no item is left below it.  This function can't fail.
 */
uint64_t seq_index_walk(const struct seq_index *x, uint64_t before,
			size_t max, seq_index_visit_fn visit, void *arg);

/* Slots in use and allocated, holes included.  For tests. */
size_t seq_index_slots(const struct seq_index *x);
size_t seq_index_capacity(const struct seq_index *x);

#endif
