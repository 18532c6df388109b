/*
 * daemon.c - see daemon.h.
 */
#include <errno.h>
#include <malloc.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "api_run_table.h"
#include "daemon.h"
#include "kinds/kinds.h"
#include "log.h"
#include "store/store.h"
#include "tls.h"
#include "work_queue.h"

#define EXPIRY_PERIOD_NS INT64_C(1000000000)
/*
 * At most this many records per tick, then again after EXPIRY_BUSY_NS:
 * dropping 240,000 at once held the timer thread for 90 ms (sleep jobs
 * fired that late) and the registry lock long enough to stall /healthz
 * by 24 ms.  4,096 take about 1.5 ms, and 800,000 a second can go.
 */
#define EXPIRY_BATCH 4096
#define EXPIRY_BUSY_NS INT64_C(5000000)
/*
 * How long a stop waits, within drain_timeout, for the first request of a
 * connection accepted before it (server_owed()): a client sends it right
 * after connecting, so this is ample, and an idle one (a browser's
 * preconnect) holds the stop no longer.
 */
#define FRESH_GRACE_NS INT64_C(1000000000)

#ifdef __GLIBC__
/*
 * Pool work: hand freed memory back to the system, unless jobs run again
 * by now.  malloc_trim() takes tens of ms after a burst, so it runs on a
 * worker, which may block, and not on the timer thread, which must not.
 */
static enum future_state
trim_heap(void *arg, char **result, char **error)
{
	struct daemon *d = arg;

	(void)result;
	(void)error;
	if (registry_counts(d->registry).live == 0)
		malloc_trim(0);
	return FUTURE_SUCCEEDED;
}
#endif

/* One expiry tick: a batch of expired records, then the next tick. */
static void
expire_and_rearm(struct daemon *d)
{
	size_t n;

	n = registry_expire(d->registry, timer_now_ns(), EXPIRY_BATCH);
	d->expired += n;
	/* Runs hold their jobs: they go first, in the same batches. */
	if (api_run_table_expire(d->runs, timer_now_ns(), EXPIRY_BATCH) ==
	    EXPIRY_BATCH)
		n = EXPIRY_BATCH;
	if (n == EXPIRY_BATCH) {	/* more to go: soon, not in a second */
		if (timer_add(d->timer, &d->expiry, EXPIRY_BUSY_NS) != 0)
			log_warn("registry expiry stopped");
		return;
	}
	if (d->expired > 0) {
		log_debug("registry: %zu finished jobs expired", d->expired);
		d->expired = 0;
		/*
		 * After a burst, once nothing runs, hand the freed memory
		 * back: glibc keeps it otherwise (fragmented heaps, one arena
		 * per thread).  On a worker (trim_heap()), which checks again
		 * that no job runs.  A full queue means work to do: skip it.
		 */
#ifdef __GLIBC__
		if (registry_counts(d->registry).live == 0)
			future_unref(pool_submit(d->pool, trim_heap, NULL, d));
#endif
	}
	if (timer_add(d->timer, &d->expiry, EXPIRY_PERIOD_NS) != 0)
		log_warn("registry expiry stopped");
}

/*
 * Timer callback: drop expired registry entries, then re-arm.  Under
 * expiry_lock, so that once stop_expiry() has set expiry_stopped no run
 * of it is under way or to come: it submits to the pool, which the stop
 * frees before the timer.
 */
static void
on_expiry(struct timer_entry *e, bool fired)
{
	struct daemon *d = (struct daemon *)((char *)e -
					     offsetof(struct daemon, expiry));

	if (!fired)
		return;
	pthread_mutex_lock(&d->expiry_lock);
	if (!d->expiry_stopped)
		expire_and_rearm(d);
	pthread_mutex_unlock(&d->expiry_lock);
}

/* Ends the registry's expiry for good: no run under way, none to come. */
static void
stop_expiry(struct daemon *d)
{
	pthread_mutex_lock(&d->expiry_lock);
	d->expiry_stopped = true;
	timer_cancel(d->timer, &d->expiry);
	pthread_mutex_unlock(&d->expiry_lock);
}

static void
apply_log_settings(struct daemon *d, const struct config *cfg)
{
	/* -v (debug) on the command line wins over the file. */
	log_set_level(d->verbose ? LOG_LEVEL_DEBUG : cfg->log.level);
	atomic_store(&d->env.log_jobs, cfg->log.jobs);
	if (d->server != NULL)	/* at start, server_options says it */
		server_set_access_log(d->server, cfg->log.access_log);
}

/*
 * The timer, the pool, the registry and its expiry: what jobs need.
 * Returns 0, or -1 with the reason logged (the caller frees what was made).
 */
static int
start_job_machinery(struct daemon *d, struct config *cfg)
{
	d->timer = timer_new();
	if (d->timer == NULL) {
		log_warn("timer thread");
		return -1;
	}
	d->pool = pool_new(cfg->pool.workers, cfg->pool.queue);
	if (d->pool == NULL) {
		log_warn("worker pool");
		return -1;
	}
	d->registry = registry_new(cfg->registry.max_jobs,
				   cfg->registry.retain_ns);
	if (d->registry == NULL) {
		log_warn("registry");
		return -1;
	}
	job_env_init(&d->env, cfg->server.instance, d->timer, d->pool);
	d->env.job_durations = d->metrics.job_duration;
	d->runs = api_run_table_new(cfg->registry.max_runs,
				    cfg->registry.retain_ns, d->env.id_prefix);
	if (d->runs == NULL) {
		log_warn("runs table");
		return -1;
	}
	if (kinds_open(&d->env) != 0) {
		log_warn("job kinds");
		return -1;
	}
	d->kinds_open = true;
	timer_entry_init(&d->expiry, on_expiry);
	if (timer_add(d->timer, &d->expiry, EXPIRY_PERIOD_NS) != 0) {
		log_warn("registry expiry");
		return -1;
	}
	return 0;
}

static struct config *
current_config(void *arg)
{
	return daemon_config(arg);
}

/*
 * The shared queue's runner, when the store has a queue: it runs as many
 * of its jobs at once as the pool has workers (what a worker-bound job
 * needs; sleep jobs hold none, but a bound the operator already chose
 * beats a new one).  Returns 0, or -1 (logged).
 */
static int
start_queue(struct daemon *d, const struct config *cfg)
{
	struct work_queue_options o;

	if (d->store == NULL || !store_has_queue(d->store))
		return 0;
	memset(&o, 0, sizeof(o));
	o.store = d->store;
	o.env = &d->env;
	o.registry = d->registry;
	o.config = current_config;
	o.config_arg = d;
	o.capacity = cfg->pool.workers;
	o.lease_ns = cfg->store.lease_ns;
	d->queue = work_queue_start(&o);
	if (d->queue == NULL) {
		log_warn("shared queue runner");
		return -1;
	}
	return 0;
}

/*
 * The HTTP server on addr, or on listen_fd (taken) with addr NULL,
 * answering through the API, over TLS with `tls`.  0, or -1 (logged).
 */
static int
start_server(struct daemon *d, const struct config *cfg,
	     const struct sockaddr_storage *addr, unsigned addrlen,
	     int listen_fd, bool tls)
{
	struct server_options opts;

	memset(&opts, 0, sizeof(opts));
	opts.addr = (const struct sockaddr *)addr;
	opts.addrlen = addrlen;
	opts.listen_fd = listen_fd;
	opts.threads = cfg->server.threads;
	opts.max_connections = cfg->server.max_connections;
	opts.max_connections_per_ip = cfg->server.max_connections_per_ip;
	opts.header_timeout_ns = cfg->server.header_timeout_ns;
	opts.body_timeout_ns = cfg->server.body_timeout_ns;
	opts.connection_memory = cfg->server.connection_memory;
	opts.connection_timeout_s = cfg->server.connection_timeout_s;
	opts.max_body = cfg->server.max_body;
	opts.handler = api_handle;
	opts.handler_arg = d;
	opts.observe = api_metrics_observe;
	opts.observe_arg = &d->metrics;
	opts.access_log = cfg->log.access_log;
	if (tls) {
		opts.tls = cfg->server.tls;
		opts.tls_priorities = cfg->server.tls_priorities;
	}
	d->server = server_new(&opts);
	return d->server != NULL ? 0 : -1;
}

/*
 * TLS is on when the listen in use (-l, or [server] listen; under socket
 * activation its address is ignored, not its scheme) is https://, and
 * then needs cert and key, which config_load() has loaded.  Returns 0, or
 * -1 (logged).
 */
static int
check_tls(const struct config *cfg, const char *listen)
{
	char serial[48];

	if (!config_listen_tls(listen)) {
		if (cfg->server.tls != NULL)
			log_warnx("[server] cert and key are not used: listen "
				  "%s is not https://", listen);
		return 0;
	}
	if (cfg->server.tls == NULL) {
		log_warnx("listen %s needs [server] cert and key", listen);
		return -1;
	}
	tls_creds_serial(cfg->server.tls, serial, sizeof(serial));
	log_info("TLS: certificate %s (serial %s), priorities %s",
		 cfg->server.cert, serial, cfg->server.tls_priorities);
	return 0;
}

int
daemon_start(struct daemon *d, struct config *cfg,
	     const char *listen_override, int listen_fd, bool verbose)
{
	const char *listen = listen_override ? listen_override :
			     cfg->server.listen;
	char where[64];
	struct sockaddr_storage ss;
	unsigned socklen = 0;

	memset(d, 0, sizeof(*d));
	notify_init(&d->notify);
	pthread_mutex_init(&d->config_lock, NULL);
	pthread_mutex_init(&d->expiry_lock, NULL);
	d->cfg = config_ref(cfg);
	d->listen_override = listen_override;
	d->socket_passed = listen_fd >= 0;
	d->verbose = verbose;
	atomic_init(&d->stopping, false);
	if (d->socket_passed)
		log_info("socket activation: serving fd %d from the service "
			 "manager; listen %s (%s) is ignored", listen_fd, listen,
			 listen_override ? "-l" : "[server] listen");
	else if (config_parse_listen(listen, &ss, &socklen) != 0) {
		log_warnx("bad listen address '%s' (expected "
			  "[https://]ADDRESS:PORT)",
			  listen);
		goto fail;
	}
	if (check_tls(cfg, listen) != 0)
		goto fail;
	if (api_metrics_init(&d->metrics, cfg->pool.workers) != 0 ||
	    start_job_machinery(d, cfg) != 0 ||
	    daemon_store_open(d, cfg) != 0)
		goto fail;
	apply_log_settings(d, cfg);
	/* From here the server owns listen_fd, on failure too. */
	if (start_server(d, cfg, d->socket_passed ? NULL : &ss, socklen,
			 listen_fd, config_listen_tls(listen)) != 0) {
		listen_fd = -1;
		goto fail;
	}
	server_address(d->server, where, sizeof(where));
	log_info("listening on %s%s (port %u), %u HTTP threads, %u workers, "
		 "%zu jobs and %zu routes from %s", d->socket_passed &&
		 config_listen_tls(listen) ? "https://" : "",
		 d->socket_passed ? where : listen, (unsigned)server_port(d->server), cfg->server.threads,
		 cfg->pool.workers, cfg->njobs, cfg->nroutes, cfg->path);
	/*
	 * Last, so that nothing after it can fail: a job it claims needs
	 * the whole daemon's stop to end.  Without it the instance still
	 * serves, and queues; the other instances run the queue.
	 */
	if (start_queue(d, cfg) != 0)
		log_warnx("queue: this instance claims no work of the shared "
			  "queue");
	return 0;
fail:
	if (listen_fd >= 0)
		close(listen_fd);
	if (d->kinds_open)
		kinds_close(&d->env);
	timer_free(d->timer);
	pool_free(d->pool);
	api_run_table_free(d->runs);
	registry_free(d->registry);
	daemon_store_close(d);
	if (d->env.timer != NULL)	/* job_env_init() ran */
		job_env_clear(&d->env);
	config_unref(d->cfg);
	api_metrics_clear(&d->metrics);
	pthread_mutex_destroy(&d->expiry_lock);
	pthread_mutex_destroy(&d->config_lock);
	return -1;
}

static const char *
plural(size_t n)
{
	return n == 1 ? "" : "s";
}

void
daemon_status(struct daemon *d, const char *phase, char *buf, size_t size)
{
	size_t open = server_active(d->server);
	size_t live = registry_counts(d->registry).live;

	snprintf(buf, size, "%s, %zu request%s open, %zu job%s live, %zu "
		 "queued", phase, open, plural(open), live, plural(live),
		 pool_queued(d->pool));
}

struct config *
daemon_config(struct daemon *d)
{
	struct config *cfg;

	pthread_mutex_lock(&d->config_lock);
	cfg = config_ref(d->cfg);
	pthread_mutex_unlock(&d->config_lock);
	return cfg;
}

/*
 * Logs each setting that only a restart can change.  Under socket
 * activation listen is not ours at all: the socket unit sets the address.
 */
static void
warn_restart_needed(const struct daemon *d, const struct config *old,
		    const struct config *new)
{
	if (strcmp(old->server.listen, new->server.listen) && d->socket_passed)
		log_warnx("reload: listen is ignored: the socket comes from "
			  "the service manager");
	else if (strcmp(old->server.listen, new->server.listen))
		log_warnx("reload: listen changes only on restart");
	if (old->server.threads != new->server.threads ||
	    old->server.max_connections != new->server.max_connections ||
	    old->server.max_connections_per_ip !=
	    new->server.max_connections_per_ip ||
	    old->server.header_timeout_ns != new->server.header_timeout_ns ||
	    old->server.body_timeout_ns != new->server.body_timeout_ns ||
	    old->server.connection_memory != new->server.connection_memory ||
	    old->server.connection_timeout_s !=
	    new->server.connection_timeout_s ||
	    old->server.max_body != new->server.max_body)
		log_warnx("reload: [server] connection settings change only "
			  "on restart");
	if (old->pool.workers != new->pool.workers ||
	    old->pool.queue != new->pool.queue)
		log_warnx("reload: [pool] changes only on restart");
	if (strcmp(old->server.instance, new->server.instance))
		log_warnx("reload: instance name changes only on restart");
	if (strcmp(old->server.tls_priorities, new->server.tls_priorities))
		log_warnx("reload: tls_priorities changes only on restart");
	daemon_store_reload(old, new);
}

/*
 * A TLS server serves the new config's certificate and key to the
 * connections accepted from now on.  Without them (its listen is no
 * longer https://: that takes a restart) the old ones stay.
 */
static void
reload_tls(struct daemon *d, const struct config *cfg)
{
	char serial[48];

	if (cfg->server.tls == NULL ||
	    server_set_tls(d->server, cfg->server.tls) != 0)
		return;
	tls_creds_serial(cfg->server.tls, serial, sizeof(serial));
	log_info("reload: TLS certificate %s (serial %s) for new "
		 "connections", cfg->server.cert, serial);
}

void
daemon_reload(struct daemon *d, struct config *cfg)
{
	struct config *old;
	size_t evicted;

	pthread_mutex_lock(&d->config_lock);
	old = d->cfg;
	d->cfg = config_ref(cfg);
	pthread_mutex_unlock(&d->config_lock);
	warn_restart_needed(d, old, cfg);
	reload_tls(d, cfg);
	evicted = registry_set_limits(d->registry, cfg->registry.max_jobs,
				      cfg->registry.retain_ns);
	api_run_table_set_limits(d->runs, cfg->registry.max_runs,
				 cfg->registry.retain_ns);
	/* The store keeps finished records as long as the registry. */
	store_set_retain(d->store, cfg->registry.retain_ns);
	if (evicted > 0)
		log_info("reload: %zu finished jobs dropped to fit max_jobs "
			 "%u", evicted, cfg->registry.max_jobs);
	apply_log_settings(d, cfg);
	log_info("reloaded %s: %zu jobs, %zu routes", cfg->path, cfg->njobs,
		 cfg->nroutes);
	config_unref(old);
}

static void
cancel_one(struct job_instance *inst, void *arg)
{
	(void)arg;
	job_cancel(inst);
}

/*
 * Waits until no request is open, no connection accepted before the stop
 * waits for its first request (for FRESH_GRACE_NS at most) and no job is
 * running (detached ones included), or timeout_ns passes, or a signal of
 * hurry comes (taken from the pending set; *hurried is then set).
 * Returns how many requests and jobs are left (fresh connections not
 * counted).
 */
static size_t
drain(struct daemon *d, int64_t timeout_ns, const sigset_t *hurry,
      bool *hurried)
{
	const struct timespec tick = { 0, 20 * 1000 * 1000 };
	int64_t start = timer_now_ns(), now, end = start + timeout_ns;
	int64_t next_status = start + EXPIRY_PERIOD_NS;
	char status[NOTIFY_STATUS_MAX];
	size_t live, left;
	int sig;

	*hurried = false;
	for (;;) {
		live = registry_counts(d->registry).live;
		now = timer_now_ns();
		if ((now < start + FRESH_GRACE_NS ? server_owed(d->server) :
		     server_active(d->server)) + live == 0)
			return 0;
		/* An idle fresh connection is nothing left undone. */
		left = server_active(d->server) + live;
		if (now >= end)
			return left;
		if (now >= next_status) {	/* once a second, if changed */
			daemon_status(d, "draining", status, sizeof(status));
			notify_status(&d->notify, status);
			next_status = now + EXPIRY_PERIOD_NS;
		}
		if (hurry == NULL) {
			nanosleep(&tick, NULL);
			continue;
		}
		sig = sigtimedwait(hurry, NULL, &tick);
		if (sig > 0) {
			log_info("second signal (%s): stopping now",
				 strsignal(sig));
			*hurried = true;
			return left;
		}
	}
}

void
daemon_stop(struct daemon *d, const char *why, const sigset_t *hurry)
{
	struct config *cfg = daemon_config(d);
	char status[NOTIFY_STATUS_MAX];
	bool hurried;
	size_t left, n;

	atomic_store(&d->stopping, true);
	work_queue_stop_claiming(d->queue);
	server_quiesce(d->server);
	daemon_status(d, "draining", status, sizeof(status));
	notify_send(&d->notify, "STOPPING=1", status);
	log_info("%s: stopping", why);
	left = drain(d, cfg->server.drain_timeout_ns, hurry, &hurried);
	/*
	 * Closed, the registry takes no new job (a late request gets 503),
	 * so one pass over the live ones cancels them all, and job_cancel()
	 * wins even over a job caught between its start and its timer.
	 */
	registry_close(d->registry);
	/* What the queue gave us and the stop cancels is left to lapse. */
	work_queue_release(d->queue);
	n = registry_foreach_live(d->registry, cancel_one, NULL);
	status[0] = '\0';
	if (left > 0)
		snprintf(status, sizeof(status), "stopping: %s; cancelled "
			 "%zu job%s", hurried ? "drain cut short" :
			 "drain timeout passed", n, plural(n));
	else if (n > 0)
		snprintf(status, sizeof(status), "stopping: cancelled %zu "
			 "job%s started while draining", n, plural(n));
	if (status[0] != '\0') {
		log_info("%s", status);
		notify_status(&d->notify, status);
	}
	/* Their clients' answers go out; a hurried stop waits less. */
	if (left > 0 || n > 0)
		server_drain(d->server, hurried ? EXPIRY_BUSY_NS * 100 :
			     2 * EXPIRY_PERIOD_NS);
	/*
	 * Answer whatever remains and stop HTTP.  Then the pool: a job that
	 * finishes in pool_free() ends its run, whose callback cancels the
	 * route's deadline, so the timer must still be there.  The timer
	 * then discards sleeps and deadlines, which completes their futures.
	 * The registry goes last: futures' waiters point into it.
	 */
	server_free(d->server);
	stop_expiry(d);		/* it submits to the pool */
	/*
	 * The kinds' threads end what still runs (every job is cancelled by
	 * now) while the timer, which their deadlines use, is still there.
	 */
	kinds_close(&d->env);
	pool_free(d->pool);
	timer_free(d->timer);
	/* Every job has completed: their outcomes go to the store. */
	work_queue_stop(d->queue);
	api_run_table_free(d->runs);	/* its runs hold jobs */
	registry_free(d->registry);
	/*
	 * Last: every job and run has made its last change by now, and
	 * the store commits them before it closes.
	 */
	daemon_store_close(d);
	/* After the store: its listening thread may call the runner. */
	work_queue_free(d->queue);
	job_env_clear(&d->env);
	api_metrics_clear(&d->metrics);	/* nothing counts any more */
	config_unref(cfg);
	config_unref(d->cfg);
	pthread_mutex_destroy(&d->expiry_lock);
	pthread_mutex_destroy(&d->config_lock);
	log_info("stopped");
}
