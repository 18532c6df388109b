/*
 * check_store.c - the store's writer (store.c) against a backend of the
 * test's own: changes are committed in batches and in order, store_sync()
 * waits for them, a failing backend makes syncs fail at once and loses
 * nothing once it recovers, a close commits what is left, and the memory
 * backend keeps nothing.
 *
 * The fake backend keeps the ids it was given, in order, under a lock,
 * and fails while `failing` is set.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"
#include "store/store.h"

#define MAX_IDS 20000

static struct fake {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	char (*ids)[STORE_ID_MAX];	/* committed, in order */
	char (*results)[16];		/* each one's result */
	size_t n;
	unsigned batches;
	size_t largest;			/* changes in one batch */
	bool failing;
	unsigned failed;		/* batches refused */
} fake;

static void *
fake_open(const struct store_options *o, char *err, size_t errsize)
{
	(void)o;
	(void)err;
	(void)errsize;
	return &fake;
}

static int
fake_write_batch(void *b, const struct store_change *c, size_t n)
{
	struct fake *f = b;
	size_t i;

	pthread_mutex_lock(&f->lock);
	if (f->failing) {
		f->failed++;
		pthread_cond_broadcast(&f->changed);
		pthread_mutex_unlock(&f->lock);
		return -1;
	}
	for (i = 0; i < n && f->n < MAX_IDS; i++, f->n++) {
		ck_assert(!c[i].is_run);
		memcpy(f->ids[f->n], c[i].u.job.id, STORE_ID_MAX);
		snprintf(f->results[f->n], sizeof(f->results[0]), "%s",
			 c[i].u.job.result != NULL ? c[i].u.job.result : "");
	}
	f->batches++;
	if (n > f->largest)
		f->largest = n;
	pthread_cond_broadcast(&f->changed);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* job_get: times out while get_timing_out, else finds nothing. */
static atomic_bool get_timing_out;
static atomic_uint get_calls;

static int
fake_get(void *b, const char *id, struct store_job *out)
{
	(void)b;
	(void)id;
	(void)out;
	atomic_fetch_add(&get_calls, 1);
	if (atomic_load(&get_timing_out)) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 1;
}

static int
fake_run_get(void *b, const char *id, struct store_run *out)
{
	(void)b;
	(void)id;
	(void)out;
	return 1;
}

static int
fake_list(void *b, const struct store_filter *f, uint64_t before,
	  size_t limit, struct store_job *out, uint64_t *next)
{
	(void)b;
	(void)f;
	(void)before;
	(void)limit;
	(void)out;
	*next = 0;
	return 0;
}

static int
fake_expire(void *b, int64_t before_ns)
{
	(void)b;
	(void)before_ns;
	return 0;
}

static void
fake_close(void *b)
{
	(void)b;
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.write_batch = fake_write_batch,
	.job_get = fake_get,
	.run_get = fake_run_get,
	.job_list = fake_list,
	.expire = fake_expire,
	.close = fake_close,
};

static const struct store_options options = {
	.backend = STORE_SQLITE,	/* any but memory: it has a writer */
	.instance = "test",
	.retain_ns = INT64_C(3600000000000),
};

static void
setup(void)
{
	pthread_mutex_init(&fake.lock, NULL);
	pthread_cond_init(&fake.changed, NULL);
	fake.ids = calloc(MAX_IDS, sizeof(*fake.ids));
	fake.results = calloc(MAX_IDS, sizeof(*fake.results));
	ck_assert_ptr_nonnull(fake.ids);
	ck_assert_ptr_nonnull(fake.results);
	fake.n = fake.batches = fake.largest = fake.failed = 0;
	fake.failing = false;
}

static void
teardown(void)
{
	free(fake.ids);
	free(fake.results);
	pthread_cond_destroy(&fake.changed);
	pthread_mutex_destroy(&fake.lock);
}

static struct store *
open_fake(void)
{
	char err[256] = "";
	struct store *s = store_open_with(&fake_ops, &options, err,
					  sizeof(err));

	ck_assert_msg(s != NULL, "store_open_with: %s", err);
	return s;
}

static void
change(struct store *s, unsigned i, const char *result)
{
	struct store_job rec;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "test-%u", i);
	snprintf(rec.job, sizeof(rec.job), "x");
	rec.state = STORE_SUCCEEDED;
	rec.result = (char *)result;
	ck_assert_int_eq(store_job_changed(s, &rec), 0);
}

/* Every change is committed, in the order made, in few batches. */
START_TEST(test_batches_in_order)
{
	struct store *s = open_fake();
	struct store_stats st;
	char want[STORE_ID_MAX];
	unsigned i;

	for (i = 0; i < 5000; i++)
		change(s, i, "r");
	ck_assert_int_eq(store_sync(s), 0);
	pthread_mutex_lock(&fake.lock);
	ck_assert_uint_eq(fake.n, 5000);
	for (i = 0; i < 5000; i++) {
		snprintf(want, sizeof(want), "test-%u", i);
		ck_assert_str_eq(fake.ids[i], want);
	}
	/* 5,000 changes made in a burst take a handful of commits. */
	ck_assert_uint_lt(fake.batches, 100);
	pthread_mutex_unlock(&fake.lock);
	st = store_stats(s);
	ck_assert_uint_eq(st.committed, 5000);
	ck_assert_uint_eq(st.batches, fake.batches);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert(st.available);
	store_close(s);
}
END_TEST

/* A sync sees the change made just before it, without the batch wait. */
START_TEST(test_sync_sees_last_change)
{
	struct store *s = open_fake();
	unsigned i;

	for (i = 0; i < 50; i++) {
		change(s, i, "r");
		ck_assert_int_eq(store_sync(s), 0);
		pthread_mutex_lock(&fake.lock);
		ck_assert_uint_eq(fake.n, i + 1);
		pthread_mutex_unlock(&fake.lock);
	}
	store_close(s);
}
END_TEST

/* The store copies the record: the caller's strings may go at once. */
START_TEST(test_copies_record)
{
	struct store *s = open_fake();
	char result[16];

	snprintf(result, sizeof(result), "first");
	change(s, 1, result);
	snprintf(result, sizeof(result), "second");
	ck_assert_int_eq(store_sync(s), 0);
	pthread_mutex_lock(&fake.lock);
	ck_assert_str_eq(fake.results[0], "first");
	pthread_mutex_unlock(&fake.lock);
	store_close(s);
}
END_TEST

/*
 * While the backend fails, a sync fails at once with EIO; once it
 * recovers, every change made meanwhile is committed, in order.
 */
START_TEST(test_failing_backend_loses_nothing)
{
	struct store *s = open_fake();
	struct timespec t0, t1;
	char want[STORE_ID_MAX];
	unsigned i;

	pthread_mutex_lock(&fake.lock);
	fake.failing = true;
	pthread_mutex_unlock(&fake.lock);
	change(s, 0, "r");
	/* Wait for the writer to try, and fail, once. */
	pthread_mutex_lock(&fake.lock);
	while (fake.failed == 0)
		pthread_cond_wait(&fake.changed, &fake.lock);
	pthread_mutex_unlock(&fake.lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(store_sync(s), -1);
	ck_assert_int_eq(errno, EIO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);	/* not the timeout */
	ck_assert(!store_stats(s).available);
	for (i = 1; i < 100; i++)
		change(s, i, "r");

	pthread_mutex_lock(&fake.lock);
	fake.failing = false;
	while (fake.n < 100)
		pthread_cond_wait(&fake.changed, &fake.lock);
	for (i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "test-%u", i);
		ck_assert_str_eq(fake.ids[i], want);
	}
	pthread_mutex_unlock(&fake.lock);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert(store_stats(s).available);
	ck_assert_uint_eq(store_stats(s).lost, 0);
	store_close(s);
}
END_TEST

static void
change_id(struct store *s, const char *id, const char *result)
{
	struct store_job rec;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "%s", id);
	rec.state = STORE_RUNNING;
	rec.result = (char *)result;
	ck_assert_int_eq(store_job_changed(s, &rec), 0);
}

/*
 * The changes of one id in a batch are written once: the last one's
 * record, at the first one's place.  The batch is made one for sure by
 * a backend that fails until every change is in.
 */
START_TEST(test_coalesce)
{
	struct store *s = open_fake();

	pthread_mutex_lock(&fake.lock);
	fake.failing = true;
	pthread_mutex_unlock(&fake.lock);
	change_id(s, "x", "0");
	pthread_mutex_lock(&fake.lock);
	while (fake.failed == 0)
		pthread_cond_wait(&fake.changed, &fake.lock);
	pthread_mutex_unlock(&fake.lock);
	change_id(s, "a", "1");
	change_id(s, "b", "1");
	change_id(s, "a", "2");
	change_id(s, "c", "1");
	change_id(s, "b", "2");
	change_id(s, "a", "3");
	pthread_mutex_lock(&fake.lock);
	fake.failing = false;
	while (fake.batches == 0)	/* the retry, with all of them */
		pthread_cond_wait(&fake.changed, &fake.lock);
	ck_assert_uint_eq(fake.batches, 1);
	ck_assert_uint_eq(fake.n, 4);
	ck_assert_str_eq(fake.ids[0], "x");
	ck_assert_str_eq(fake.ids[1], "a");
	ck_assert_str_eq(fake.results[1], "3");
	ck_assert_str_eq(fake.ids[2], "b");
	ck_assert_str_eq(fake.results[2], "2");
	ck_assert_str_eq(fake.ids[3], "c");
	pthread_mutex_unlock(&fake.lock);
	ck_assert_int_eq(store_sync(s), 0);
	/* Committed counts the changes made, folded or not. */
	ck_assert_uint_eq(store_stats(s).committed, 7);
	store_close(s);
}
END_TEST

/* A close commits what is still queued. */
START_TEST(test_close_commits)
{
	struct store *s = open_fake();
	unsigned i;

	for (i = 0; i < 3000; i++)
		change(s, i, "r");
	store_close(s);
	ck_assert_uint_eq(fake.n, 3000);
}
END_TEST

/* A close with a backend that stays down gives up, and counts the loss. */
START_TEST(test_close_gives_up)
{
	struct store *s = open_fake();
	struct timespec t0, t1;

	fake.failing = true;
	change(s, 0, "r");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	store_close(s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_uint_eq(fake.n, 0);
	/* STORE_TIMEOUT_NS (2 s), plus a retry's backoff at most. */
	ck_assert_int_le(t1.tv_sec - t0.tv_sec, 5);
}
END_TEST

/* Several threads changing at once: each change committed once. */
static void *
changer(void *arg)
{
	struct store *s = arg;
	static atomic_uint next;
	unsigned i, k;

	for (k = 0; k < 2000; k++) {
		i = atomic_fetch_add(&next, 1);
		change(s, i, "r");
		if (k % 500 == 0)
			ck_assert_int_eq(store_sync(s), 0);
	}
	return NULL;
}

START_TEST(test_threads)
{
	struct store *s = open_fake();
	pthread_t t[4];
	unsigned i, j;
	unsigned char *seen;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, changer, s), 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(store_sync(s), 0);
	seen = calloc(8000, 1);
	ck_assert_ptr_nonnull(seen);
	pthread_mutex_lock(&fake.lock);
	ck_assert_uint_eq(fake.n, 8000);
	for (i = 0; i < fake.n; i++) {
		ck_assert_int_eq(sscanf(fake.ids[i], "test-%u", &j), 1);
		ck_assert_uint_lt(j, 8000);
		ck_assert(!seen[j]);
		seen[j] = 1;
	}
	pthread_mutex_unlock(&fake.lock);
	free(seen);
	store_close(s);
}
END_TEST

/*
 * After a read timed out, reads fail at once without reaching the
 * backend, until one of them probes it a second later; an answer closes
 * the breaker.
 */
START_TEST(test_breaker)
{
	struct store *s = open_fake();
	struct store_job rec;
	struct timespec t0, t1;
	unsigned calls;
	int rc;

	atomic_store(&get_calls, 0);
	atomic_store(&get_timing_out, true);
	clock_gettime(CLOCK_MONOTONIC, &t0);	/* before it opens */
	ck_assert_int_eq(store_job_get(s, "x", &rec), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_uint_eq(atomic_load(&get_calls), 1);
	/* Open: fails at once, the backend untouched. */
	ck_assert_int_eq(store_job_get(s, "x", &rec), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_uint_eq(atomic_load(&get_calls), 1);
	/* A probe reaches the backend after STORE_BREAKER_NS, not before. */
	atomic_store(&get_timing_out, false);
	do {
		rc = store_job_get(s, "x", &rec);
		calls = atomic_load(&get_calls);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 10);
		if (calls == 1)		/* polled, not spun */
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	} while (calls == 1);
	ck_assert_int_eq(rc, 1);
	ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000000000 +
			 (t1.tv_nsec - t0.tv_nsec), STORE_BREAKER_NS);
	/* Closed again: every call reaches it. */
	ck_assert_int_eq(store_job_get(s, "x", &rec), 1);
	ck_assert_uint_eq(atomic_load(&get_calls), 3);
	store_close(s);
}
END_TEST

/* The memory backend keeps nothing, and has no queue. */
START_TEST(test_memory)
{
	struct store_options o = options;
	struct store_job rec;
	char err[64];
	struct store *s;

	o.backend = STORE_MEMORY;
	s = store_open(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(store_backend(s), STORE_MEMORY);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "a-1");
	ck_assert_int_eq(store_job_changed(s, &rec), 0);
	ck_assert_int_eq(store_sync(s), 0);
	ck_assert_int_eq(store_job_get(s, "a-1", &rec), 1);
	ck_assert(!store_has_queue(s));
	ck_assert_int_eq(store_enqueue(s, &rec), -1);
	ck_assert_int_eq(errno, ENOTSUP);
	store_close(s);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("writer");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_batches_in_order);
	tcase_add_test(tc, test_sync_sees_last_change);
	tcase_add_test(tc, test_copies_record);
	tcase_add_test(tc, test_failing_backend_loses_nothing);
	tcase_add_test(tc, test_coalesce);
	tcase_add_test(tc, test_close_commits);
	tcase_add_test(tc, test_close_gives_up);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_breaker);
	tcase_add_test(tc, test_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
