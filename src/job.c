/*
 * job.c - see job.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "job.h"
#include "kinds/kind.h"
#include "log.h"
#include "metrics.h"

void
job_env_init(struct job_env *env, const char *instance, struct timer *timer,
	     struct pool *pool)
{
	uint32_t boot;
	int n;

	memset(env, 0, sizeof(*env));
	env->timer = timer;
	env->pool = pool;
	/* Randomness only keeps ids unique across restarts; not a secret. */
	if (getrandom(&boot, sizeof(boot), GRND_NONBLOCK) != sizeof(boot))
		boot = (uint32_t)time(NULL) ^ (uint32_t)clock();
	n = snprintf(env->id_prefix, sizeof(env->id_prefix), "%.*s-%08x-",
		     CONFIG_NAME_MAX, instance, boot);
	env->id_prefix_len = (size_t)n < sizeof(env->id_prefix) ?
			     (size_t)n : sizeof(env->id_prefix) - 1;
	atomic_init(&env->next_seq, 1);
	atomic_init(&env->log_jobs, true);
	pthread_mutex_init(&env->gates_lock, NULL);
}

/* One slot of env->duration_hits: immutable once published. */
struct job_duration_hit {
	const char *name;	/* the pointer it was found for */
	enum future_state state;
	struct metrics_series *series;
	char copy[];		/* of the name, to check a hit by */
};

/*
 * The job_durations series of (name, state): from env->duration_hits when
 * its slot holds them, else looked up by value and kept there if the slot
 * is free.  Lock-free but for a new series (metrics.h).
 */
static struct metrics_series *
duration_series(struct job_env *env, const char *name,
		enum future_state state)
{
	size_t i = (((uintptr_t)name >> 3) ^ (unsigned)state * 7u) %
		   JOB_DURATION_HITS;
	struct job_duration_hit *h, *mine, *none = NULL;
	struct metrics_series *s;
	size_t n;

	h = atomic_load_explicit(&env->duration_hits[i],
				 memory_order_acquire);
	if (h != NULL && h->name == name && h->state == state &&
	    !strcmp(h->copy, name))
		return h->series;
	s = metrics_series(env->job_durations, (const char *[]){
				   name, future_state_name(state) });
	n = strlen(name) + 1;
	if (h != NULL || s == NULL ||
	    (mine = malloc(sizeof(*mine) + n)) == NULL)
		return s;
	mine->name = name;
	mine->state = state;
	mine->series = s;
	memcpy(mine->copy, name, n);
	if (!atomic_compare_exchange_strong_explicit(&env->duration_hits[i],
						     &none, mine,
						     memory_order_release,
						     memory_order_relaxed))
		free(mine);	/* another thread took the slot first */
	return s;
}

/*
 * First waiter of every instance: its duration into the metrics (from its
 * start, or its creation if it never started, to its end), and the one log
 * line per finished job.  First, so that both are done before any run
 * over the job answers its client.
 */
static void
on_job_done(struct future *f, void *arg)
{
	struct job_instance *inst = arg;
	struct future_final done = future_final(f);	/* a waiter's */
	enum future_state state = done.state;
	double secs = (double)done.runtime_ns / 1e9;

	if (inst->env->job_durations != NULL)
		metrics_observe(duration_series(inst->env, inst->def->name,
						state), secs);
	if (!atomic_load_explicit(&inst->env->log_jobs, memory_order_relaxed))
		return;
	if (state == FUTURE_SUCCEEDED)
		log_info("job %s done in %.2f s (id %s)", inst->def->name,
			 secs, inst->id);
	else if (future_error(f) != NULL)
		log_info("job %s %s after %.2f s (id %s): %s",
			 inst->def->name, future_state_name(state), secs,
			 inst->id, future_error(f));
	else
		log_info("job %s %s after %.2f s (id %s)", inst->def->name,
			 future_state_name(state), secs, inst->id);
}

/*
 * Done by hand: snprintf() was a tenth of the instructions of a
 * zero-length request (bench/callgrind).
 */
void
job_format_id(char *id, const char *prefix, size_t prefix_len, uint64_t seq)
{
	char digits[20];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq != 0);
	memcpy(id, prefix, prefix_len);
	id += prefix_len;
	while (n > 0)
		*id++ = digits[--n];
	*id = '\0';
}

/*
 * job_new() and job_new_claimed(): with id NULL, the id is this daemon's
 * prefix and the seq.
 */
static struct job_instance *
instance_new(struct job_env *env, struct config *cfg,
	     const struct job_def *def, json_t *params, const char *id,
	     unsigned attempt)
{
	struct job_instance *inst = NULL;
	size_t room = def->kind->room != NULL ? def->kind->room(def) : 0;
	struct future *f;
	uint64_t seq;

	/*
	 * An object of its own, even empty: not one shared by all such
	 * instances, since jansson's json_incref() reads the count without
	 * an atomic load before its atomic increment (ThreadSanitizer sees
	 * a race when two HTTP threads start jobs at once).
	 */
	if (params == NULL)
		params = json_object();
	/* One block: the instance lives in its future's room (job.h). */
	if (params == NULL ||
	    (f = future_new_with(sizeof(*inst) + room,
				 (void **)&inst)) == NULL) {
		json_decref(params);
		errno = ENOMEM;
		return NULL;
	}
	inst->future = f;
	inst->kind_room = room > 0 ? (char *)(inst + 1) : NULL;
	inst->params = params;
	atomic_init(&inst->refs, 1);
	atomic_init(&inst->cancel_requested, false);
	atomic_init(&inst->gate.joined, NULL);
	inst->def = def;
	inst->cfg = config_ref(cfg);
	inst->env = env;
	/*
	 * Here, not when the job starts: the registry shows the instance
	 * (and a stop may cancel it) before it starts, and cancelling an
	 * unarmed entry is safe.
	 */
	timer_entry_init(&inst->timer, def->kind->fire);
	seq = atomic_fetch_add_explicit(&env->next_seq, 1,
					memory_order_relaxed);
	inst->seq = seq;
	inst->attempt = attempt;
	if (id != NULL)
		memcpy(inst->id, id, strlen(id) + 1);	/* checked */
	else
		job_format_id(inst->id, env->id_prefix, env->id_prefix_len,
			      seq);
	future_on_done(inst->future, &inst->log_waiter, on_job_done, inst);
	return inst;
}

struct job_instance *
job_new(struct job_env *env, struct config *cfg, const struct job_def *def,
	json_t *params)
{
	return instance_new(env, cfg, def, params, NULL, 0);
}

bool
job_id_valid(const char *id)
{
	size_t n;

	for (n = 0; id[n] != '\0'; n++)
		if (n == JOB_ID_MAX - 1 ||
		    !(id[n] == '-' || id[n] == '_' || id[n] == '.' ||
		      (id[n] >= '0' && id[n] <= '9') ||
		      (id[n] >= 'a' && id[n] <= 'z') ||
		      (id[n] >= 'A' && id[n] <= 'Z')))
			return false;
	return n > 0;
}

struct job_instance *
job_new_claimed(struct job_env *env, struct config *cfg,
		const struct job_def *def, json_t *params, const char *id,
		unsigned attempt)
{
	if (!job_id_valid(id)) {
		json_decref(params);
		errno = EINVAL;
		return NULL;
	}
	return instance_new(env, cfg, def, params, id, attempt);
}

const struct job_instance *
job_joined(const struct job_instance *inst)
{
	return atomic_load_explicit(&inst->gate.joined, memory_order_acquire);
}

struct job_instance *
job_ref(struct job_instance *inst)
{
	atomic_fetch_add_explicit(&inst->refs, 1, memory_order_relaxed);
	return inst;
}

void
job_unref(struct job_instance *inst)
{
	if (inst == NULL)
		return;
	if (atomic_fetch_sub_explicit(&inst->refs, 1, memory_order_acq_rel) != 1)
		return;
	job_unref(atomic_load_explicit(&inst->gate.joined,
				       memory_order_relaxed));
	free(inst->gate.key);
	json_decref(inst->params);
	config_unref(inst->cfg);
	/* Last: the instance lies in its future's block (instance_new()). */
	future_unref(inst->future);
}

bool
job_cancel_requested(struct job_instance *inst)
{
	return atomic_load(&inst->cancel_requested);
}
