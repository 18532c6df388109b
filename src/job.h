/*
 * job.h - job instances: one execution of a configured job.
 *
 * An instance ties a job definition (borrowed from a config it holds a
 * reference on) to a future, an id, and the kind-specific state that runs
 * it.  Instances are refcounted: the creator, the registry and the kind's
 * pending work (a timer entry, a queued pool item) each hold one.
 *
 * The id is "<instance name>-<boot id>-<sequence>", so that behind a load
 * balancer the instance that owns a job can be told from its id, and ids
 * from an earlier run of the daemon are not reused.
 */
#ifndef TASKPOOLD_JOB_H
#define TASKPOOLD_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "future.h"
#include "pool.h"
#include "timer.h"

struct job_gate;
struct job_instance;
struct metrics_family;
struct registry;

#define JOB_ID_MAX (CONFIG_NAME_MAX + 32)
#define JOB_KINDS_MAX 8		/* room in job_env for each kind's state */

/* What instances need from the daemon; borrowed, outlives them all. */
/* Slots of job_env.duration_hits. */
#define JOB_DURATION_HITS 64
struct job_duration_hit;

struct job_env {
	struct timer *timer;
	struct pool *pool;
	/* "<instance>-<boot id>-": fixed at start, the boot id random. */
	char id_prefix[CONFIG_NAME_MAX + 11];
	size_t id_prefix_len;
	atomic_uint_fast64_t next_seq;
	atomic_bool log_jobs;		/* one log line per finished job */
	/*
	 * Where each finished instance's duration is observed, labelled
	 * with its job's name and final state (metrics.h); borrowed, NULL
	 * for none.  Set after job_env_init(), before any instance.
	 */
	struct metrics_family *job_durations;
	/*
	 * The job_durations series last found for a job name and final
	 * state (job.c): each slot set once by compare-and-swap, read
	 * lock-free, owned and freed by job_env_clear().  A hit is checked
	 * against the slot's own copy of the name, since a name's pointer
	 * may be reused by a later config.
	 */
	_Atomic(struct job_duration_hit *) duration_hits[JOB_DURATION_HITS];
	/*
	 * Test seam, NULL in the daemon: when set, a kind calls it on the
	 * starting thread right after the future moved to RUNNING and
	 * before it arms what will complete it, so that a test can force a
	 * cancel into that window.  A field of the env rather than a build
	 * flag, so the tests run the very code the daemon runs, and rather
	 * than a global, since there is none; it costs one test of a field
	 * already in cache per start.
	 */
	void (*test_after_start)(struct job_instance *inst);
	/*
	 * Told of each instance that moved to RUNNING (job_note_started()),
	 * on the starting thread, before the kind arms what completes it:
	 * the daemon records the start in its store.  NULL (the memory
	 * store, the tests): nothing is told.  Set after job_env_init(),
	 * before any instance; it must not block.
	 */
	void (*on_started)(struct job_instance *inst, void *arg);
	void *on_started_arg;
	/*
	 * What each kind keeps while the daemon runs (a thread, its queue),
	 * by the kind's row in the table: made by kinds_open(), freed by
	 * kinds_close() (kinds/kinds.h).  Only the kind's file looks inside.
	 */
	void *kind_state[JOB_KINDS_MAX];
	/*
	 * Gates of the jobs with max_concurrent or coalesce, by name, made
	 * at first use and kept for the daemon's life (job_gate.h).  The
	 * lock guards the list.
	 */
	pthread_mutex_t gates_lock;
	struct job_gate *gates;
};

struct job_instance {
	atomic_uint refs;
	char id[JOB_ID_MAX];
	/*
	 * The number the id ends with, from env->next_seq: the order in
	 * which the daemon created its instances, never 0.  Listings are in
	 * this order (registry_list()).
	 */
	uint64_t seq;
	/*
	 * 0 for an instance of this daemon's own; for one claimed from the
	 * shared queue (job_new_claimed()), the claim's attempt number: the
	 * fencing token its finish carries (store.h).
	 */
	unsigned attempt;
	/*
	 * Set once, before anyone else sees it, on an instance that was
	 * handed to the shared queue instead of run here (api_queue.h): it
	 * names the job for its run's answer and is never started; its
	 * record, wherever it runs, is the store's.
	 */
	bool enqueued;
	const struct job_def *def;	/* borrowed from cfg */
	struct config *cfg;		/* a reference */
	struct job_env *env;		/* borrowed */
	struct future *future;		/* a reference */
	/*
	 * The validated values of the job's declared parameters (params.h):
	 * an object of its own (empty for a job without parameters), a
	 * reference, never NULL, never changed after job_new().
	 */
	json_t *params;
	struct future_waiter log_waiter;
	/*
	 * Set by job_cancel(), never cleared: a cancel that finds nothing to
	 * stop yet (the kind is between starting the future and arming what
	 * completes it) leaves this mark, and the kind checks it once armed
	 * and again before it completes the future.  See job_cancel().
	 */
	atomic_bool cancel_requested;

	/*
	 * Owned by job_gate.c, for jobs with max_concurrent or coalesce:
	 * its gate, its place there (guarded by the gate's lock), its
	 * coalescing key, and the twin it joined (a reference, set once).
	 */
	struct {
		struct job_gate *gate;
		void (*start)(struct job_instance *inst);
		int state;
		struct job_instance *prev, *next;	/* queue */
		struct job_instance *twin_prev, *twin_next;
		bool twin_listed;
		char *key;
		struct future_waiter waiter;
		_Atomic(struct job_instance *) joined;
		struct future_waiter join_waiter;
	} gate;

	/* For the kind (sleep: its timer entry holds a reference). */
	struct timer_entry timer;
	/*
	 * The kind's room in the instance's block (kind->room), zeroed,
	 * NULL for none: it lives as long as the future (job_unref()).
	 */
	char *kind_room;

	/* Owned by registry.c, guarded by the registry's lock. */
	struct {
		struct job_instance *hash_next;
		struct job_instance *prev, *next;	/* live or finished list */
		int64_t finished_ns;	/* monotonic */
		enum future_state state;	/* its final one, once finished */
		bool finished;
		bool listed;
		struct registry *owner;
		struct future_waiter waiter;
	} reg;
};

/*
 * Prepares env; logs jobs by default; job_env_clear() frees what it made
 * (and since), once no instance is live.  instance (copied) prefixes every id
 * for the daemon's whole life: ids must not change owner on reload.
 * This function can't fail.
 */
void job_env_init(struct job_env *env, const char *instance,
		  struct timer *timer, struct pool *pool);
void job_env_clear(struct job_env *env);

/*
 * The instance that inst joined instead of running its own (coalesce),
 * borrowed while inst is held, or NULL.
 */
const struct job_instance *job_joined(const struct job_instance *inst);

/*
 * Writes prefix (prefix_len bytes) and seq in decimal into id, with its
 * NUL: an instance's id ("<instance>-<boot id>-<seq>"), a run's ("...-r<seq>").
 * id has room for prefix_len + 21 bytes.  This function can't fail.
 */
void job_format_id(char *id, const char *prefix, size_t prefix_len,
		   uint64_t seq);

/*
 * Creates an instance of def (which must belong to cfg), not started yet:
 * its future is QUEUED.  params (stolen, NULL for none) are its validated
 * parameter values.  Returns a new reference, or NULL (ENOMEM; params are
 * freed then too).
 */
struct job_instance *job_new(struct job_env *env, struct config *cfg,
			     const struct job_def *def, json_t *params);

/*
 * Like job_new(), for a job whose id another instance gave it: one
 * claimed from the shared queue (work_queue.h), which keeps its id there
 * and carries attempt (>= 1) to its finish.  It still takes a seq of this
 * daemon's, for the registry's order.  id is copied; it must pass
 * job_id_valid().  Returns a new reference, or NULL with errno EINVAL (a
 * bad id) or ENOMEM; params are freed then too.
 */
struct job_instance *job_new_claimed(struct job_env *env, struct config *cfg,
				     const struct job_def *def, json_t *params,
				     const char *id, unsigned attempt);

/*
 * Whether id may be a job's id: 1 to JOB_ID_MAX - 1 bytes of
 * [A-Za-z0-9._-], as this daemon's own are.  Ids from the database are
 * checked with it before they reach a URL, a log or the registry.
 */
bool job_id_valid(const char *id);

/*
 * For kinds (and the gate, for a job that joined a twin): inst's future
 * has just moved to RUNNING.  Tells env->on_started, if set.  Inline: one
 * test of a field on every start when nothing listens.
 */
static inline void
job_note_started(struct job_instance *inst)
{
	if (inst->env->on_started != NULL)
		inst->env->on_started(inst, inst->env->on_started_arg);
}

/*
 * Hands the instance to its kind, which completes the future later (or
 * now).  A job with max_concurrent waits QUEUED in its gate while the
 * limit is reached; one with coalesce joins a live instance of the same
 * parameters instead (job_gate.h).  Returns 0, or -1 with errno (EAGAIN:
 * the kind has no room now); the future is then completed FAILED with
 * the reason.
 */
int job_run(struct job_instance *inst);

/*
 * An instance is refcounted: job_new() returns the caller's reference;
 * job_ref() adds one (returns inst), job_unref() drops one and, with the
 * last (NULL is ok), lets go of what the instance holds (its params, its
 * config reference) and then of its future reference.  The instance lies
 * in its future's block (future_new_with()), one allocation for both, so
 * its memory goes with the future's last reference (a run may hold one
 * longer); it must not be used after its own last reference all the
 * same.  The registry and an armed timer entry hold their own.
 */
struct job_instance *job_ref(struct job_instance *inst);
void job_unref(struct job_instance *inst);

/*
 * Stops an instance that has not completed: cancels it if still queued,
 * or asks its kind to stop it.  Returns true if this call completed the
 * future.  A cancel always wins over a kind's own completion, whatever the
 * interleaving: when it returns false the future is either already
 * complete, or will be completed CANCELLED by the kind's thread (the one
 * starting the job, or the one about to complete it), which sees the mark
 * this call leaves first.  Only a kind without a cancel ignores it.
 */
bool job_cancel(struct job_instance *inst);

/*
 * True once job_cancel() has been called on inst.  For kinds: read after
 * arming (the arming's lock orders it after a cancel that found nothing
 * armed) and before completing a job as anything but CANCELLED.
 */
bool job_cancel_requested(struct job_instance *inst);

#endif
