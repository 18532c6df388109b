/*
 * api_metrics.c - see api_metrics.h.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api_json.h"
#include "api_metrics.h"
#include "clock.h"
#include "daemon.h"
#include "log.h"
#include "work_queue.h"

/*
 * Job durations: from a millisecond to the jobs of minutes that exec and
 * http jobs run (the default timeout is 60 s).
 */
static const double duration_bounds[] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
	60, 300,
};

/* Every family, in the order rendered, and where api_metrics keeps it. */
enum family_id {
	F_REQUESTS, F_REJECTIONS, F_DISCONNECTS, F_WAITING, F_DURATION,
	F_WORKERS, F_BUSY, F_QUEUED, F_REGISTRY, F_STORE_CHANGES,
	F_STORE_BATCHES, F_STORE_LOST, F_STORE_PENDING, F_STORE_UP,
	F_QUEUE_CLAIMED, F_QUEUE_RUNNING, F_START,
	F_CPU, F_RESIDENT, F_COUNT
};

static const struct metrics_desc families[F_COUNT] = {
	[F_REQUESTS] = { METRICS_COUNTER, "taskpoold_http_requests_total",
		"HTTP requests answered, by route (the path template of the "
		"route or resource that matched, else unmatched), method and "
		"status code.",
		{ "route", "method", "code" }, 3, 4096, NULL, 0 },
	[F_REJECTIONS] = { METRICS_COUNTER, "taskpoold_http_rejections_total",
		"HTTP requests refused (answered 4xx, 501, 503 or 505), by "
		"reason.",
		{ "reason" }, 1, 64, NULL, 0 },
	[F_DISCONNECTS] = { METRICS_COUNTER,
		"taskpoold_http_client_disconnects_total",
		"Clients that closed their connection while waiting for an "
		"answer (logged as 499), by route.",
		{ "route" }, 1, 1024, NULL, 0 },
	[F_WAITING] = { METRICS_GAUGE, "taskpoold_http_waiting_connections",
		"Requests waiting for their answer, their connection "
		"suspended.", { NULL }, 0, 0, NULL, 0 },
	[F_DURATION] = { METRICS_HISTOGRAM, "taskpoold_job_duration_seconds",
		"Time from a job's start (its creation, if it never started) "
		"to its end, by job and final state.",
		{ "job", "outcome" }, 2, 2048, duration_bounds,
		sizeof(duration_bounds) / sizeof(duration_bounds[0]) },
	[F_WORKERS] = { METRICS_GAUGE, "taskpoold_pool_workers",
		"Worker threads of the pool.", { NULL }, 0, 0, NULL, 0 },
	[F_BUSY] = { METRICS_GAUGE, "taskpoold_pool_busy_workers",
		"Workers running a job.", { NULL }, 0, 0, NULL, 0 },
	[F_QUEUED] = { METRICS_GAUGE, "taskpoold_pool_queue_depth",
		"Jobs waiting in the queue for a worker.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_REGISTRY] = { METRICS_GAUGE, "taskpoold_registry_jobs",
		"Job instances in the registry: live (queued or running) and "
		"finished (kept for retain).", { "state" }, 1, 2, NULL, 0 },
	[F_STORE_CHANGES] = { METRICS_COUNTER,
		"taskpoold_store_changes_total",
		"Changes of job and run records committed to the store.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_STORE_BATCHES] = { METRICS_COUNTER,
		"taskpoold_store_batches_total",
		"Transactions the store's writer committed them in.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_STORE_LOST] = { METRICS_COUNTER, "taskpoold_store_lost_total",
		"Changes that could not be queued for the store (out of "
		"memory) and were dropped.", { NULL }, 0, 0, NULL, 0 },
	[F_STORE_PENDING] = { METRICS_GAUGE, "taskpoold_store_pending",
		"Changes waiting for the store's writer.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_STORE_UP] = { METRICS_GAUGE, "taskpoold_store_up",
		"Whether the store's backend is reachable (1) or not (0).",
		{ NULL }, 0, 0, NULL, 0 },
	[F_QUEUE_CLAIMED] = { METRICS_COUNTER,
		"taskpoold_queue_claimed_total",
		"Jobs of the shared queue this instance claimed (each attempt "
		"once).", { NULL }, 0, 0, NULL, 0 },
	[F_QUEUE_RUNNING] = { METRICS_GAUGE, "taskpoold_queue_running",
		"Jobs of the shared queue this instance runs, or has run and "
		"not yet finished in the store.", { NULL }, 0, 0, NULL, 0 },
	[F_START] = { METRICS_GAUGE, "process_start_time_seconds",
		"Start time of the daemon since the Unix epoch in seconds.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_CPU] = { METRICS_COUNTER, "process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds.",
		{ NULL }, 0, 0, NULL, 0 },
	[F_RESIDENT] = { METRICS_GAUGE, "process_resident_memory_bytes",
		"Resident memory size in bytes.", { NULL }, 0, 0, NULL, 0 },
};

int
api_metrics_init(struct api_metrics *am, unsigned workers)
{
	struct metrics_family *f[F_COUNT];
	size_t i;

	memset(am, 0, sizeof(*am));
	am->m = metrics_new(API_METRICS_ROUTES_MAX);
	for (i = 0; i < F_COUNT && am->m != NULL; i++)
		if ((f[i] = metrics_family_new(am->m, &families[i])) == NULL)
			break;
	if (am->m == NULL || i < F_COUNT) {
		log_warn("metrics%s%s", i < F_COUNT ? ": " : "",
			 i < F_COUNT ? families[i].name : "");
		api_metrics_clear(am);
		return -1;
	}
	am->requests = f[F_REQUESTS];
	am->rejections = f[F_REJECTIONS];
	am->disconnects = f[F_DISCONNECTS];
	am->job_duration = f[F_DURATION];
	am->waiting = metrics_series(f[F_WAITING], NULL);
	am->workers = metrics_series(f[F_WORKERS], NULL);
	am->busy = metrics_series(f[F_BUSY], NULL);
	am->queued = metrics_series(f[F_QUEUED], NULL);
	am->jobs_live = metrics_series(f[F_REGISTRY],
				       (const char *[]){ "live" });
	am->jobs_finished = metrics_series(f[F_REGISTRY],
					   (const char *[]){ "finished" });
	am->store_changes = metrics_series(f[F_STORE_CHANGES], NULL);
	am->store_batches = metrics_series(f[F_STORE_BATCHES], NULL);
	am->store_lost = metrics_series(f[F_STORE_LOST], NULL);
	am->store_pending = metrics_series(f[F_STORE_PENDING], NULL);
	am->store_up = metrics_series(f[F_STORE_UP], NULL);
	am->queue_claimed = metrics_series(f[F_QUEUE_CLAIMED], NULL);
	am->queue_running = metrics_series(f[F_QUEUE_RUNNING], NULL);
	am->start_time = metrics_series(f[F_START], NULL);
	am->cpu = metrics_series(f[F_CPU], NULL);
	am->resident = metrics_series(f[F_RESIDENT], NULL);
	metrics_set(am->workers, workers);
	metrics_set(am->start_time,
		    (double)clock_now_ns(CLOCK_REALTIME) / 1e9);
	return 0;
}

/* One slot of am->hits: immutable once published. */
struct api_metrics_hit {
	const char *route, *method;
	unsigned status;
	struct metrics_series *series;
};

/* One slot of am->labels: immutable once published. */
struct api_metrics_label {
	const char *path;	/* the pointer it was interned for */
	const char *label;	/* interned: lives as long as am->m */
};

void
api_metrics_clear(struct api_metrics *am)
{
	size_t i;

	for (i = 0; i < API_METRICS_HITS; i++) {
		free(atomic_load_explicit(&am->hits[i], memory_order_relaxed));
		free(atomic_load_explicit(&am->labels[i],
					  memory_order_relaxed));
	}
	metrics_free(am->m);
	memset(am, 0, sizeof(*am));
}

const char *
api_metrics_route_label(struct api_metrics *am, const char *path)
{
	size_t i = ((uintptr_t)path >> 3) % API_METRICS_HITS;
	struct api_metrics_label *h, *mine, *none = NULL;
	const char *label;

	h = atomic_load_explicit(&am->labels[i], memory_order_acquire);
	if (h != NULL && h->path == path && !strcmp(h->label, path))
		return h->label;
	label = metrics_intern(am->m, path);
	/* Only a real copy: past the bound it is "other", for any path. */
	if (h != NULL || strcmp(label, path) != 0 ||
	    (mine = malloc(sizeof(*mine))) == NULL)
		return label;
	*mine = (struct api_metrics_label){ path, label };
	if (!atomic_compare_exchange_strong_explicit(&am->labels[i], &none,
						     mine,
						     memory_order_release,
						     memory_order_relaxed))
		free(mine);	/* another thread took the slot first */
	return label;
}

/* The usual methods as they are; any other token a client sends, other. */
static const char *
method_label(const char *method)
{
	static const char *const known[] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(method, known[i]))
			return known[i];
	return METRICS_OTHER;
}

/* A refusal's reason when the code that refused gave none, or NULL. */
static const char *
reason_of_status(unsigned status)
{
	switch (status) {
	case 400: return "bad_request";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "body_too_large";
	case 414: return "uri_too_long";
	case 415: return "unsupported_media_type";
	case 422: return "unprocessable_content";
	case 429: return "too_many_requests";
	case 431: return "headers_too_large";
	case 501: return "not_implemented";
	case 503: return "unavailable";
	case 505: return "http_version_not_supported";
	default:  return status >= 400 && status < 500 ? "client_error" : NULL;
	}
}

/*
 * The requests series of (route, method, status), code being status's
 * label: from am->hits when its slot holds this key, else looked up and
 * kept there if the slot is free.  Lock-free (metrics_series() locks
 * only to make a new series).
 */
static struct metrics_series *
requests_series(struct api_metrics *am, const char *route,
		const char *method, unsigned status, const char *code)
{
	size_t i = (((uintptr_t)route >> 3) ^ ((uintptr_t)method >> 3) ^
		    status * 31u) % API_METRICS_HITS;
	struct api_metrics_hit *h, *mine, *none = NULL;
	struct metrics_series *s;

	h = atomic_load_explicit(&am->hits[i], memory_order_acquire);
	if (h != NULL && h->route == route && h->method == method &&
	    h->status == status)
		return h->series;
	s = metrics_series(am->requests, (const char *[]){ route, method,
							   code });
	if (h != NULL || s == NULL || (mine = malloc(sizeof(*mine))) == NULL)
		return s;
	*mine = (struct api_metrics_hit){ route, method, status, s };
	if (!atomic_compare_exchange_strong_explicit(&am->hits[i], &none, mine,
						     memory_order_release,
						     memory_order_relaxed))
		free(mine);	/* another thread took the slot first */
	return s;
}

void
api_metrics_observe(void *arg, const struct server_report *r)
{
	struct api_metrics *am = arg;
	const char *route = r->label != NULL ? r->label :
			    API_METRICS_UNMATCHED;
	const char *reason = r->reason;
	/*
	 * libmicrohttpd sends only three-digit statuses; "xxx" labels one
	 * that is not, should a bug ever make one, rather than a wrong code.
	 */
	char code[4] = "xxx";

	if (r->status == 0 && reason != NULL) {	/* cut off, no request */
		metrics_add(metrics_series(am->rejections, &reason), 1);
		return;
	}
	if (r->status == 0) {
		metrics_add(metrics_series(am->disconnects, &route), 1);
		return;
	}
	/* By hand: snprintf() costs more than the rest of this function. */
	if (r->status >= 100 && r->status <= 999) {
		code[0] = (char)('0' + r->status / 100);
		code[1] = (char)('0' + r->status / 10 % 10);
		code[2] = (char)('0' + r->status % 10);
	}
	metrics_add(requests_series(am, route, method_label(r->method),
				    r->status, code), 1);
	if (r->status < 400)
		return;
	if (reason == NULL)
		reason = reason_of_status(r->status);
	if (reason != NULL)
		metrics_add(metrics_series(am->rejections, &reason), 1);
}

/* The process's CPU time and resident memory, as the scrape sees them. */
static void
read_process(struct api_metrics *am)
{
	struct rusage ru;
	unsigned long pages, resident;
	char buf[128];
	ssize_t n;
	int fd;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metrics_set(am->cpu, (double)ru.ru_utime.tv_sec +
			    (double)ru.ru_utime.tv_usec / 1e6 +
			    (double)ru.ru_stime.tv_sec +
			    (double)ru.ru_stime.tv_usec / 1e6);
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &pages, &resident) == 2)
		metrics_set(am->resident, (double)resident *
			    (double)sysconf(_SC_PAGESIZE));
}

/* The store's counts (store_stats(): no wait on its backend). */
static void
read_store(struct api_metrics *am, struct store *store)
{
	struct store_stats st = store_stats(store);

	metrics_set(am->store_changes, (double)st.committed);
	metrics_set(am->store_batches, (double)st.batches);
	metrics_set(am->store_lost, (double)st.lost);
	metrics_set(am->store_pending, (double)st.queued_now);
	metrics_set(am->store_up, st.available ? 1 : 0);
}

enum server_handled
api_metrics_get(struct daemon *d, struct server_request *req)
{
	struct api_metrics *am = &d->metrics;
	struct registry_counts n;
	size_t len;
	char *text;

	if (!api_is_read(req))
		return api_method_not_allowed(req, "GET, HEAD");
	n = registry_counts(d->registry);
	metrics_set(am->waiting,
		    (double)server_waiting(server_request_server(req)));
	metrics_set(am->busy, (double)pool_busy(d->pool));
	metrics_set(am->queued, (double)pool_queued(d->pool));
	metrics_set(am->jobs_live, (double)n.live);
	metrics_set(am->jobs_finished, (double)n.finished);
	read_store(am, d->store);
	metrics_set(am->queue_claimed, (double)work_queue_claimed(d->queue));
	metrics_set(am->queue_running, (double)work_queue_running(d->queue));
	read_process(am);
	text = metrics_render(am->m, &len);
	if (text == NULL)
		return api_respond_problem(req, 500, "out of memory");
	server_respond(req, 200, METRICS_CONTENT_TYPE, text, len);
	return SERVER_DONE;
}
