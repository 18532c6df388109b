/*
 * check_seq_index.c - unit tests for src/seq_index.c: walks newest first
 * from any number, with a bound on the slots looked at; late adds; holes
 * closed up; memory given back; and paging against a model of random
 * adds and removes (no item twice, none missed, whatever happens between
 * two pages).
 *
 * Items are pointers into a static array of markers, so that a walk's
 * visit can tell which number an item was added under.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seq_index.h"

#define N 5000

static char marks[N + 1];	/* item of number s: &marks[s] */

static void *
item(uint64_t seq)
{
	return &marks[seq];
}

/* What a walk saw, in order, and when it is to stop. */
struct seen {
	uint64_t seqs[N + 1];
	size_t n;
	size_t stop_after;	/* 0: never stop */
};

static bool
record(void *it, uint64_t seq, void *arg)
{
	struct seen *s = arg;

	ck_assert_ptr_eq(it, item(seq));
	ck_assert_uint_lt(s->n, N + 1);
	s->seqs[s->n++] = seq;
	return s->stop_after != 0 && s->n == s->stop_after;
}

/* Walks from before, at most max slots, stopping after `stop` items. */
static uint64_t
walk(struct seq_index *x, uint64_t before, size_t max, size_t stop,
     struct seen *s)
{
	s->n = 0;
	s->stop_after = stop;
	return seq_index_walk(x, before, max, record, s);
}

static void
add(struct seq_index *x, uint64_t seq)
{
	ck_assert_int_eq(seq_index_add(x, seq, item(seq)), 0);
}

static void
add_range(struct seq_index *x, uint64_t from, uint64_t to)
{
	uint64_t s;

	for (s = from; s <= to; s++)
		add(x, s);
}

static struct seen seen;	/* 40 KiB: not on the stack */

START_TEST(test_empty_index_walks_nothing_and_has_no_next)
{
	struct seq_index x;

	seq_index_init(&x);
	ck_assert_uint_eq(walk(&x, 0, 100, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 0);
	ck_assert_uint_eq(walk(&x, 7, 100, 0, &seen), 0);
	ck_assert_uint_eq(seq_index_count(&x), 0);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_walk_is_newest_first_and_ends_with_0)
{
	struct seq_index x;
	size_t i;

	seq_index_init(&x);
	add_range(&x, 1, 10);
	ck_assert_uint_eq(walk(&x, 0, 100, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 10);
	for (i = 0; i < 10; i++)
		ck_assert_uint_eq(seen.seqs[i], 10 - i);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_walk_stopped_by_visit_returns_the_last_seen_to_go_on)
{
	struct seq_index x;
	uint64_t next;

	seq_index_init(&x);
	add_range(&x, 1, 10);
	next = walk(&x, 0, 100, 4, &seen);
	ck_assert_uint_eq(seen.n, 4);
	ck_assert_uint_eq(seen.seqs[3], 7);
	ck_assert_uint_eq(next, 7);
	next = walk(&x, next, 100, 4, &seen);
	ck_assert_uint_eq(seen.seqs[0], 6);
	ck_assert_uint_eq(next, 3);
	next = walk(&x, next, 100, 4, &seen);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_uint_eq(seen.seqs[1], 1);
	ck_assert_uint_eq(next, 0);
	seq_index_clear(&x);
}
END_TEST

/* A page that ends on the oldest item says there is no next one. */
START_TEST(test_walk_stopped_on_the_oldest_item_has_no_next)
{
	struct seq_index x;

	seq_index_init(&x);
	add_range(&x, 1, 4);
	ck_assert_uint_eq(walk(&x, 0, 100, 4, &seen), 0);
	ck_assert_uint_eq(seen.n, 4);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_walk_resumes_below_a_number_whose_item_was_removed)
{
	struct seq_index x;

	seq_index_init(&x);
	add_range(&x, 1, 10);
	ck_assert(seq_index_remove(&x, 6));
	ck_assert(seq_index_remove(&x, 5));
	ck_assert_uint_eq(walk(&x, 6, 100, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 4);
	ck_assert_uint_eq(seen.seqs[0], 4);
	/* A number never added, above them all: from the newest. */
	ck_assert_uint_eq(walk(&x, 1000, 100, 1, &seen), 10);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_walk_looks_at_most_max_slots_holes_included)
{
	struct seq_index x;
	uint64_t next;
	uint64_t s;

	seq_index_init(&x);
	add_range(&x, 1, 100);
	for (s = 41; s <= 60; s++)	/* 20 holes, fewer than the items */
		ck_assert(seq_index_remove(&x, s));
	ck_assert_uint_eq(seq_index_slots(&x), 100);
	/* 100..61 (40 items), then 10 of the holes. */
	next = walk(&x, 0, 50, 0, &seen);
	ck_assert_uint_eq(seen.n, 40);
	ck_assert_uint_eq(next, 51);
	/* The other 10 holes, then 40..6: item 5 and below are left. */
	next = walk(&x, next, 45, 0, &seen);
	ck_assert_uint_eq(seen.n, 35);
	ck_assert_uint_eq(seen.seqs[0], 40);
	ck_assert_uint_eq(next, 6);
	next = walk(&x, next, 45, 0, &seen);
	ck_assert_uint_eq(seen.n, 5);
	ck_assert_uint_eq(seen.seqs[4], 1);
	ck_assert_uint_eq(next, 0);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_late_add_goes_to_its_place)
{
	struct seq_index x;
	size_t i;
	static const uint64_t want[] = { 9, 8, 7, 5, 2, 1 };

	seq_index_init(&x);
	add(&x, 2);
	add(&x, 5);
	add(&x, 9);
	add(&x, 7);	/* behind 9 */
	add(&x, 1);	/* behind them all */
	add(&x, 8);
	ck_assert_uint_eq(walk(&x, 0, 100, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 6);
	for (i = 0; i < 6; i++)
		ck_assert_uint_eq(seen.seqs[i], want[i]);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_add_of_a_number_in_use_fails_with_EEXIST)
{
	struct seq_index x;

	seq_index_init(&x);
	add_range(&x, 1, 3);
	errno = 0;
	ck_assert_int_eq(seq_index_add(&x, 2, item(2)), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(seq_index_add(&x, 3, item(3)), -1);
	ck_assert_uint_eq(seq_index_count(&x), 3);
	/* Removed, its number may come back (its hole takes it). */
	ck_assert(seq_index_remove(&x, 2));
	add(&x, 2);
	ck_assert_uint_eq(seq_index_count(&x), 3);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_remove_of_an_absent_number_changes_nothing)
{
	struct seq_index x;

	seq_index_init(&x);
	ck_assert(!seq_index_remove(&x, 1));
	add_range(&x, 1, 3);
	ck_assert(!seq_index_remove(&x, 4));
	ck_assert(seq_index_remove(&x, 2));
	ck_assert(!seq_index_remove(&x, 2));
	ck_assert_uint_eq(seq_index_count(&x), 2);
	seq_index_clear(&x);
}
END_TEST

/*
 * A long-lived oldest item keeps the holes behind it from being dropped
 * at the low end: they are closed up once they outnumber the items.
 */
START_TEST(test_holes_behind_a_long_lived_item_never_outnumber_the_items)
{
	struct seq_index x;
	uint64_t s;

	seq_index_init(&x);
	add(&x, 1);
	for (s = 2; s <= N; s++) {
		add(&x, s);
		if (s > 101)	/* all but item 1 go 100 adds later */
			ck_assert(seq_index_remove(&x, s - 100));
		ck_assert_uint_le(seq_index_slots(&x),
				  2 * seq_index_count(&x));
	}
	ck_assert_uint_eq(seq_index_count(&x), 101);
	ck_assert_uint_eq(walk(&x, 0, 1000, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 101);
	ck_assert_uint_eq(seen.seqs[100], 1);
	ck_assert_uint_le(seq_index_capacity(&x), 512);
	seq_index_clear(&x);
}
END_TEST

START_TEST(test_memory_comes_back_after_a_burst)
{
	struct seq_index x;
	uint64_t s;

	seq_index_init(&x);
	add_range(&x, 1, N);
	ck_assert_uint_ge(seq_index_capacity(&x), N);
	for (s = 1; s <= N - 10; s++)
		ck_assert(seq_index_remove(&x, s));
	ck_assert_uint_le(seq_index_capacity(&x), 128);
	ck_assert_uint_eq(walk(&x, 0, 100, 0, &seen), 0);
	ck_assert_uint_eq(seen.n, 10);
	ck_assert_uint_eq(seen.seqs[9], N - 9);
	for (s = N - 9; s <= N; s++)
		ck_assert(seq_index_remove(&x, s));
	ck_assert_uint_eq(seq_index_slots(&x), 0);
	seq_index_clear(&x);
}
END_TEST

/*
 * Pages over an index that changes between them, against a model: items
 * are added above (and a few late, below the newest), removed anywhere.
 * Whatever happens, a paged walk sees each item that lives through the
 * whole walk exactly once, newest first, and nothing it saw twice.
 */
START_TEST(test_paging_against_a_model_of_random_changes)
{
	static bool present[N + 1], got[N + 1];
	struct seq_index x;
	uint64_t next_seq = 1, before, s, prev;
	unsigned round;
	size_t i, k;

	srandom(12345);
	for (round = 0; round < 20; round++) {
		memset(present, 0, sizeof(present));
		memset(got, 0, sizeof(got));
		seq_index_init(&x);
		next_seq = 1;
		for (i = 0; i < 1000; i++, next_seq++) {
			add(&x, next_seq);
			present[next_seq] = true;
		}
		/* Keep: the items alive at the start that no step removes. */
		before = 0;
		prev = UINT64_MAX;
		do {
			size_t max = 1 + (size_t)random() % 64;

			before = walk(&x, before, max, 1 + (size_t)random() % 20,
				      &seen);
			for (i = 0; i < seen.n; i++) {
				ck_assert_uint_lt(seen.seqs[i], prev);
				prev = seen.seqs[i];
				ck_assert(present[prev]);
				ck_assert(!got[prev]);
				got[prev] = true;
			}
			/* Between pages: adds (some late) and removes. */
			for (k = random() % 8; k > 0 && next_seq < N - 10; k--) {
				uint64_t late = next_seq + 1 + random() % 3;

				add(&x, late);	/* leaves gaps filled below */
				present[late] = true;
				for (s = next_seq; s < late; s++) {
					add(&x, s);
					present[s] = true;
				}
				next_seq = late + 1;
			}
			for (k = random() % 30; k > 0; k--) {
				s = 1 + (uint64_t)random() % (next_seq - 1);
				if (present[s] && (s > 1000 || random() % 2)) {
					ck_assert(seq_index_remove(&x, s));
					present[s] = false;
				}
			}
		} while (before != 0);
		/* Every item of the first 1000 still there was seen. */
		for (s = 1; s <= 1000; s++)
			ck_assert_msg(!present[s] || got[s],
				      "round %u: item %llu was missed", round,
				      (unsigned long long)s);
		ck_assert_uint_le(seq_index_slots(&x),
				  2 * seq_index_count(&x) + 1);
		seq_index_clear(&x);
	}
}
END_TEST

static Suite *
seq_index_suite(void)
{
	Suite *s = suite_create("seq_index");
	TCase *tc = tcase_create("walk");

	tcase_add_test(tc, test_empty_index_walks_nothing_and_has_no_next);
	tcase_add_test(tc, test_walk_is_newest_first_and_ends_with_0);
	tcase_add_test(tc, test_walk_stopped_by_visit_returns_the_last_seen_to_go_on);
	tcase_add_test(tc, test_walk_stopped_on_the_oldest_item_has_no_next);
	tcase_add_test(tc, test_walk_resumes_below_a_number_whose_item_was_removed);
	tcase_add_test(tc, test_walk_looks_at_most_max_slots_holes_included);
	suite_add_tcase(s, tc);

	tc = tcase_create("change");
	tcase_add_test(tc, test_late_add_goes_to_its_place);
	tcase_add_test(tc, test_add_of_a_number_in_use_fails_with_EEXIST);
	tcase_add_test(tc, test_remove_of_an_absent_number_changes_nothing);
	tcase_add_test(tc, test_holes_behind_a_long_lived_item_never_outnumber_the_items);
	tcase_add_test(tc, test_memory_comes_back_after_a_burst);
	tcase_add_test(tc, test_paging_against_a_model_of_random_changes);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(seq_index_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
