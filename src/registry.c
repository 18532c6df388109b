/*
 * registry.c - see registry.h.
 *
 * A chained hash table on the id, and two doubly linked lists through the
 * instances: `live` (in start order) and `finished` (in finish order, so
 * the oldest is at the head and expiry stops at the first one too young).
 * Links live in inst->reg.  And an index of every instance by its creation
 * number (seq_index.h), for the listing: newest first from a cursor.
 *
 * Locking: one mutex guards the table, both lists, the index, the counts
 * and every inst->reg.  It is a leaf lock: references are dropped, and
 * callbacks called, only after it is released (a listing snapshots the
 * futures it lists after it, too).  Evicted and expired instances are
 * unlinked under it onto a private chain through reg.hash_next, and their
 * references dropped from that chain once it is released.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "log.h"
#include "registry.h"
#include "seq_index.h"
#include "timer.h"

struct list {
	struct job_instance *head, *tail;
	size_t len;
};

struct registry {
	pthread_mutex_t lock;	/* guards everything below */
	struct job_instance **buckets;
	size_t nbuckets;	/* a power of two */
	struct list live, finished;
	struct seq_index order;	/* live and finished, by inst->seq */
	unsigned max_jobs;
	int64_t retain_ns;
	bool closed;		/* registry_close(): refuse every add */
	/* Set before the first add, then constant: read unlocked. */
	registry_observer observer;
	void *observer_arg;
};

static void
list_push(struct list *l, struct job_instance *inst)
{
	inst->reg.prev = l->tail;
	inst->reg.next = NULL;
	if (l->tail != NULL)
		l->tail->reg.next = inst;
	else
		l->head = inst;
	l->tail = inst;
	l->len++;
}

static void
list_remove(struct list *l, struct job_instance *inst)
{
	if (inst->reg.prev != NULL)
		inst->reg.prev->reg.next = inst->reg.next;
	else
		l->head = inst->reg.next;
	if (inst->reg.next != NULL)
		inst->reg.next->reg.prev = inst->reg.prev;
	else
		l->tail = inst->reg.prev;
	inst->reg.prev = inst->reg.next = NULL;
	l->len--;
}


/* Moves every entry into a new table of n buckets; false if out of memory. */
static bool
rehash(struct registry *r, size_t n)
{
	struct job_instance **b, *inst, *next;
	size_t i;

	b = calloc(n, sizeof(*b));
	if (b == NULL)
		return false;
	for (i = 0; i < r->nbuckets; i++) {
		for (inst = r->buckets[i]; inst != NULL; inst = next) {
			size_t h = fnv1a_str(inst->id) & (n - 1);

			next = inst->reg.hash_next;
			inst->reg.hash_next = b[h];
			b[h] = inst;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = n;
	return true;
}

/* Doubles the table when it holds more entries than buckets. */
static void
maybe_grow(struct registry *r)
{
	if (r->live.len + r->finished.len > r->nbuckets)
		rehash(r, r->nbuckets * 2);	/* else longer chains */
}

/*
 * Halves the table when it is less than an eighth full, so that memory
 * comes back after a burst (the hysteresis keeps it from flapping).
 */
static void
maybe_shrink(struct registry *r)
{
	size_t n = r->nbuckets;

	while (n > REGISTRY_MIN_BUCKETS && (r->live.len + r->finished.len) * 8 < n)
		n /= 2;
	if (n != r->nbuckets)
		rehash(r, n);
}

static void
hash_remove(struct registry *r, struct job_instance *inst)
{
	struct job_instance **pp = &r->buckets[fnv1a_str(inst->id) &
					       (r->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->reg.hash_next) {
		if (*pp == inst) {
			*pp = inst->reg.hash_next;
			inst->reg.hash_next = NULL;
			return;
		}
	}
}

/* Unlinks a finished instance; the caller drops its reference unlocked. */
static void
drop_finished(struct registry *r, struct job_instance *inst)
{
	list_remove(&r->finished, inst);
	hash_remove(r, inst);
	seq_index_remove(&r->order, inst->seq);
	inst->reg.listed = false;
}

/*
 * Unlinks finished instances, the oldest first, until at most `keep`
 * instances are left or none is finished, onto the private chain *doomed
 * (through reg.hash_next).  Called with the lock held; the caller drops
 * the chain's references with drop_chain() once it has released the lock.
 * Returns how many it unlinked.
 */
static size_t
evict_down_to(struct registry *r, size_t keep, struct job_instance **doomed)
{
	struct job_instance *inst;
	size_t n = 0;

	while (r->live.len + r->finished.len > keep &&
	       (inst = r->finished.head) != NULL) {
		drop_finished(r, inst);
		inst->reg.hash_next = *doomed;
		*doomed = inst;
		n++;
	}
	return n;
}

/* Drops the references of a chain from evict_down_to(), unlocked. */
static void
drop_chain(struct job_instance *doomed)
{
	struct job_instance *inst;

	while (doomed != NULL) {
		inst = doomed;
		doomed = inst->reg.hash_next;
		job_unref(inst);
	}
}

struct registry *
registry_new(unsigned max_jobs, int64_t retain_ns)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->nbuckets = REGISTRY_MIN_BUCKETS;
	r->buckets = calloc(r->nbuckets, sizeof(r->buckets[0]));
	if (r->buckets == NULL) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	seq_index_init(&r->order);
	r->max_jobs = max_jobs;
	r->retain_ns = retain_ns;
	return r;
}

void
registry_set_observer(struct registry *r, registry_observer fn, void *arg)
{
	r->observer = fn;
	r->observer_arg = arg;
}

void
registry_close(struct registry *r)
{
	pthread_mutex_lock(&r->lock);
	r->closed = true;
	pthread_mutex_unlock(&r->lock);
}

/*
 * Evicts in batches, releasing the lock in between, so that lowering the
 * bound from millions does not stall every request (they take the lock
 * too) while it unlinks them all.
 */
#define EVICT_BATCH 4096

size_t
registry_set_limits(struct registry *r, unsigned max_jobs, int64_t retain_ns)
{
	struct job_instance *doomed;
	size_t n = 0, batch, keep;

	pthread_mutex_lock(&r->lock);
	r->max_jobs = max_jobs;
	r->retain_ns = retain_ns;
	pthread_mutex_unlock(&r->lock);
	do {
		doomed = NULL;
		pthread_mutex_lock(&r->lock);
		keep = r->live.len + r->finished.len;
		keep = keep > r->max_jobs + (size_t)EVICT_BATCH ?
		       keep - EVICT_BATCH : r->max_jobs;
		batch = evict_down_to(r, keep, &doomed);
		if (batch > 0)
			maybe_shrink(r);
		pthread_mutex_unlock(&r->lock);
		drop_chain(doomed);
		n += batch;
	} while (batch == EVICT_BATCH);
	return n;
}

/* Waiter on each added instance's future: move it to `finished`. */
static void
on_finished(struct future *f, void *arg)
{
	struct job_instance *inst = arg;
	struct registry *r = inst->reg.owner;
	struct future_final done = future_final(f);	/* a waiter's */
	bool moved = false;

	pthread_mutex_lock(&r->lock);
	if (inst->reg.listed && !inst->reg.finished) {
		list_remove(&r->live, inst);
		inst->reg.state = done.state;
		inst->reg.finished = true;
		/* The completion's own clock read: retention counts from it. */
		inst->reg.finished_ns = done.ended_ns;
		list_push(&r->finished, inst);
		/* Expiry may drop the registry's reference once unlocked. */
		moved = r->observer != NULL && job_ref(inst) != NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (moved) {
		r->observer(REGISTRY_FINISHED, inst, r->observer_arg);
		job_unref(inst);
	}
}

int
registry_add(struct registry *r, struct job_instance *inst)
{
	struct job_instance *evicted = NULL;
	size_t h;
	int err = 0;

	/*
	 * Room for one more: usually one eviction, more when jobs that were
	 * live when the bound was lowered have finished over it since.
	 */
	pthread_mutex_lock(&r->lock);
	if (r->closed) {
		pthread_mutex_unlock(&r->lock);
		errno = ESHUTDOWN;
		return -1;
	}
	evict_down_to(r, r->max_jobs - 1, &evicted);
	if (r->live.len + r->finished.len >= r->max_jobs)
		err = EAGAIN;
	else if (seq_index_add(&r->order, inst->seq, inst) != 0)
		err = errno;	/* ENOMEM; EEXIST */
	if (err != 0) {
		pthread_mutex_unlock(&r->lock);
		drop_chain(evicted);
		errno = err;
		return -1;
	}
	job_ref(inst);
	inst->reg.owner = r;
	inst->reg.listed = true;
	inst->reg.finished = false;
	list_push(&r->live, inst);
	h = fnv1a_str(inst->id) & (r->nbuckets - 1);
	inst->reg.hash_next = r->buckets[h];
	r->buckets[h] = inst;
	maybe_grow(r);
	pthread_mutex_unlock(&r->lock);

	drop_chain(evicted);
	/* Before the waiter: ADDED is heard before FINISHED. */
	if (r->observer != NULL)
		r->observer(REGISTRY_ADDED, inst, r->observer_arg);
	/* May run now, if the job already completed: it is listed by then. */
	future_on_done(inst->future, &inst->reg.waiter, on_finished, inst);
	return 0;
}

struct job_instance *
registry_find(struct registry *r, const char *id)
{
	struct job_instance *inst;

	pthread_mutex_lock(&r->lock);
	inst = r->buckets[fnv1a_str(id) & (r->nbuckets - 1)];
	for (; inst != NULL; inst = inst->reg.hash_next)
		if (!strcmp(inst->id, id))
			break;
	if (inst != NULL)
		job_ref(inst);
	pthread_mutex_unlock(&r->lock);
	return inst;
}

size_t
registry_expire(struct registry *r, int64_t now_ns, size_t max)
{
	struct job_instance *doomed = NULL, *inst;
	size_t n = 0;

	/* Unlink under the lock onto a private chain; unref unlocked. */
	pthread_mutex_lock(&r->lock);
	while (n < max && (inst = r->finished.head) != NULL &&
	       now_ns - inst->reg.finished_ns >= r->retain_ns) {
		drop_finished(r, inst);
		inst->reg.hash_next = doomed;
		doomed = inst;
		n++;
	}
	if (n > 0)
		maybe_shrink(r);
	pthread_mutex_unlock(&r->lock);
	drop_chain(doomed);
	return n;
}

/* A listing's page so far, built under the lock by list_visit(). */
struct list_walk {
	const struct registry_filter *filter;
	struct registry_entry *out;
	size_t n, limit;
};

/*
 * Whether inst may match, by what the lock guards: its job, and a
 * finished instance's final state.  A live one may be queued or running
 * (or done a moment ago, its waiter not yet run): only its future knows,
 * and the future's lock is not to be taken under this one.
 */
static bool
may_match(const struct job_instance *inst, const struct registry_filter *f)
{
	const unsigned live = REGISTRY_STATE(FUTURE_QUEUED) |
			      REGISTRY_STATE(FUTURE_RUNNING);

	if (f->job != NULL && strcmp(inst->def->name, f->job) != 0)
		return false;
	if (f->states == 0)
		return true;
	if (inst->reg.finished)
		return (f->states & REGISTRY_STATE(inst->reg.state)) != 0;
	return (f->states & live) != 0;
}

/* seq_index_visit_fn: takes a reference on what may match. */
static bool
list_visit(void *item, uint64_t seq, void *arg)
{
	struct list_walk *w = arg;
	struct job_instance *inst = item;

	(void)seq;
	if (!may_match(inst, w->filter))
		return false;
	w->out[w->n++].inst = job_ref(inst);
	return w->n == w->limit;
}

size_t
registry_list(struct registry *r, const struct registry_filter *filter,
	      uint64_t before, size_t limit, size_t examine,
	      struct registry_entry *out, uint64_t *next)
{
	struct list_walk w = { filter, out, 0, limit };
	struct future_snapshot snap;
	struct job_instance *inst;
	size_t i, n = 0;

	if (limit == 0) {	/* not allowed; nothing to fill */
		*next = before;
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	*next = seq_index_walk(&r->order, before, examine, list_visit, &w);
	pthread_mutex_unlock(&r->lock);

	/* The precise check, on the snapshot the answer will show. */
	for (i = 0; i < w.n; i++) {
		inst = out[i].inst;
		snap = future_snapshot(inst->future);
		if (filter->states != 0 &&
		    !(filter->states & REGISTRY_STATE(snap.state))) {
			job_unref(inst);
			continue;
		}
		out[n].inst = inst;
		out[n].snap = snap;
		n++;
	}
	return n;
}

size_t
registry_foreach_live(struct registry *r,
		      void (*fn)(struct job_instance *, void *), void *arg)
{
	struct job_instance **all, *inst;
	size_t n = 0, i;

	pthread_mutex_lock(&r->lock);
	all = malloc((r->live.len + 1) * sizeof(*all));
	if (all != NULL)
		for (inst = r->live.head; inst != NULL; inst = inst->reg.next)
			all[n++] = job_ref(inst);
	pthread_mutex_unlock(&r->lock);
	if (all == NULL)
		log_warn("registry: cannot list the live jobs");
	for (i = 0; i < n; i++) {
		fn(all[i], arg);
		job_unref(all[i]);
	}
	free(all);
	return n;
}

struct registry_counts
registry_counts(struct registry *r)
{
	struct registry_counts c;

	pthread_mutex_lock(&r->lock);
	c.live = r->live.len;
	c.finished = r->finished.len;
	pthread_mutex_unlock(&r->lock);
	return c;
}

size_t
registry_buckets(struct registry *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->nbuckets;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void
registry_free(struct registry *r)
{
	struct job_instance *inst;

	if (r == NULL)
		return;
	while ((inst = r->finished.head) != NULL) {
		drop_finished(r, inst);
		job_unref(inst);
	}
	/*
	 * None is live: the caller has freed the timer and the pool, which
	 * completes every future.  A live one would still point into r
	 * through its future's waiter, so it cannot be freed here either.
	 */
	pthread_mutex_destroy(&r->lock);
	seq_index_clear(&r->order);
	free(r->buckets);
	free(r);
}
