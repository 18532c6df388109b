/*
 * daemon.h - the one daemon context: everything that lives from start-up
 * to shutdown, passed down explicitly (there is no other global state but
 * the log level).
 *
 * main.c wires it up: daemon_start(), then signals drive daemon_reload()
 * and daemon_stop().
 */
#ifndef TASKPOOLD_DAEMON_H
#define TASKPOOLD_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>

#include "api_metrics.h"
#include "config.h"
#include "job.h"
#include "notify.h"
#include "pool.h"
#include "registry.h"
#include "server.h"
#include "store/store.h"
#include "timer.h"

struct api_run_table;
struct store;
struct work_queue;

struct daemon {
	pthread_mutex_t config_lock;	/* guards cfg (the pointer) */
	struct config *cfg;		/* a reference; swapped on reload */
	const char *listen_override;	/* -l, borrowed from argv */
	bool socket_passed;		/* serving the manager's socket */
	bool verbose;			/* -v: debug whatever the file says */

	struct timer *timer;
	struct pool *pool;
	struct registry *registry;
	struct api_run_table *runs;	/* the API's runs, /runs/{id} */
	/*
	 * Durable records ([store], read at start only): below the registry
	 * and the runs table, for ids they no longer hold.  Opened before
	 * serving, closed once every job is done.  store_durable: the
	 * backend keeps something (not memory), so changes are recorded.
	 */
	struct store *store;
	bool store_durable;
	/* The shared queue's runner, when the store has a queue; or NULL. */
	struct work_queue *queue;
	struct job_env env;
	bool kinds_open;		/* kinds_open() succeeded on env */
	struct server *server;
	/*
	 * What the daemon counts, from daemon_start() to the end of
	 * daemon_stop(): the server reports to it until server_free(), job
	 * instances until the last one completes (job_env_clear()).
	 */
	struct api_metrics metrics;
	struct timer_entry expiry;	/* registry expiry, every second */
	size_t expired;		/* timer thread: this burst's expiries */
	/*
	 * Held by on_expiry() for its whole run, and by daemon_stop() to end
	 * the expiry for good before the pool goes (on_expiry() submits
	 * trims to it).  Guards expiry_stopped.  Taken before any other.
	 */
	pthread_mutex_t expiry_lock;
	bool expiry_stopped;
	atomic_bool stopping;
	struct notify notify;		/* the service manager; main thread */
};

/*
 * Builds the runtime from cfg (a reference is taken) and starts serving:
 * on listen_fd, a listening socket passed by the service manager
 * (activation_take_socket(); taken, and closed on failure too), or, with
 * -1, on listen_override (-l) or else the config's listen.  Returns 0, or
 * -1 with the reason logged and nothing left running.
 */
int daemon_start(struct daemon *d, struct config *cfg,
		 const char *listen_override, int listen_fd, bool verbose);

/*
 * What the daemon is doing, for STATUS=: "PHASE, N requests open, M jobs
 * live, Q queued" into buf (cut to size).  Requests open are those not yet
 * answered; live jobs are queued or running, detached ones included.
 */
void daemon_status(struct daemon *d, const char *phase, char *buf,
		   size_t size);

/* The current config, as a new reference. */
struct config *daemon_config(struct daemon *d);

/*
 * Swaps in a new config (a reference is taken).  Jobs and routes change at
 * once for new requests; running work keeps the config it started with.
 * Settings that need a restart (listen, threads, workers, queue) are kept
 * and logged.
 */
void daemon_reload(struct daemon *d, struct config *cfg);

/*
 * Graceful stop: stop accepting, let requests finish for drain_timeout,
 * cancel what is left, answer everything, and free it all.  `why` (the
 * signal's name) is logged as "<why>: stopping" only once new requests
 * are refused, so the line is a promise operators and tests can rely on.
 * A signal of `hurry` (blocked in the calling thread; NULL for none)
 * arriving during the drain ends it at once: an operator's second
 * SIGTERM or Ctrl-C.  Tells the service manager STOPPING=1 with the
 * counts (STATUS=draining, ...), their changes during the drain (at most
 * once a second), and the jobs cancelled at its end.  Main thread only.
 */
void daemon_stop(struct daemon *d, const char *why, const sigset_t *hurry);

/*
 * daemon_store.c: opens d->store from cfg's [store] and, unless it is
 * the memory backend, sets the registry's observer and the jobs'
 * on_started to record every change; 0, or -1 with the reason logged.
 * daemon_store_reload() warns when a reload changes [store] (the running
 * store is kept).  daemon_store_close() commits what is left and closes
 * it, once no job or run can change any more.
 */
int daemon_store_open(struct daemon *d, const struct config *cfg);
void daemon_store_reload(const struct config *old, const struct config *new);
void daemon_store_close(struct daemon *d);

#endif
