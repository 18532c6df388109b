/*
 * api_run_table.c - see api_run_table.h.
 *
 * Two chained hash tables (by id, by idempotency key) and two lists: every
 * run in creation order (for listing), and the runs that are done in the
 * order they got done (for eviction and expiry, which take from its head:
 * O(1) a run, however many runs are still going).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_run_table.h"
#include "fnv.h"

#define MIN_BUCKETS 256

struct api_run_table {
	pthread_mutex_t lock;	/* guards everything below */
	struct call **by_id, **by_key;
	size_t nbuckets;	/* of each; a power of two */
	struct call *head, *tail;	/* every run, oldest first */
	struct call *done_head, *done_tail;	/* done ones, first done first */
	size_t count;
	uint64_t next_seq;
	unsigned max_runs;
	int64_t retain_ns;
	char id_prefix[CONFIG_NAME_MAX + 12];	/* job_env's, and 'r' */
	size_t id_prefix_len;
};

static struct call **
id_slot(struct api_run_table *t, const char *id)
{
	return &t->by_id[fnv1a_str(id) & (t->nbuckets - 1)];
}

static struct call **
key_slot(struct api_run_table *t, const char *key)
{
	return &t->by_key[fnv1a_str(key) & (t->nbuckets - 1)];
}

/* Doubles both tables when they hold more runs than buckets. */
static void
maybe_grow(struct api_run_table *t)
{
	size_t n = t->nbuckets * 2;
	struct call **ids, **keys, *c;

	if (t->count <= t->nbuckets)
		return;
	ids = calloc(n, sizeof(*ids));
	keys = calloc(n, sizeof(*keys));
	if (ids == NULL || keys == NULL) {
		free(ids);
		free(keys);
		return;			/* longer chains, still correct */
	}
	free(t->by_id);
	free(t->by_key);
	t->by_id = ids;
	t->by_key = keys;
	t->nbuckets = n;
	for (c = t->head; c != NULL; c = c->next) {
		struct call **slot = id_slot(t, c->id);

		c->hash_next = *slot;
		*slot = c;
		if (c->idempotency_key != NULL) {
			slot = key_slot(t, c->idempotency_key);
			c->key_next = *slot;
			*slot = c;
		}
	}
}

static void
chain_remove(struct call **slot, struct call *c, bool by_key)
{
	for (; *slot != NULL; slot = by_key ? &(*slot)->key_next :
				     &(*slot)->hash_next) {
		if (*slot == c) {
			*slot = by_key ? c->key_next : c->hash_next;
			return;
		}
	}
}

/* Unlinks c from everything; the caller drops its reference unlocked. */
static void
unlink_call(struct api_run_table *t, struct call *c)
{
	chain_remove(id_slot(t, c->id), c, false);
	if (c->idempotency_key != NULL)
		chain_remove(key_slot(t, c->idempotency_key), c, true);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		t->tail = c->prev;
	if (c->on_done_list) {
		if (c->done_prev != NULL)
			c->done_prev->done_next = c->done_next;
		else
			t->done_head = c->done_next;
		if (c->done_next != NULL)
			c->done_next->done_prev = c->done_prev;
		else
			t->done_tail = c->done_prev;
		c->on_done_list = false;
	}
	c->prev = c->next = c->hash_next = c->key_next = NULL;
	c->done_prev = c->done_next = NULL;
	c->listed = false;
	t->count--;
}

struct api_run_table *
api_run_table_new(unsigned max_runs, int64_t retain_ns, const char *id_prefix)
{
	struct api_run_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->nbuckets = MIN_BUCKETS;
	t->by_id = calloc(t->nbuckets, sizeof(*t->by_id));
	t->by_key = calloc(t->nbuckets, sizeof(*t->by_key));
	if (t->by_id == NULL || t->by_key == NULL) {
		free(t->by_id);
		free(t->by_key);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->next_seq = 1;
	t->max_runs = max_runs;
	t->retain_ns = retain_ns;
	snprintf(t->id_prefix, sizeof(t->id_prefix), "%sr", id_prefix);
	t->id_prefix_len = strlen(t->id_prefix);
	return t;
}

void
api_run_table_set_limits(struct api_run_table *t, unsigned max_runs,
			 int64_t retain_ns)
{
	pthread_mutex_lock(&t->lock);
	t->max_runs = max_runs;
	t->retain_ns = retain_ns;
	pthread_mutex_unlock(&t->lock);
}

/* The kept run holding key, or NULL.  Under the lock. */
static struct call *
find_key_locked(struct api_run_table *t, const char *key)
{
	struct call *c;

	for (c = *key_slot(t, key); c != NULL; c = c->key_next)
		if (!strcmp(c->idempotency_key, key))
			return c;
	return NULL;
}

/*
 * Unlinks the runs done first onto *doomed (through hash_next) while the
 * table is full, at most EVICT_MAX of them: after a reload lowered
 * max_runs, the table comes down a few runs per add (and by expiry), not
 * all at once under the lock.  Under the lock.
 */
#define EVICT_MAX 8

static void
evict_for_one(struct api_run_table *t, struct call **doomed)
{
	struct call *c;
	int n = 0;

	while (t->count >= t->max_runs && n++ < EVICT_MAX &&
	       (c = t->done_head) != NULL) {
		unlink_call(t, c);
		c->hash_next = *doomed;
		*doomed = c;
	}
}

static void
drop_chain(struct call *doomed)
{
	while (doomed != NULL) {
		struct call *c = doomed;

		doomed = c->hash_next;
		call_unref(c);
	}
}

int
api_run_table_add(struct api_run_table *t, struct call *c,
		  struct call **existing)
{
	struct call *doomed = NULL, **slot;
	int rc = 0;

	*existing = NULL;
	pthread_mutex_lock(&t->lock);
	if (c->idempotency_key != NULL &&
	    (*existing = find_key_locked(t, c->idempotency_key)) != NULL) {
		call_ref(*existing);
		rc = 1;
		goto out;
	}
	evict_for_one(t, &doomed);
	c->seq = t->next_seq++;
	job_format_id(c->id, t->id_prefix, t->id_prefix_len, c->seq);
	slot = id_slot(t, c->id);
	c->hash_next = *slot;
	*slot = call_ref(c);
	if (c->idempotency_key != NULL) {
		slot = key_slot(t, c->idempotency_key);
		c->key_next = *slot;
		*slot = c;
	}
	c->prev = t->tail;
	c->next = NULL;
	if (t->tail != NULL)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
	c->listed = true;
	t->count++;
	maybe_grow(t);
out:
	pthread_mutex_unlock(&t->lock);
	drop_chain(doomed);
	return rc;
}

void
api_run_table_remove(struct api_run_table *t, struct call *c)
{
	bool listed;

	pthread_mutex_lock(&t->lock);
	listed = c->listed;
	if (listed)
		unlink_call(t, c);
	pthread_mutex_unlock(&t->lock);
	if (listed)
		call_unref(c);
}

void
api_run_table_done(struct api_run_table *t, struct call *c, int64_t now_ns)
{
	pthread_mutex_lock(&t->lock);
	c->done_mono_ns = now_ns;
	if (c->listed && !c->on_done_list) {
		c->done_prev = t->done_tail;
		c->done_next = NULL;
		if (t->done_tail != NULL)
			t->done_tail->done_next = c;
		else
			t->done_head = c;
		t->done_tail = c;
		c->on_done_list = true;
	}
	pthread_mutex_unlock(&t->lock);
}

struct call *
api_run_table_find(struct api_run_table *t, const char *id)
{
	struct call *c;

	pthread_mutex_lock(&t->lock);
	for (c = *id_slot(t, id); c != NULL; c = c->hash_next)
		if (!strcmp(c->id, id))
			break;
	if (c != NULL)
		call_ref(c);
	pthread_mutex_unlock(&t->lock);
	return c;
}

struct call *
api_run_table_find_key(struct api_run_table *t, const char *key)
{
	struct call *c;

	pthread_mutex_lock(&t->lock);
	if ((c = find_key_locked(t, key)) != NULL)
		call_ref(c);
	pthread_mutex_unlock(&t->lock);
	return c;
}

size_t
api_run_table_list(struct api_run_table *t, uint64_t after, size_t limit,
		   struct call **out, uint64_t *next)
{
	char id[CALL_ID_MAX];
	struct call *c = NULL;
	size_t n = 0;

	*next = 0;
	pthread_mutex_lock(&t->lock);
	if (after == 0) {
		c = t->tail;
	} else {
		job_format_id(id, t->id_prefix, t->id_prefix_len, after);
		for (c = *id_slot(t, id); c != NULL; c = c->hash_next)
			if (!strcmp(c->id, id))
				break;
		if (c != NULL) {
			c = c->prev;
		} else {	/* expired meanwhile: find its place */
			for (c = t->tail; c != NULL && c->seq >= after;
			     c = c->prev)
				;
		}
	}
	for (; c != NULL && n < limit; c = c->prev)
		out[n++] = call_ref(c);
	if (c != NULL && n > 0)
		*next = out[n - 1]->seq;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t
api_run_table_expire(struct api_run_table *t, int64_t now_ns, size_t max)
{
	struct call *doomed = NULL, *c;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	while (n < max && (c = t->done_head) != NULL &&
	       c->done_mono_ns + t->retain_ns <= now_ns) {
		unlink_call(t, c);
		c->hash_next = doomed;
		doomed = c;
		n++;
	}
	pthread_mutex_unlock(&t->lock);
	drop_chain(doomed);
	return n;
}

size_t
api_run_table_count(struct api_run_table *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void
api_run_table_free(struct api_run_table *t)
{
	struct call *c, *next;

	if (t == NULL)
		return;
	for (c = t->head; c != NULL; c = next) {
		next = c->next;
		c->listed = false;
		call_unref(c);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->by_id);
	free(t->by_key);
	free(t);
}
