/*
 * work_queue.h - the shared queue runner: runs, on this instance, the jobs
 * of the store's shared queue (store.h, postgresql) that no client waits
 * for, as far as this instance has room.
 *
 * One thread of its own claims jobs (store_claim()) up to its capacity
 * when the store says work was queued (STORE_EVENT_QUEUED), when one of
 * its jobs ends, and on a poll every lease/3 (a lapsed lease of a dead
 * instance comes with no event).  Each claimed record becomes a job
 * instance with the record's id and attempt (job_new_claimed()), listed in
 * the registry and run as any other; when it ends, the thread writes its
 * outcome back with the attempt it claimed (store_finish(); a refusal is
 * a newer attempt's fence, logged).  The same thread renews the leases of
 * what this instance holds every lease/3, and cancels a job it runs when
 * the store asks (STORE_EVENT_CANCEL).
 *
 * Every call to the database is made on that thread: the completion of a
 * job (on a worker, the timer thread, a kind's thread) only queues it for
 * the thread, and the store's event handler only wakes it, so neither an
 * HTTP thread nor a worker ever waits on the database because of the
 * queue.
 *
 * Layering: above the store, the registry and jobs; below the daemon,
 * which starts it when store_has_queue() and hands it the current config
 * through a callback.
 */
#ifndef TASKPOOLD_WORK_QUEUE_H
#define TASKPOOLD_WORK_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct job_env;
struct registry;
struct store;
struct work_queue;

struct work_queue_options {
	struct store *store;		/* borrowed; has a queue */
	struct job_env *env;		/* borrowed */
	struct registry *registry;	/* borrowed */
	/* The current config, as a new reference (daemon_config()). */
	struct config *(*config)(void *arg);
	void *config_arg;
	/*
	 * Jobs from the queue run at once, at most: claims take no more
	 * than what is free of it.  The daemon gives its pool's workers.
	 */
	unsigned capacity;
	int64_t lease_ns;		/* the store's lease */
};

/*
 * Starts the runner's thread and sets the store's event handler.
 * Returns the runner, or NULL with errno (ENOMEM, or pthread_create()'s).
 */
struct work_queue *work_queue_start(const struct work_queue_options *o);

/*
 * A stop begins: claim nothing more.  Jobs running go on (the daemon's
 * drain waits for them as for any other: they are in the registry), and
 * those that end are finished in the store.  NULL is ok.
 */
void work_queue_stop_claiming(struct work_queue *q);

/*
 * The drain is over: the jobs of the queue that the stop cancels from
 * now on are not finished as cancelled in the store but left there, to be
 * claimed again by another instance once their lease lapses (their client
 * was promised a run, and this instance only stops).  NULL is ok.
 */
void work_queue_release(struct work_queue *q);

/*
 * Jobs of the queue this instance runs now (or has run and not yet
 * finished in the store), and claimed since it started, for /metrics.
 * 0 for NULL.
 */
size_t work_queue_running(struct work_queue *q);
uint64_t work_queue_claimed(struct work_queue *q);

/*
 * Finishes what is left to finish (within the store's timeout) and stops
 * the thread.  Every job it started must have completed (the daemon
 * calls it after freeing its kinds, pool and timer), and the store must
 * still be open.  NULL is ok; a second call does nothing.
 */
void work_queue_stop(struct work_queue *q);

/*
 * Frees the runner (stopping it first if need be).  After store_close():
 * the store's listening thread may be calling the event handler until
 * then.  NULL is ok.
 */
void work_queue_free(struct work_queue *q);

#endif
