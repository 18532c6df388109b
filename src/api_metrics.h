/*
 * api_metrics.h - what the daemon counts, and GET /metrics.
 *
 * The daemon owns one `struct api_metrics` from start to stop.  The server
 * reports every answer and every client that hangs up to
 * api_metrics_observe(); job instances report their durations into
 * `job_duration` (job.c, through job_env); GET /metrics reads the gauges
 * (pool, registry, store, waiting connections, the process) at the scrape and
 * renders it all.  Every series is in taskpoold(8), METRICS.
 *
 * Labels stay few: a route is its path template, interned (bounded, past
 * API_METRICS_ROUTES_MAX "other"), never the raw path; a method outside
 * the usual ones is "other"; each family holds a bounded number of
 * series (metrics.h), so that neither clients nor reloads can grow them
 * without end.
 */
#ifndef TASKPOOLD_API_METRICS_H
#define TASKPOOLD_API_METRICS_H

#include <stdatomic.h>

#include "metrics.h"
#include "server.h"

struct daemon;

/* Distinct route labels kept over the daemon's life. */
#define API_METRICS_ROUTES_MAX 512
/* The label of a request that matched no route and no resource. */
#define API_METRICS_UNMATCHED "unmatched"

/* Slots of the requests series found by label pointers (observe). */
#define API_METRICS_HITS 64

struct api_metrics_hit;
struct api_metrics_label;

struct api_metrics {
	struct metrics *m;			/* owned */
	struct metrics_family *requests;	/* route, method, code */
	/*
	 * The requests series last found for a route label, method and
	 * status, by their pointers and value: labels live as long as the
	 * observer (server_request_set_label()), methods are constants, so
	 * a pointer names one content for good and a hit needs no hashing
	 * or string comparison.  Each slot is set once (compare-and-swap
	 * from NULL), never replaced, and read lock-free; owned, freed by
	 * api_metrics_clear().  A slot taken by another key falls back to
	 * metrics_series().
	 */
	_Atomic(struct api_metrics_hit *) hits[API_METRICS_HITS];
	/*
	 * The route label last interned for a path template's pointer, the
	 * same way: a hit is checked against the label itself, since a
	 * reload may reuse the pointer for another path.
	 */
	_Atomic(struct api_metrics_label *) labels[API_METRICS_HITS];
	struct metrics_family *rejections;	/* reason */
	struct metrics_family *disconnects;	/* route */
	struct metrics_family *job_duration;	/* job, outcome */
	/* Gauges (and the CPU time), set at each scrape. */
	struct metrics_series *waiting, *workers, *busy, *queued;
	struct metrics_series *jobs_live, *jobs_finished;
	struct metrics_series *store_changes, *store_batches, *store_lost;
	struct metrics_series *store_pending, *store_up;
	/* The shared queue's runner (work_queue.h); 0 without one. */
	struct metrics_series *queue_claimed, *queue_running;
	struct metrics_series *start_time, *cpu, *resident;
};

/*
 * Declares every family; `workers` is the pool's size, fixed until a
 * restart.  Returns 0, or -1 with the reason logged and nothing left to
 * free.
 */
int api_metrics_init(struct api_metrics *am, unsigned workers);

/* Frees what api_metrics_init() made; once no thread uses it. */
void api_metrics_clear(struct api_metrics *am);

/*
 * The server's observer (server_options.observe; arg is the struct
 * api_metrics): counts the request by route, method and code, a refusal
 * by reason, a hang-up by route.  Lock-free but for a new label set.
 */
void api_metrics_observe(void *arg, const struct server_report *r);

/*
 * The label of a route with this path template, for
 * server_request_set_label(): a copy that lives as long as am (the config
 * that path comes from may go on reload).  Lock-free once seen.
 */
const char *api_metrics_route_label(struct api_metrics *am,
				    const char *path);

/* GET or HEAD /metrics: every series in the text format 0.0.4. */
enum server_handled api_metrics_get(struct daemon *d,
				    struct server_request *req);

#endif
