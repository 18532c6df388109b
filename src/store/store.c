/*
 * store.c - see store.h: the writer thread, the batching, and the
 * dispatch to the backend's operations (backend.h).
 *
 * Changes are copied onto `pending` under a leaf mutex.  The writer wakes
 * on the first one, gives the batch STORE_BATCH_NS to grow (or less, when
 * STORE_BATCH_MAX changes are there or a store_sync() waits), swaps the
 * list out, and commits it with the lock released.  Changes are numbered
 * as they are queued; `committed` is the number of the last one the
 * backend took, which store_sync() waits for.
 *
 * A batch that fails is kept and tried again with a backoff (100 ms
 * doubling to 2 s), while new changes pile up behind it, up to
 * STORE_PENDING_MAX; past that new changes are dropped and counted as
 * lost: a database that is away for long must not take the memory.
 * While the backend fails, store_sync() fails (EIO) as soon as the try
 * under way has failed, rather than making its caller wait out the
 * timeout.
 *
 * The writer also expires finished records `retain` after they finished,
 * once a second.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fnv.h"
#include "log.h"
#include "store/backend.h"
#include "store/store.h"

#define STORE_PENDING_MAX 100000
#define STORE_EXPIRE_NS 1000000000	/* expire once a second */
#define STORE_RETRY_MIN_NS 100000000
#define STORE_RETRY_MAX_NS 2000000000

struct store {
	const struct store_ops *ops;
	void *b;			/* the backend's state */
	enum store_backend backend;
	bool has_writer;		/* memory has none */
	pthread_t writer;

	pthread_mutex_t lock;		/* a leaf; guards what follows */
	pthread_cond_t wake;		/* the writer: work, sync or stop */
	pthread_cond_t done;		/* sync waiters: committed moved */
	struct store_change *pending;
	size_t npending, cap;
	uint64_t queued;		/* changes queued, ever */
	uint64_t committed;		/* of those, taken by the backend */
	unsigned syncing;		/* store_sync() callers waiting */
	bool failing;			/* the last write failed */
	bool writing;			/* the writer is in write_batch */
	bool stop;
	int64_t retain_ns;
	int64_t last_lost_log_ns;	/* monotonic */

	atomic_uint_fast64_t n_committed, n_batches, n_lost;

	/*
	 * The breaker of the calls that requests make (reads, enqueue,
	 * cancel): after one timed out, they fail at once until
	 * down_until_ns (monotonic; 0: closed), and then one of them, the
	 * probe, tries the backend while the others still fail at once.
	 */
	atomic_int_fast64_t down_until_ns;
	atomic_bool probing;
};

/* Deep copies; false when out of memory (dst is then cleared). */
static char *
dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

static bool
copy_job(struct store_job *dst, const struct store_job *src)
{
	bool ok = true;

	*dst = *src;
	dst->result = dup_or_null(src->result, &ok);
	dst->error = dup_or_null(src->error, &ok);
	dst->params = dup_or_null(src->params, &ok);
	dst->joined = dup_or_null(src->joined, &ok);
	if (!ok)
		store_job_clear(dst);
	return ok;
}

static bool
copy_run(struct store_run *dst, const struct store_run *src)
{
	bool ok = true;

	*dst = *src;
	dst->jobs = NULL;
	dst->route = dup_or_null(src->route, &ok);
	dst->wait = dup_or_null(src->wait, &ok);
	dst->answer = dup_or_null(src->answer, &ok);
	dst->idempotency_key = dup_or_null(src->idempotency_key, &ok);
	if (ok && src->njobs > 0) {
		dst->jobs = malloc(src->njobs * sizeof(*dst->jobs));
		if (dst->jobs != NULL)
			memcpy(dst->jobs, src->jobs,
			       src->njobs * sizeof(*dst->jobs));
		else
			ok = false;
	}
	if (!ok)
		store_run_clear(dst);
	return ok;
}

void
store_job_clear(struct store_job *rec)
{
	if (rec == NULL)
		return;
	free(rec->result);
	free(rec->error);
	free(rec->params);
	free(rec->joined);
	memset(rec, 0, sizeof(*rec));
}

void
store_run_clear(struct store_run *rec)
{
	if (rec == NULL)
		return;
	free(rec->route);
	free(rec->wait);
	free(rec->answer);
	free(rec->idempotency_key);
	free(rec->jobs);
	memset(rec, 0, sizeof(*rec));
}

static void
clear_changes(struct store_change *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (c[i].is_run)
			store_run_clear(&c[i].u.run);
		else
			store_job_clear(&c[i].u.job);
	}
}

/* Counts a lost change and logs it, at most once a second. */
static void
lose_locked(struct store *s, const char *why)
{
	int64_t now = clock_now_ns(CLOCK_MONOTONIC);

	atomic_fetch_add_explicit(&s->n_lost, 1, memory_order_relaxed);
	if (now - s->last_lost_log_ns >= 1000000000) {
		s->last_lost_log_ns = now;
		log_error("store: a record change was lost (%s); "
			  "taskpoold_store_lost_total counts them", why);
	}
}

/* Appends c (owned from now on) or loses it; false when lost. */
static int
queue_change(struct store *s, struct store_change *c)
{
	struct store_change *grown;
	size_t cap;

	pthread_mutex_lock(&s->lock);
	if (s->npending == s->cap) {
		if (s->npending >= STORE_PENDING_MAX) {
			lose_locked(s, "the backend is behind by "
				    "100,000 changes");
			goto lost;
		}
		cap = s->cap == 0 ? 256 : s->cap * 2;
		grown = realloc(s->pending, cap * sizeof(*grown));
		if (grown == NULL) {
			lose_locked(s, "out of memory");
			goto lost;
		}
		s->pending = grown;
		s->cap = cap;
	}
	s->pending[s->npending++] = *c;
	s->queued++;
	if (s->npending == 1 || s->npending == STORE_BATCH_MAX)
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
lost:
	pthread_mutex_unlock(&s->lock);
	clear_changes(c, 1);
	errno = ENOMEM;
	return -1;
}

int
store_job_changed(struct store *s, const struct store_job *rec)
{
	struct store_change c = { .is_run = false };

	if (!s->has_writer)
		return 0;
	if (!copy_job(&c.u.job, rec)) {
		pthread_mutex_lock(&s->lock);
		lose_locked(s, "out of memory");
		pthread_mutex_unlock(&s->lock);
		errno = ENOMEM;
		return -1;
	}
	return queue_change(s, &c);
}

int
store_run_changed(struct store *s, const struct store_run *rec)
{
	struct store_change c = { .is_run = true };

	if (!s->has_writer)
		return 0;
	if (!copy_run(&c.u.run, rec)) {
		pthread_mutex_lock(&s->lock);
		lose_locked(s, "out of memory");
		pthread_mutex_unlock(&s->lock);
		errno = ENOMEM;
		return -1;
	}
	return queue_change(s, &c);
}

static struct timespec
deadline_after(int64_t ns)
{
	struct timespec ts;
	int64_t t = clock_now_ns(CLOCK_MONOTONIC) + ns;

	ts.tv_sec = (time_t)(t / 1000000000);
	ts.tv_nsec = (long)(t % 1000000000);
	return ts;
}

static void
expire(struct store *s, int64_t *next_ns)
{
	int64_t now = clock_now_ns(CLOCK_MONOTONIC), retain;

	if (now < *next_ns)
		return;
	*next_ns = now + STORE_EXPIRE_NS;
	pthread_mutex_lock(&s->lock);
	retain = s->retain_ns;
	pthread_mutex_unlock(&s->lock);
	if (s->ops->expire(s->b, clock_now_ns(CLOCK_REALTIME) - retain) != 0)
		log_debug("store: expiring old records failed; next second");
}

/*
 * Folds the changes of one id in batch into one: the last one's record,
 * at the first one's place (a record keeps the listing position of its
 * creation).  A job's `created` and `started` come within the same 10 ms
 * as a rule, and a short job's `finished` too: each change folded is an
 * upsert the backend does not do.  Returns the new count.  Out of memory,
 * it folds nothing: every change is still written, in order.
 */
static size_t
coalesce(struct store_change *batch, size_t n)
{
	size_t nslots = 16, i, k, out;
	uint32_t *slot;		/* index + 1 into batch; 0: free */
	const char *id;
	uint64_t h;

	while (nslots < 2 * n)
		nslots *= 2;
	if (n < 2 || (slot = calloc(nslots, sizeof(*slot))) == NULL)
		return n;
	for (i = 0; i < n; i++) {
		id = batch[i].is_run ? batch[i].u.run.id : batch[i].u.job.id;
		h = fnv1a_str(id) ^ (uint64_t)batch[i].is_run;
		for (k = h & (nslots - 1); slot[k] != 0;
		     k = (k + 1) & (nslots - 1)) {
			struct store_change *first = &batch[slot[k] - 1];

			if (first->is_run == batch[i].is_run &&
			    !strcmp(first->is_run ? first->u.run.id :
				    first->u.job.id, id))
				break;
		}
		if (slot[k] == 0) {
			slot[k] = (uint32_t)i + 1;
			continue;
		}
		/* The newer record takes the older one's place. */
		clear_changes(&batch[slot[k] - 1], 1);
		batch[slot[k] - 1] = batch[i];
		batch[i].is_run = false;
		batch[i].u.job.id[0] = '\0';	/* folded: an empty id */
	}
	free(slot);
	for (i = out = 0; i < n; i++) {
		if (!batch[i].is_run && batch[i].u.job.id[0] == '\0')
			continue;
		batch[out++] = batch[i];
	}
	return out;
}

/*
 * The writer: waits for changes, lets a batch grow for STORE_BATCH_NS
 * (unless it is full, a sync waits or the store stops), commits it, and
 * retries a failed one with a backoff.  On stop, it commits what is
 * left, trying for STORE_TIMEOUT_NS at most.
 */
static void *
writer_main(void *arg)
{
	struct store *s = arg;
	struct store_change *batch = NULL;
	size_t n = 0, taken;
	uint64_t end = 0;
	int64_t backoff = STORE_RETRY_MIN_NS, next_expire = 0, give_up = 0;
	struct timespec until;
	bool ok;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (batch == NULL) {
			while (s->npending == 0 && !s->stop) {
				until = deadline_after(STORE_EXPIRE_NS);
				pthread_cond_timedwait(&s->wake, &s->lock,
						       &until);
				if (s->npending == 0 && !s->stop) {
					pthread_mutex_unlock(&s->lock);
					expire(s, &next_expire);
					pthread_mutex_lock(&s->lock);
				}
			}
			if (s->npending == 0 && s->stop)
				break;
			until = deadline_after(STORE_BATCH_NS);
			while (s->npending < STORE_BATCH_MAX &&
			       s->syncing == 0 && !s->stop &&
			       pthread_cond_timedwait(&s->wake, &s->lock,
						      &until) != ETIMEDOUT)
				;
			batch = s->pending;
			n = s->npending;
			end = s->queued;
			s->pending = NULL;
			s->npending = s->cap = 0;
		}
		s->writing = true;
		pthread_mutex_unlock(&s->lock);

		taken = n;
		n = coalesce(batch, n);
		ok = s->ops->write_batch(s->b, batch, n) == 0;
		if (ok) {
			clear_changes(batch, n);
			free(batch);
			batch = NULL;
			atomic_fetch_add_explicit(&s->n_committed, taken,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&s->n_batches, 1,
						  memory_order_relaxed);
			backoff = STORE_RETRY_MIN_NS;
			expire(s, &next_expire);
		}

		pthread_mutex_lock(&s->lock);
		s->writing = false;
		if (ok) {
			if (s->failing)
				log_info("store: writing again");
			s->failing = false;
			s->committed = end;
			pthread_cond_broadcast(&s->done);
			continue;
		}
		if (!s->failing)
			log_error("store: writing %zu record changes "
				  "failed; retrying", n);
		s->failing = true;
		pthread_cond_broadcast(&s->done);	/* syncs fail now */
		if (s->stop) {
			if (give_up == 0)
				give_up = clock_now_ns(CLOCK_MONOTONIC) +
					  STORE_TIMEOUT_NS;
			if (clock_now_ns(CLOCK_MONOTONIC) >= give_up) {
				log_error("store: stopping with %zu record "
					  "changes not written", n +
					  s->npending);
				break;
			}
		}
		/* Signals (a change, a sync, the stop) do not cut it short. */
		until = deadline_after(backoff);
		while (pthread_cond_timedwait(&s->wake, &s->lock,
					      &until) != ETIMEDOUT)
			;
		backoff = backoff * 2 > STORE_RETRY_MAX_NS ?
			  STORE_RETRY_MAX_NS : backoff * 2;
		/* Changes that came meanwhile join the retried batch. */
		if (s->npending > 0) {
			struct store_change *joined;

			joined = realloc(batch, (n + s->npending) *
					 sizeof(*batch));
			if (joined != NULL) {
				batch = joined;
				memcpy(batch + n, s->pending,
				       s->npending * sizeof(*batch));
				n += s->npending;
				end = s->queued;
				free(s->pending);
				s->pending = NULL;
				s->npending = s->cap = 0;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (batch != NULL) {
		atomic_fetch_add_explicit(&s->n_lost, n, memory_order_relaxed);
		clear_changes(batch, n);
		free(batch);
	}
	return NULL;
}

static const struct store_ops *
ops_of(enum store_backend backend)
{
	switch (backend) {
	case STORE_MEMORY:
		return &store_memory_ops;
	case STORE_SQLITE:
		return &store_sqlite_ops;
	case STORE_POSTGRESQL:
		return &store_postgresql_ops;
	}
	return NULL;
}

struct store *
store_open(const struct store_options *o, char *err, size_t errsize)
{
	const struct store_ops *ops = ops_of(o->backend);

	if (ops == NULL) {
		snprintf(err, errsize, "this build has no such backend");
		return NULL;
	}
	return store_open_with(ops, o, err, errsize);
}

struct store *
store_open_with(const struct store_ops *ops, const struct store_options *o,
		char *err, size_t errsize)
{
	struct store *s;
	pthread_condattr_t attr;
	int e;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	s->backend = o->backend;
	s->retain_ns = o->retain_ns;
	s->ops = ops;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_cond_init(&s->done, &attr);
	pthread_condattr_destroy(&attr);
	if ((s->b = s->ops->open(o, err, errsize)) == NULL)
		goto fail;
	s->has_writer = o->backend != STORE_MEMORY;
	if (s->has_writer &&
	    (e = pthread_create(&s->writer, NULL, writer_main, s)) != 0) {
		snprintf(err, errsize, "cannot start its writer thread: %s",
			 strerror(e));
		s->ops->close(s->b);
		goto fail;
	}
	return s;
fail:
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

enum store_backend
store_backend(const struct store *s)
{
	return s->backend;
}

void
store_set_retain(struct store *s, int64_t retain_ns)
{
	pthread_mutex_lock(&s->lock);
	s->retain_ns = retain_ns;
	pthread_mutex_unlock(&s->lock);
}

int
store_sync(struct store *s)
{
	struct timespec until = deadline_after(STORE_TIMEOUT_NS);
	uint64_t target;
	int rc = 0;

	if (!s->has_writer)
		return 0;
	pthread_mutex_lock(&s->lock);
	target = s->queued;
	s->syncing++;
	pthread_cond_signal(&s->wake);
	while (s->committed < target) {
		/* Between two tries of a failing batch: fail now. */
		if (s->failing && !s->writing) {
			rc = EIO;
			break;
		}
		if (pthread_cond_timedwait(&s->done, &s->lock,
					   &until) == ETIMEDOUT &&
		    s->committed < target) {
			rc = ETIMEDOUT;
			break;
		}
	}
	s->syncing--;
	pthread_mutex_unlock(&s->lock);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

/*
 * Whether a request's call may go to the backend now: false while the
 * breaker is open (errno EIO), or while another caller probes.
 */
static bool
breaker_admit(struct store *s, bool *probe)
{
	int64_t until = atomic_load(&s->down_until_ns);
	bool expected = false;

	*probe = false;
	if (until == 0)
		return true;
	if (clock_now_ns(CLOCK_MONOTONIC) >= until &&
	    atomic_compare_exchange_strong(&s->probing, &expected, true)) {
		*probe = true;
		return true;
	}
	errno = EIO;
	return false;
}

/*
 * Notes how a call went: a timeout opens the breaker for
 * STORE_BREAKER_NS, any other answer closes it.  Returns rc, with errno
 * as the call left it.
 */
static int
breaker_note(struct store *s, int rc, bool probe)
{
	int e = errno;

	if (rc == -1 && e == ETIMEDOUT) {
		if (atomic_exchange(&s->down_until_ns,
				    clock_now_ns(CLOCK_MONOTONIC) +
				    STORE_BREAKER_NS) == 0)
			log_warn("store: the backend does not answer; requests "
				 "that need it get 503 at once, and one of "
				 "them tries it again every second");
	} else if (atomic_exchange(&s->down_until_ns, 0) != 0) {
		log_info("store: the backend answers again");
	}
	if (probe)
		atomic_store(&s->probing, false);
	errno = e;
	return rc;
}

#define GUARDED(call) \
	do { \
		bool probe_; \
		if (!breaker_admit(s, &probe_)) \
			return -1; \
		return breaker_note(s, (call), probe_); \
	} while (0)

int
store_job_get(struct store *s, const char *id, struct store_job *out)
{
	memset(out, 0, sizeof(*out));
	GUARDED(s->ops->job_get(s->b, id, out));
}

int
store_run_get(struct store *s, const char *id, struct store_run *out)
{
	memset(out, 0, sizeof(*out));
	GUARDED(s->ops->run_get(s->b, id, out));
}

int
store_job_list(struct store *s, const struct store_filter *f,
	       uint64_t before, size_t limit, struct store_job *out,
	       uint64_t *next)
{
	memset(out, 0, limit * sizeof(*out));
	*next = 0;
	GUARDED(s->ops->job_list(s->b, f, before, limit, out, next));
}

bool
store_has_queue(const struct store *s)
{
	return s->ops->enqueue != NULL;
}

#define QUEUE_OP(call) \
	do { \
		if (!store_has_queue(s)) { \
			errno = ENOTSUP; \
			return -1; \
		} \
		return call; \
	} while (0)

int
store_enqueue(struct store *s, const struct store_job *rec)
{
	if (!store_has_queue(s)) {
		errno = ENOTSUP;
		return -1;
	}
	GUARDED(s->ops->enqueue(s->b, rec));
}

int
store_claim(struct store *s, size_t max, struct store_job *out)
{
	QUEUE_OP(s->ops->claim(s->b, max, out));
}

int
store_renew(struct store *s, const char (*ids)[STORE_ID_MAX], size_t n)
{
	QUEUE_OP(s->ops->renew(s->b, ids, n));
}

int
store_finish(struct store *s, const struct store_job *rec)
{
	QUEUE_OP(s->ops->finish(s->b, rec));
}

int
store_cancel(struct store *s, const char *id)
{
	if (!store_has_queue(s)) {
		errno = ENOTSUP;
		return -1;
	}
	GUARDED(s->ops->cancel(s->b, id));
}

void
store_set_events(struct store *s,
		 void (*fn)(enum store_event ev, const char *id, void *arg),
		 void *arg)
{
	if (s->ops->set_events != NULL)
		s->ops->set_events(s->b, fn, arg);
}

struct store_stats
store_stats(struct store *s)
{
	struct store_stats st;

	st.committed = atomic_load_explicit(&s->n_committed,
					    memory_order_relaxed);
	st.batches = atomic_load_explicit(&s->n_batches, memory_order_relaxed);
	st.lost = atomic_load_explicit(&s->n_lost, memory_order_relaxed);
	pthread_mutex_lock(&s->lock);
	st.queued_now = s->npending;
	st.available = !s->failing;
	pthread_mutex_unlock(&s->lock);
	return st;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->has_writer) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->writer, NULL);
	}
	s->ops->close(s->b);
	/* What a failing backend left when the writer gave up. */
	atomic_fetch_add_explicit(&s->n_lost, s->npending,
				  memory_order_relaxed);
	clear_changes(s->pending, s->npending);
	free(s->pending);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
