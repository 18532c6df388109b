/*
 * check_run_table.c - the API's runs by id and by idempotency key: ids,
 * lookups, the bound and what it pushes out, expiry in the order runs got
 * done, and paging newest first by cursor.
 *
 * The runs are bare calls (no jobs, no request): the table only reads
 * their links, key and times.  Every reference a test takes is given back,
 * so the sanitizer build's leak check covers the table's own.
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_call.h"
#include "api_run_table.h"

#define NS_PER_S INT64_C(1000000000)
#define PREFIX "t-0000abcd-"

/* A bare call with its creator's reference; key copied (NULL: none). */
static struct call *
bare_call(const char *key)
{
	struct call *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	if (key != NULL)
		c->idempotency_key = strdup(key);
	return c;
}

/* Adds a new bare call and drops the creator's reference: the table's. */
static struct call *
add(struct api_run_table *t, const char *key)
{
	struct call *c = bare_call(key), *existing;

	ck_assert_int_eq(api_run_table_add(t, c, &existing), 0);
	ck_assert_ptr_null(existing);
	call_unref(c);
	return c;
}

static unsigned
refs(struct call *c)
{
	return atomic_load(&c->refs);
}

START_TEST(test_ids_follow_the_prefix_and_are_found)
{
	struct api_run_table *t = api_run_table_new(16, NS_PER_S, PREFIX);
	struct call *a = add(t, NULL), *b = add(t, NULL), *f;

	ck_assert_str_eq(a->id, PREFIX "r1");
	ck_assert_str_eq(b->id, PREFIX "r2");
	f = api_run_table_find(t, PREFIX "r2");
	ck_assert_ptr_eq(f, b);
	ck_assert_uint_eq(refs(b), 2);
	call_unref(f);
	ck_assert_ptr_null(api_run_table_find(t, PREFIX "r3"));
	ck_assert_ptr_null(api_run_table_find(t, "r1"));
	ck_assert_uint_eq(api_run_table_count(t), 2);
	api_run_table_free(t);
}
END_TEST

START_TEST(test_a_key_is_taken_once)
{
	struct api_run_table *t = api_run_table_new(16, NS_PER_S, PREFIX);
	struct call *a = add(t, "k1"), *dup = bare_call("k1"), *existing, *f;

	ck_assert_int_eq(api_run_table_add(t, dup, &existing), 1);
	ck_assert_ptr_eq(existing, a);
	ck_assert_str_eq(dup->id, "");		/* no id: not added */
	call_unref(existing);
	call_unref(dup);
	f = api_run_table_find_key(t, "k1");
	ck_assert_ptr_eq(f, a);
	call_unref(f);
	ck_assert_ptr_null(api_run_table_find_key(t, "k2"));
	/* Gone with its run: the key is free again. */
	api_run_table_done(t, a, 1);
	ck_assert_uint_eq(api_run_table_expire(t, 1 + NS_PER_S, 100), 1);
	ck_assert_ptr_null(api_run_table_find_key(t, "k1"));
	add(t, "k1");
	api_run_table_free(t);
}
END_TEST

START_TEST(test_full_table_pushes_out_the_first_done_never_a_live_one)
{
	struct api_run_table *t = api_run_table_new(16, NS_PER_S, PREFIX);
	struct call *runs[20], *f;
	int i;

	for (i = 0; i < 16; i++)
		runs[i] = add(t, NULL);
	/* Done in the order 5, 2: 5 goes first, whatever its age. */
	api_run_table_done(t, runs[5], 10);
	api_run_table_done(t, runs[2], 20);
	runs[16] = add(t, NULL);
	ck_assert_ptr_null(api_run_table_find(t, PREFIX "r6"));
	ck_assert_uint_eq(api_run_table_count(t), 16);
	runs[17] = add(t, NULL);
	ck_assert_ptr_null(api_run_table_find(t, PREFIX "r3"));
	/* None done: the table grows past its bound rather than drop one. */
	runs[18] = add(t, NULL);
	ck_assert_uint_eq(api_run_table_count(t), 17);
	f = api_run_table_find(t, PREFIX "r1");
	ck_assert_ptr_eq(f, runs[0]);
	call_unref(f);
	api_run_table_free(t);
}
END_TEST

START_TEST(test_expiry_takes_runs_done_longer_than_retain)
{
	struct api_run_table *t = api_run_table_new(100, 10 * NS_PER_S,
						    PREFIX);
	struct call *a = add(t, NULL), *b = add(t, NULL), *c = add(t, NULL);

	api_run_table_done(t, b, 5 * NS_PER_S);
	api_run_table_done(t, a, 7 * NS_PER_S);
	ck_assert_uint_eq(api_run_table_expire(t, 14 * NS_PER_S, 100), 0);
	ck_assert_uint_eq(api_run_table_expire(t, 15 * NS_PER_S, 100), 1);
	ck_assert_uint_eq(api_run_table_count(t), 2);
	/* At most max a call. */
	api_run_table_done(t, c, 7 * NS_PER_S);
	ck_assert_uint_eq(api_run_table_expire(t, 60 * NS_PER_S, 1), 1);
	ck_assert_uint_eq(api_run_table_expire(t, 60 * NS_PER_S, 1), 1);
	ck_assert_uint_eq(api_run_table_expire(t, 60 * NS_PER_S, 1), 0);
	ck_assert_uint_eq(api_run_table_count(t), 0);
	/* A new retain applies at the next expiry. */
	a = add(t, NULL);
	api_run_table_done(t, a, 100 * NS_PER_S);
	api_run_table_set_limits(t, 100, NS_PER_S);
	ck_assert_uint_eq(api_run_table_expire(t, 101 * NS_PER_S, 100), 1);
	api_run_table_free(t);
}
END_TEST

/* Pages of `limit` from the newest: the ids' numbers, 0-terminated. */
static void
page(struct api_run_table *t, uint64_t after, size_t limit,
     const uint64_t *expect, uint64_t expect_next)
{
	struct call *out[64];
	uint64_t next;
	size_t n, i;

	n = api_run_table_list(t, after, limit, out, &next);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(out[i]->seq, expect[i]);
		call_unref(out[i]);
	}
	ck_assert_uint_eq(expect[n], 0);
	ck_assert_uint_eq(next, expect_next);
}

START_TEST(test_list_pages_newest_first_and_survives_expiry)
{
	struct api_run_table *t = api_run_table_new(100, NS_PER_S, PREFIX);
	struct call *runs[7];
	int i;

	for (i = 0; i < 7; i++)
		runs[i] = add(t, NULL);
	page(t, 0, 3, (const uint64_t[]){ 7, 6, 5, 0 }, 5);
	page(t, 5, 3, (const uint64_t[]){ 4, 3, 2, 0 }, 2);
	page(t, 2, 3, (const uint64_t[]){ 1, 0 }, 0);
	/* A run added meanwhile does not shift later pages. */
	add(t, NULL);
	page(t, 5, 3, (const uint64_t[]){ 4, 3, 2, 0 }, 2);
	/* The cursor's own run expired: the page starts where it was. */
	api_run_table_done(t, runs[4], 1);
	ck_assert_uint_eq(api_run_table_expire(t, 1 + NS_PER_S, 100), 1);
	page(t, 5, 3, (const uint64_t[]){ 4, 3, 2, 0 }, 2);
	page(t, 6, 2, (const uint64_t[]){ 4, 3, 0 }, 3);
	page(t, 0, 64, (const uint64_t[]){ 8, 7, 6, 4, 3, 2, 1, 0 }, 0);
	api_run_table_free(t);
}
END_TEST

START_TEST(test_remove_takes_a_run_out)
{
	struct api_run_table *t = api_run_table_new(16, NS_PER_S, PREFIX);
	struct call *a = bare_call("k"), *existing;

	ck_assert_int_eq(api_run_table_add(t, a, &existing), 0);
	api_run_table_remove(t, a);
	ck_assert_uint_eq(refs(a), 1);
	ck_assert_ptr_null(api_run_table_find_key(t, "k"));
	api_run_table_remove(t, a);		/* absent: nothing */
	call_unref(a);
	api_run_table_free(t);
	api_run_table_free(NULL);
}
END_TEST

static Suite *
run_table_suite(void)
{
	Suite *s = suite_create("run_table");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_ids_follow_the_prefix_and_are_found);
	tcase_add_test(tc, test_a_key_is_taken_once);
	tcase_add_test(tc,
		test_full_table_pushes_out_the_first_done_never_a_live_one);
	tcase_add_test(tc, test_expiry_takes_runs_done_longer_than_retain);
	tcase_add_test(tc, test_list_pages_newest_first_and_survives_expiry);
	tcase_add_test(tc, test_remove_takes_a_run_out);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(run_table_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
