/*
 * daemon_store.c - the daemon's durable store (store/store.h): opened
 * from [store] at start, fed by the registry's observer and the kinds'
 * starts, closed last at stop.  See daemon.h.
 *
 * The store sits behind the registry: every change of a job instance
 * (created, started, finished) is copied onto the store's list on the
 * thread where it happens, and its writer thread commits them in
 * batches.  With the memory backend nothing is observed at all, so the
 * hot path pays one test of a NULL pointer per change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "params.h"

static const char *
backend_name(int backend)
{
	switch (backend) {
	case STORE_SQLITE:	return "sqlite";
	case STORE_POSTGRESQL:	return "postgresql";
	default:		return "memory";
	}
}

/*
 * Copies s into dst (size bytes), cut to fit: an id or a name, which fit
 * as a rule.  Not snprintf(): this runs on every change of every job, and
 * snprintf() was a tenth of the cost of recording one (bench/callgrind).
 */
static void
copy_name(char *dst, size_t size, const char *s)
{
	size_t n = strnlen(s, size - 1);

	memcpy(dst, s, n);
	dst[n] = '\0';
}

/*
 * The record of inst as it is now, into rec: its strings borrowed from
 * inst (held by the caller).  Returns what the caller frees once the
 * store copied it: params' text (NULL when there is none to free; out of
 * memory leaves the record without params).
 */
static char *
record_of(struct job_instance *inst, struct store_job *rec)
{
	struct future_snapshot s = future_snapshot(inst->future);
	const struct job_instance *twin = job_joined(inst);
	json_t *params;

	memset(rec, 0, sizeof(*rec));
	copy_name(rec->id, sizeof(rec->id), inst->id);
	copy_name(rec->job, sizeof(rec->job), inst->def->name);
	rec->state = (enum store_state)s.state;
	rec->result = (char *)s.result;
	rec->result_json = (s.result_flags & FUTURE_RESULT_JSON) != 0;
	rec->truncated = (s.result_flags & FUTURE_RESULT_TRUNCATED) != 0;
	rec->error = (char *)s.error;
	rec->joined = twin != NULL ? (char *)twin->id : NULL;
	rec->created = s.times.created;
	rec->started = s.times.started;
	rec->finished = s.times.finished;
	/*
	 * Secrets are "***" on disk too.  A job without parameters, the
	 * common case, skips the copy and the dump.
	 */
	if (json_object_size(inst->params) == 0) {
		rec->params = (char *)"{}";
		return NULL;
	}
	params = params_redacted(inst->def, inst->params);
	rec->params = params != NULL ? json_dumps(params, JSON_COMPACT) : NULL;
	json_decref(params);
	return rec->params;
}

/* Queues inst's record: the store copies it. */
static void
job_changed(struct daemon *d, struct job_instance *inst)
{
	struct store_job rec;
	char *owned;

	/* One from the shared queue: work_queue.c writes its outcome. */
	if (inst->attempt > 0)
		return;
	owned = record_of(inst, &rec);
	store_job_changed(d->store, &rec);	/* a loss is counted there */
	free(owned);
}

/* The registry's observer: created and finished. */
static void
on_registry(enum registry_event ev, struct job_instance *inst, void *arg)
{
	(void)ev;
	job_changed(arg, inst);
}

/* job_env's on_started: running. */
static void
on_started(struct job_instance *inst, void *arg)
{
	job_changed(arg, inst);
}

int
daemon_store_open(struct daemon *d, const struct config *cfg)
{
	struct store_options o;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.backend = (enum store_backend)cfg->store.backend;
	o.path = cfg->store.path;
	o.url = cfg->store.url;
	o.instance = cfg->server.instance;
	o.lease_ns = cfg->store.lease_ns;
	o.max_attempts = cfg->store.max_attempts;
	o.retain_ns = cfg->registry.retain_ns;
	err[0] = '\0';
	d->store = store_open(&o, err, sizeof(err));
	if (d->store == NULL) {
		/* The backend's reason never quotes the url. */
		log_warnx("store: %s", err[0] != '\0' ? err :
			  "cannot open");
		return -1;
	}
	d->store_durable = o.backend != STORE_MEMORY;
	if (!d->store_durable)
		return 0;
	registry_set_observer(d->registry, on_registry, d);
	d->env.on_started_arg = d;
	d->env.on_started = on_started;
	if (o.backend == STORE_SQLITE)
		log_info("store: sqlite %s", o.path);
	else
		log_info("store: postgresql (instance %s)", o.instance);
	return 0;
}

void
daemon_store_reload(const struct config *old, const struct config *new)
{
	const char *u1 = old->store.url ? old->store.url : "";
	const char *u2 = new->store.url ? new->store.url : "";

	if (old->store.backend != new->store.backend ||
	    strcmp(old->store.path, new->store.path) != 0 ||
	    strcmp(u1, u2) != 0 ||
	    old->store.lease_ns != new->store.lease_ns ||
	    old->store.max_attempts != new->store.max_attempts)
		log_warnx("reload: [store] changes only on restart: the "
			  "running store (%s) is kept",
			  backend_name(old->store.backend));
}

void
daemon_store_close(struct daemon *d)
{
	struct store_stats st;

	if (d->store == NULL)
		return;
	if (d->store_durable) {
		st = store_stats(d->store);
		if (st.lost > 0)
			log_warnx("store: %llu changes were lost",
				  (unsigned long long)st.lost);
	}
	store_close(d->store);	/* commits what is queued */
	d->store = NULL;
}
