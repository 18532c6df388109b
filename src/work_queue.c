/*
 * work_queue.c - see work_queue.h.
 *
 * The runner's jobs are items on one list, `jobs`, from their start to
 * their finish in the store: `njobs` of them count against the capacity
 * until the thread has written them back, so that a claim never takes
 * more than the instance has room for, even while the database is slow.
 * A job's completion (any thread) marks its item done and wakes the
 * thread; the thread takes the done items off the list under the lock
 * and calls the store without it.
 *
 * Locking: `lock` is a leaf.  Under it: the list, the flags, the pending
 * cancels.  Never a store call, a job call or a callback under it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "job.h"
#include "log.h"
#include "params.h"
#include "registry.h"
#include "store/store.h"
#include "work_queue.h"

/* The cancels the store asked for, waiting for the thread. */
#define CANCELS_MAX 256

struct wq_job {
	struct wq_job *next;
	struct work_queue *q;
	struct job_instance *inst;	/* a reference */
	struct future_waiter waiter;
	bool done;			/* its future completed */
	bool unfinished;		/* a store_finish() failed: retry */
};

struct work_queue {
	struct work_queue_options o;
	pthread_t thread;
	struct store_job *claimed;	/* the thread's: capacity records */
	char (*held)[STORE_ID_MAX];	/* the thread's: capacity ids */

	pthread_mutex_t lock;		/* guards what follows */
	pthread_cond_t wake;
	struct wq_job *jobs;		/* started, not yet finished */
	size_t njobs;
	size_t ndone;			/* of them, done */
	uint64_t nclaimed;		/* since the start */
	bool claim_now;			/* work was queued, or room made */
	bool claiming;			/* false once the stop began */
	bool starting;			/* the thread is starting a job */
	pthread_cond_t started;		/* starting went false */
	bool releasing;			/* the stop's cancels: leave them */
	bool quit;
	bool joined;			/* the caller's: work_queue_stop() ran */
	size_t ncancels;
	char cancels[CANCELS_MAX][STORE_ID_MAX];

	/* The thread's own: the cancels it took, to act on unlocked. */
	char taken[CANCELS_MAX][STORE_ID_MAX];
};

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- on other threads ------------------------------------------------------- */

/* A job of ours completed (on whichever thread completed it). */
static void
on_job_done(struct future *f, void *arg)
{
	struct wq_job *j = arg;
	struct work_queue *q = j->q;

	(void)f;
	pthread_mutex_lock(&q->lock);
	j->done = true;
	q->ndone++;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

/*
 * The store's events, on its listening thread: note them and wake the
 * runner, nothing more (it must not block).  A cancel that finds the list
 * full is dropped with a warning: its job then runs to its end.
 */
static void
on_store_event(enum store_event ev, const char *id, void *arg)
{
	struct work_queue *q = arg;
	bool dropped = false;

	pthread_mutex_lock(&q->lock);
	if (ev == STORE_EVENT_QUEUED) {
		q->claim_now = true;
	} else if (ev == STORE_EVENT_CANCEL && id != NULL) {
		if (q->ncancels < CANCELS_MAX && strlen(id) < STORE_ID_MAX)
			strcpy(q->cancels[q->ncancels++], id);
		else
			dropped = true;
	}
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	if (dropped)
		log_warnx("queue: a cancel was dropped (too many at once)");
}

/* ---- finishing -------------------------------------------------------------- */

/*
 * The store's record of a job's outcome.  Its params are redacted, as
 * every record's.  Returns 0, or -1 when out of memory (rec cleared).
 */
static int
outcome_record(struct job_instance *inst, struct store_job *rec)
{
	struct future_snapshot s = future_snapshot(inst->future);
	json_t *params = params_redacted(inst->def, inst->params);

	memset(rec, 0, sizeof(*rec));
	snprintf(rec->id, sizeof(rec->id), "%s", inst->id);
	snprintf(rec->job, sizeof(rec->job), "%s", inst->def->name);
	rec->state = (enum store_state)s.state;
	rec->result_json = (s.result_flags & FUTURE_RESULT_JSON) != 0;
	rec->truncated = (s.result_flags & FUTURE_RESULT_TRUNCATED) != 0;
	rec->created = s.times.created;
	rec->started = s.times.started;
	rec->finished = s.times.finished;
	rec->attempt = inst->attempt;
	if (params != NULL)
		rec->params = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	if (s.result != NULL)
		rec->result = strdup(s.result);
	if (s.error != NULL)
		rec->error = strdup(s.error);
	if (rec->params == NULL || (s.result != NULL && rec->result == NULL) ||
	    (s.error != NULL && rec->error == NULL)) {
		store_job_clear(rec);
		return -1;
	}
	return 0;
}

/*
 * Writes a done job's outcome to the store.  Returns true when that is
 * settled (written, fenced, or left to lapse), false to try again later
 * (the database did not answer, or no memory).
 */
static bool
finish_job(struct work_queue *q, struct job_instance *inst, bool releasing)
{
	struct store_job rec;
	int rc;

	if (releasing && future_state(inst->future) == FUTURE_CANCELLED) {
		log_info("queue: job %s (id %s, attempt %u) left to another "
			 "instance: this one stops", inst->def->name, inst->id,
			 inst->attempt);
		return true;
	}
	if (outcome_record(inst, &rec) != 0)
		return false;
	rc = store_finish(q->o.store, &rec);
	store_job_clear(&rec);
	if (rc == 1)
		log_info("queue: the outcome of job %s (id %s, attempt %u) "
			 "was refused: fenced by a newer attempt",
			 inst->def->name, inst->id, inst->attempt);
	else if (rc < 0)
		log_warn("queue: job %s (id %s): outcome not written yet",
			 inst->def->name, inst->id);
	return rc >= 0;
}

/*
 * Takes the done jobs off the list and writes them back; those the store
 * did not take go back on the list, marked, for the next tick.  After one
 * failure the rest wait too: a database that does not answer costs a pass
 * one timeout, not one per job (the stop waits for the last pass).
 * Returns how many are settled.
 */
static size_t
finish_done(struct work_queue *q)
{
	struct wq_job *done = NULL, **pp, *j, *retry = NULL;
	size_t settled = 0;
	bool releasing, failed = false;

	pthread_mutex_lock(&q->lock);
	for (pp = &q->jobs; (j = *pp) != NULL;) {
		if (j->done) {
			*pp = j->next;
			j->next = done;
			done = j;
		} else {
			pp = &j->next;
		}
	}
	q->ndone = 0;
	releasing = q->releasing;
	pthread_mutex_unlock(&q->lock);
	while ((j = done) != NULL) {
		done = j->next;
		if (failed || !finish_job(q, j->inst, releasing)) {
			failed = true;
			j->unfinished = true;
			j->next = retry;
			retry = j;
			continue;
		}
		job_unref(j->inst);
		free(j);
		settled++;
	}
	pthread_mutex_lock(&q->lock);
	while ((j = retry) != NULL) {
		retry = j->next;
		j->next = q->jobs;
		q->jobs = j;
	}
	q->njobs -= settled;
	pthread_mutex_unlock(&q->lock);
	return settled;
}

/* ---- claiming and starting -------------------------------------------------- */

/*
 * A claimed record that will not run here: its outcome, failed with
 * reason, goes straight back, under the attempt it was claimed with.
 */
static void
refuse_claim(struct work_queue *q, struct store_job *rec, const char *reason)
{
	struct store_job out;

	log_warnx("queue: job %.64s (id %.127s, attempt %u) failed: %s",
		  rec->job, rec->id, rec->attempt, reason);
	memset(&out, 0, sizeof(out));
	memcpy(out.id, rec->id, sizeof(out.id));
	memcpy(out.job, rec->job, sizeof(out.job));
	out.id[sizeof(out.id) - 1] = out.job[sizeof(out.job) - 1] = '\0';
	out.state = STORE_FAILED;
	out.error = (char *)reason;
	out.attempt = rec->attempt;
	out.created = rec->created;
	if (store_finish(q->o.store, &out) < 0)
		log_warn("queue: id %.127s: its failure not written; it is "
			 "claimed again after its lease", rec->id);
}

/*
 * The record's params (JSON text from the database: untrusted) checked
 * against def's declarations as a request's are.  Returns 0 with *out a
 * new object, 1 with a reason, -1 when out of memory.
 */
static int
claimed_params(const struct job_def *def, const char *text, json_t **out,
	       char *why, size_t whylen)
{
	struct param_input in[PARAMS_INPUT_MAX + 1];
	json_t *obj, *errors = NULL, *v;
	struct route one;
	const char *key;
	size_t n = 0;
	int rc;

	obj = json_loads(text != NULL ? text : "{}", JSON_REJECT_DUPLICATES,
			 NULL);
	if (!json_is_object(obj)) {
		json_decref(obj);
		snprintf(why, whylen, "its params are not a JSON object");
		return 1;
	}
	json_object_foreach(obj, key, v) {
		if (n == PARAMS_INPUT_MAX + 1)
			break;
		memset(&in[n], 0, sizeof(in[n]));
		in[n].name = key;
		in[n].name_len = strlen(key);
		in[n].json = v;
		in[n].source = PARAM_FROM_BODY;
		n++;
	}
	memset(&one, 0, sizeof(one));
	one.path = (char *)"/jobs";
	one.njobs = 1;
	one.jobs = &def;
	rc = params_resolve(&one, in, n, out, &errors);
	json_decref(obj);
	if (rc == 1)
		snprintf(why, whylen, "bad params: %s %s",
			 json_string_value(json_object_get(
				json_array_get(errors, 0), "param")),
			 json_string_value(json_object_get(
				json_array_get(errors, 0), "reason")));
	json_decref(errors);
	return rc;
}

/* The start is over, or never began: a waiting stop goes on. */
static void
not_starting(struct work_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->starting = false;
	pthread_cond_broadcast(&q->started);
	pthread_mutex_unlock(&q->lock);
}

/*
 * Starts one claimed record here.  A record that cannot run anywhere
 * (unknown job, bad id or params) is finished failed; one that cannot run
 * here now (no memory, a full registry) is left to lapse and be claimed
 * again.
 */
static void
start_claimed(struct work_queue *q, struct config *cfg, struct store_job *rec)
{
	const struct job_def *def;
	struct job_instance *inst;
	struct wq_job *j = NULL;
	json_t *params = NULL;
	char why[200];
	bool go;

	rec->id[sizeof(rec->id) - 1] = rec->job[sizeof(rec->job) - 1] = '\0';
	if (!job_id_valid(rec->id)) {
		refuse_claim(q, rec, "bad id");
		return;
	}
	if ((def = config_find_job(cfg, rec->job)) == NULL) {
		refuse_claim(q, rec, "unknown job");
		return;
	}
	switch (claimed_params(def, rec->params, &params, why, sizeof(why))) {
	case 0:
		break;
	case 1:
		refuse_claim(q, rec, why);
		return;
	default:
		goto later;
	}
	inst = job_new_claimed(q->o.env, cfg, def, params, rec->id,
			       rec->attempt);
	if (inst == NULL)
		goto later;
	/*
	 * A claim still under way when the stop began must start nothing:
	 * the stop frees the pool and the timer while this thread lives on,
	 * so work_queue_stop_claiming() waits out a start it let begin.
	 */
	pthread_mutex_lock(&q->lock);
	go = q->starting = q->claiming;
	pthread_mutex_unlock(&q->lock);
	/* Its item first: a job in the registry must run. */
	if (!go || (j = calloc(1, sizeof(*j))) == NULL ||
	    registry_add(q->o.registry, inst) != 0) {
		free(j);
		job_unref(inst);
		goto later;
	}
	j->q = q;
	j->inst = inst;
	pthread_mutex_lock(&q->lock);
	j->next = q->jobs;
	q->jobs = j;
	q->njobs++;
	q->nclaimed++;
	pthread_mutex_unlock(&q->lock);
	log_info("queue: job %s (id %s, attempt %u) claimed", def->name,
		  inst->id, inst->attempt);
	/* May run on_job_done() at once: not under the lock. */
	future_on_done(inst->future, &j->waiter, on_job_done, j);
	job_run(inst);		/* a failure completes the future */
	not_starting(q);
	return;
later:
	not_starting(q);
	log_warn("queue: job %s (id %s) not started here; it is claimed "
		 "again after its lease", rec->job, rec->id);
}

/*
 * Claims as many jobs as there is room for, and starts them.  Returns
 * true if the claim filled the room (there may be more to take).
 */
static bool
claim(struct work_queue *q)
{
	struct config *cfg;
	size_t room, i;
	int n;

	pthread_mutex_lock(&q->lock);
	room = q->claiming && q->njobs < q->o.capacity ?
	       q->o.capacity - q->njobs : 0;
	pthread_mutex_unlock(&q->lock);
	if (room == 0)
		return false;
	n = store_claim(q->o.store, room, q->claimed);
	if (n <= 0) {
		if (n < 0)
			log_debug("queue: claim failed: %s", strerror(errno));
		return false;
	}
	cfg = q->o.config(q->o.config_arg);
	for (i = 0; i < (size_t)n; i++) {
		start_claimed(q, cfg, &q->claimed[i]);
		store_job_clear(&q->claimed[i]);
	}
	config_unref(cfg);
	return (size_t)n == room;
}

/* ---- the thread --------------------------------------------------------------- */

/*
 * Renews the leases of the jobs on the list, done ones too (an outcome
 * not written yet is retried under its lease), and of no other row.
 */
static void
renew(struct work_queue *q)
{
	struct wq_job *j;
	size_t n = 0;

	pthread_mutex_lock(&q->lock);
	for (j = q->jobs; j != NULL && n < q->o.capacity; j = j->next)
		snprintf(q->held[n++], STORE_ID_MAX, "%s", j->inst->id);
	pthread_mutex_unlock(&q->lock);
	/* Idle, it asks nothing. */
	if (n > 0 && store_renew(q->o.store,
				 (const char (*)[STORE_ID_MAX])q->held, n) < 0)
		log_debug("queue: lease renewal failed");
}

/*
 * The cancels asked for: each id that runs here is cancelled, every run
 * of it (a lease that lapsed while it ran here can bring the id back at
 * the next attempt while the first still runs).
 */
static void
cancel_asked(struct work_queue *q, char (*ids)[STORE_ID_MAX], size_t n)
{
	struct job_instance *hit;
	struct wq_job *j;
	size_t i;

	for (i = 0; i < n; i++) {
		for (;;) {
			hit = NULL;
			pthread_mutex_lock(&q->lock);
			/* Marked by job_cancel(): the next look skips it. */
			for (j = q->jobs; j != NULL && hit == NULL;
			     j = j->next)
				if (!j->done &&
				    !job_cancel_requested(j->inst) &&
				    !strcmp(j->inst->id, ids[i]))
					hit = job_ref(j->inst);
			pthread_mutex_unlock(&q->lock);
			if (hit == NULL)
				break;
			log_info("queue: job %s (id %s) cancelled on request",
				 hit->def->name, hit->id);
			job_cancel(hit);
			job_unref(hit);
		}
	}
}

static void *
runner(void *arg)
{
	struct work_queue *q = arg;
	int64_t period = q->o.lease_ns / 3, next_tick = mono_ns();
	struct timespec until;
	bool more = true, tick, quit;
	size_t ncancels;

	if (period < 10000000)
		period = 10000000;
	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (!q->quit && !q->claim_now && q->ndone == 0 &&
		       q->ncancels == 0 && !more && mono_ns() < next_tick) {
			until.tv_sec = next_tick / 1000000000;
			until.tv_nsec = next_tick % 1000000000;
			pthread_cond_timedwait(&q->wake, &q->lock, &until);
		}
		quit = q->quit;
		more = more || q->claim_now || q->ndone > 0;
		q->claim_now = false;
		ncancels = q->ncancels;
		memcpy(q->taken, q->cancels, ncancels * sizeof(q->taken[0]));
		q->ncancels = 0;
		pthread_mutex_unlock(&q->lock);
		cancel_asked(q, q->taken, ncancels);
		tick = mono_ns() >= next_tick;
		if (tick) {
			renew(q);
			next_tick = mono_ns() + period;
		}
		finish_done(q);
		if (quit)
			break;
		if (more || tick)
			more = claim(q);
	}
	return NULL;
}

struct work_queue *
work_queue_start(const struct work_queue_options *o)
{
	struct work_queue *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;
	int err;

	if (q == NULL || o->capacity == 0 ||
	    (q->claimed = calloc(o->capacity, sizeof(*q->claimed))) == NULL ||
	    (q->held = calloc(o->capacity, sizeof(*q->held))) == NULL) {
		if (q != NULL)
			free(q->claimed);
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	q->o = *o;
	q->claiming = true;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&q->started, NULL);
	if ((err = pthread_create(&q->thread, NULL, runner, q)) != 0) {
		pthread_cond_destroy(&q->started);
		pthread_cond_destroy(&q->wake);
		pthread_mutex_destroy(&q->lock);
		free(q->held);
		free(q->claimed);
		free(q);
		errno = err;
		return NULL;
	}
	/* Once it can fail no more: the handler stays until store_close(). */
	store_set_events(o->store, on_store_event, q);
	log_info("queue: running up to %u jobs of the shared queue, lease "
		 "%.1f s", o->capacity, (double)o->lease_ns / 1e9);
	return q;
}

void
work_queue_stop_claiming(struct work_queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->claiming = false;
	while (q->starting)
		pthread_cond_wait(&q->started, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void
work_queue_release(struct work_queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->claiming = false;
	q->releasing = true;
	pthread_mutex_unlock(&q->lock);
}

size_t
work_queue_running(struct work_queue *q)
{
	size_t n;

	if (q == NULL)
		return 0;
	pthread_mutex_lock(&q->lock);
	n = q->njobs;
	pthread_mutex_unlock(&q->lock);
	return n;
}

uint64_t
work_queue_claimed(struct work_queue *q)
{
	uint64_t n;

	if (q == NULL)
		return 0;
	pthread_mutex_lock(&q->lock);
	n = q->nclaimed;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
work_queue_stop(struct work_queue *q)
{
	struct wq_job *j;

	if (q == NULL || q->joined)
		return;
	pthread_mutex_lock(&q->lock);
	q->quit = true;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);	/* it finished what it could */
	q->joined = true;
	while ((j = q->jobs) != NULL) {
		q->jobs = j->next;
		log_warnx("queue: job %s (id %s): outcome not written; it is "
			  "claimed again after its lease", j->inst->def->name,
			  j->inst->id);
		job_unref(j->inst);
		free(j);
	}
	q->njobs = 0;
}

void
work_queue_free(struct work_queue *q)
{
	if (q == NULL)
		return;
	work_queue_stop(q);
	pthread_cond_destroy(&q->started);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q->held);
	free(q->claimed);
	free(q);
}
