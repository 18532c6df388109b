/*
 * pool.c - see pool.h.
 *
 * One mutex, one condition variable, an intrusive FIFO of items (the
 * libuv shape).  Invariant under the lock: `queued` is the length of the
 * list, every listed item's future is QUEUED or CANCELLED, and queued +
 * reserved <= capacity.  A submit reserves its slot before it allocates,
 * so that a full queue is refused without touching malloc.  Workers
 * block every signal, so signals reach only the main thread.
 *
 * A cancelled item is unlinked by the waiter callback it registered on its
 * future, so it frees its queue slot at once instead of when a worker
 * would have reached it.
 *
 * An item has two holders: the queue (then the worker that takes it) and
 * that callback.  Whichever lets go last frees it.  A worker that takes an
 * item and finds it cancelled must not free it by itself: the thread that
 * cancelled it may still be about to run the callback, which reads the
 * item (and future.c reads the waiter embedded in it).  The same holds for
 * a running item completed by someone else (a deadline).
 *
 * Lock order: the pool lock is a leaf.  The future's callback (the cancel
 * unlink above) takes it, so no future function is called with it held.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pool.h"

struct pool_item {
	struct pool_item *prev, *next;	/* guarded by the pool lock */
	bool listed;			/* guarded by the pool lock */
	unsigned holds;			/* guarded by the pool lock: 2, 1, 0 */
	struct pool *pool;
	pool_work_fn work;
	pool_release_fn release;
	void *arg;
	struct future *future;		/* the item's own reference */
	struct future_waiter on_cancel;
};

struct pool {
	pthread_mutex_t lock;	/* guards everything below */
	pthread_cond_t wake;	/* a worker may have something to do */
	struct pool_item *head, *tail;
	size_t queued;
	size_t reserved;	/* slots taken by submits still allocating */
	size_t capacity;
	size_t idle;		/* workers waiting on `wake` */
	size_t busy;		/* workers running an item */
	size_t items;		/* accepted items not freed yet */
	bool stopping;
	void *(*item_calloc)(size_t, size_t);	/* calloc(); tests swap it */
	unsigned nthreads;
	pthread_t *threads;
};

static void
unlink_item(struct pool *p, struct pool_item *it)
{
	if (it->prev != NULL)
		it->prev->next = it->next;
	else
		p->head = it->next;
	if (it->next != NULL)
		it->next->prev = it->prev;
	else
		p->tail = it->prev;
	it->prev = it->next = NULL;
	it->listed = false;
	p->queued--;
}

/*
 * Drops `n` of the item's holds, with the pool lock held.  Returns true if
 * they were the last: the caller then frees the item, after unlocking.
 * pool_free() waits on `wake` for the last item of a stopping pool.
 */
static bool
item_drop(struct pool *p, struct pool_item *it, unsigned n)
{
	it->holds -= n;
	if (it->holds > 0)
		return false;
	if (--p->items == 0 && p->stopping)
		pthread_cond_broadcast(&p->wake);
	return true;
}

static void
item_free(struct pool_item *it)
{
	if (it->release != NULL)
		it->release(it->arg);
	future_unref(it->future);
	free(it);
}

/*
 * Future callback, runs once when the item's future completes, whoever
 * completed it.  If the item is still listed, it was cancelled while
 * queued: unlink it, and drop the queue's hold too since no worker will
 * see it.  Otherwise a worker took it: drop our hold only.
 */
static void
on_item_done(struct future *f, void *arg)
{
	struct pool_item *it = arg;
	struct pool *p = it->pool;
	bool last;

	(void)f;
	pthread_mutex_lock(&p->lock);
	if (it->listed) {
		unlink_item(p, it);
		last = item_drop(p, it, 2);
	} else {
		last = item_drop(p, it, 1);
	}
	pthread_mutex_unlock(&p->lock);
	if (last)
		item_free(it);
}

static void *
worker_main(void *arg)
{
	struct pool *p = arg;
	struct pool_item *it;
	enum future_state state;
	char *result, *error;
	bool last;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->wake, &p->lock);
			p->idle--;
		}
		if (p->head == NULL)	/* stopping, and nothing left */
			break;
		it = p->head;
		unlink_item(p, it);
		p->busy++;
		pthread_mutex_unlock(&p->lock);

		/* It may have been cancelled after it was unlinked: skip. */
		if (future_start(it->future)) {
			result = error = NULL;
			state = it->work(it->arg, &result, &error);
			if (!future_state_is_done(state))
				state = FUTURE_FAILED;
			future_complete(it->future, state, result, error);
		}

		pthread_mutex_lock(&p->lock);
		last = item_drop(p, it, 1);
		pthread_mutex_unlock(&p->lock);
		if (last)
			item_free(it);

		pthread_mutex_lock(&p->lock);
		p->busy--;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_new(unsigned workers, unsigned queue)
{
	struct pool *p;
	sigset_t all, old;
	unsigned i;
	int err;

	if (workers == 0 || queue == 0) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->threads = calloc(workers, sizeof(p->threads[0]));
	if (p->threads == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->capacity = queue;
	p->item_calloc = calloc;

	/* Workers inherit this mask: signals are the main thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < workers; i++) {
		err = pthread_create(&p->threads[i], NULL, worker_main, p);
		if (err != 0)
			break;
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads < workers) {
		pool_free(p);
		errno = err;
		return NULL;
	}
	return p;
}

/*
 * Takes a queue slot for a submission about to allocate its item, so that
 * a full queue is refused before any allocation (an overloaded daemon
 * must answer 503 cheaply) and the slot cannot be gone after it.  Returns
 * 0, or -1 with errno EAGAIN or ESHUTDOWN.
 */
static int
reserve_slot(struct pool *p)
{
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->queued + p->reserved >= p->capacity) {
		errno = p->stopping ? ESHUTDOWN : EAGAIN;
		rc = -1;
	} else {
		p->reserved++;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Gives a reserved slot back, with the lock held. */
static void
unreserve_slot_locked(struct pool *p)
{
	/* pool_free() waits for the reserved slots too. */
	if (--p->reserved == 0 && p->stopping)
		pthread_cond_broadcast(&p->wake);
}

struct future *
pool_submit(struct pool *p, pool_work_fn work, pool_release_fn release,
	    void *arg)
{
	struct pool_item *it;
	struct future *f;

	if (reserve_slot(p))
		return NULL;
	it = p->item_calloc(1, sizeof(*it));
	f = it != NULL ? future_new() : NULL;
	if (f == NULL) {
		pthread_mutex_lock(&p->lock);
		unreserve_slot_locked(p);
		pthread_mutex_unlock(&p->lock);
		free(it);
		errno = ENOMEM;
		return NULL;
	}
	it->pool = p;
	it->work = work;
	it->release = release;
	it->arg = arg;
	it->future = future_ref(f);
	/*
	 * Registered before the item is listed, since from then on a worker
	 * may run and free it.  No one else holds the future yet, so the
	 * callback cannot run now; if the pool began to stop meanwhile the
	 * future is freed uncompleted and the callback never runs.
	 */
	future_on_done(f, &it->on_cancel, on_item_done, it);

	/* The reserved slot becomes the item's: no capacity check again. */
	pthread_mutex_lock(&p->lock);
	unreserve_slot_locked(p);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		future_unref(it->future);
		future_unref(f);
		free(it);
		errno = ESHUTDOWN;
		return NULL;
	}
	it->prev = p->tail;
	if (p->tail != NULL)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	it->listed = true;
	it->holds = 2;
	p->queued++;
	p->items++;
	/* Wake one worker, and only if one is idle (the libuv habit). */
	if (p->idle > 0)
		pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return f;
}

void
pool_set_allocator(struct pool *p, void *(*item_calloc)(size_t, size_t))
{
	pthread_mutex_lock(&p->lock);
	p->item_calloc = item_calloc;
	pthread_mutex_unlock(&p->lock);
}

size_t
pool_queued(struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t
pool_busy(struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->busy;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
pool_free(struct pool *p)
{
	struct pool_item *it;
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);

	/*
	 * Cancel what is queued.  future_cancel() runs on_item_done(), which
	 * unlinks and frees the item, so take the head afresh each time.  A
	 * worker may take an item between our unlock and the cancel (the
	 * cancel then fails if the worker started it, or succeeds and the
	 * worker skips it), so take a reference to keep the future alive
	 * across that window.
	 */
	for (;;) {
		struct future *f;

		pthread_mutex_lock(&p->lock);
		it = p->head;
		f = it != NULL ? future_ref(it->future) : NULL;
		pthread_mutex_unlock(&p->lock);
		if (f == NULL)
			break;
		future_cancel(f);
		future_unref(f);
	}

	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);

	/*
	 * An item whose future another thread completed (a cancel racing a
	 * worker, a deadline) may still have its callback in flight there,
	 * about to take our lock: wait until every item is freed, and every
	 * submit that reserved a slot before the stop has let it go.
	 */
	pthread_mutex_lock(&p->lock);
	while (p->items > 0 || p->reserved > 0)
		pthread_cond_wait(&p->wake, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
