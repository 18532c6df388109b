/*
 * job_gate.c - see job_gate.h.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "job_gate.h"

enum gate_state {
	GATE_NONE,		/* not in the gate yet */
	GATE_QUEUED,		/* in the queue, future QUEUED */
	GATE_ADMITTED,		/* handed to its kind, counted in running */
	GATE_DONE,		/* completed before it reached the gate */
};

struct job_gate {
	struct job_gate *next;		/* in env->gates; never removed */
	pthread_mutex_t lock;		/* guards all below */
	unsigned max;			/* 0: no limit */
	unsigned running;		/* admitted and not complete */
	bool pumping;			/* a thread is starting queued ones */
	struct job_instance *head, *tail;	/* the queue */
	struct job_instance *twins;	/* live instances that others join */
	char name[];
};

/* The gate of the job called name, made at its first use; NULL: ENOMEM. */
static struct job_gate *
gate_of(struct job_env *env, const char *name)
{
	struct job_gate *g;
	size_t len = strlen(name);

	pthread_mutex_lock(&env->gates_lock);
	for (g = env->gates; g != NULL; g = g->next)
		if (!strcmp(g->name, name))
			break;
	if (g == NULL && (g = calloc(1, sizeof(*g) + len + 1)) != NULL) {
		pthread_mutex_init(&g->lock, NULL);
		memcpy(g->name, name, len + 1);
		g->next = env->gates;
		env->gates = g;
	}
	pthread_mutex_unlock(&env->gates_lock);
	return g;
}

static void
queue_remove(struct job_gate *g, struct job_instance *inst)
{
	if (inst->gate.prev != NULL)
		inst->gate.prev->gate.next = inst->gate.next;
	else
		g->head = inst->gate.next;
	if (inst->gate.next != NULL)
		inst->gate.next->gate.prev = inst->gate.prev;
	else
		g->tail = inst->gate.prev;
	inst->gate.prev = inst->gate.next = NULL;
}

static void
twin_remove(struct job_gate *g, struct job_instance *inst)
{
	if (inst->gate.twin_prev != NULL)
		inst->gate.twin_prev->gate.twin_next = inst->gate.twin_next;
	else
		g->twins = inst->gate.twin_next;
	if (inst->gate.twin_next != NULL)
		inst->gate.twin_next->gate.twin_prev = inst->gate.twin_prev;
	inst->gate.twin_prev = inst->gate.twin_next = NULL;
	inst->gate.twin_listed = false;
}

/*
 * Starts queued instances while the limit allows, one thread per gate at
 * a time: an instance that completes as it starts comes back through
 * on_gate_done(), which only counts it, and this loop goes on.  Each is
 * handed over with a reference of the loop's own: a kind's start may rely
 * on its caller's (kind.h), and the waiter's is no such thing, since a
 * cancel that lands once the lock is released completes the still QUEUED
 * future and its waiter drops that reference at once.
 */
static void
gate_pump(struct job_gate *g, void (*start)(struct job_instance *))
{
	struct job_instance *next;

	pthread_mutex_lock(&g->lock);
	if (g->pumping) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	g->pumping = true;
	while (g->head != NULL && (g->max == 0 || g->running < g->max)) {
		next = g->head;
		queue_remove(g, next);
		next->gate.state = GATE_ADMITTED;
		g->running++;
		job_ref(next);
		pthread_mutex_unlock(&g->lock);
		start(next);
		job_unref(next);
		pthread_mutex_lock(&g->lock);
	}
	g->pumping = false;
	pthread_mutex_unlock(&g->lock);
}

/*
 * The waiter on every instance that went through a gate: a queued one
 * leaves the queue, an admitted one frees its place for the next.  Drops
 * the reference the waiter held.
 */
static void
on_gate_done(struct future *f, void *arg)
{
	struct job_instance *inst = arg;
	struct job_gate *g = inst->gate.gate;
	bool pump = false;

	(void)f;
	pthread_mutex_lock(&g->lock);
	switch (inst->gate.state) {
	case GATE_NONE:
		inst->gate.state = GATE_DONE;
		break;
	case GATE_QUEUED:
		queue_remove(g, inst);
		inst->gate.state = GATE_DONE;
		break;
	case GATE_ADMITTED:
		g->running--;
		inst->gate.state = GATE_DONE;
		pump = g->head != NULL;
		break;
	case GATE_DONE:
		break;
	}
	if (inst->gate.twin_listed)
		twin_remove(g, inst);
	pthread_mutex_unlock(&g->lock);
	if (pump)
		gate_pump(g, inst->gate.start);
	job_unref(inst);
}

/*
 * A joiner's waiter on its twin: the twin's outcome becomes its own (a
 * copy: each future owns its result).  A joiner cancelled meanwhile has
 * completed already, and this changes nothing.  Drops the waiter's
 * reference.
 */
static void
on_twin_done(struct future *f, void *arg)
{
	struct job_instance *inst = arg;
	struct future_snapshot s = future_snapshot(f);
	char *result = s.result != NULL ? strdup(s.result) : NULL;
	char *error = s.error != NULL ? strdup(s.error) : NULL;

	if ((s.result != NULL && result == NULL) ||
	    (s.error != NULL && error == NULL)) {
		free(result);
		free(error);
		future_complete(inst->future, FUTURE_FAILED, NULL, NULL);
	} else {
		future_complete_as(inst->future, s.state, result,
				   s.result_flags, error);
	}
	job_unref(inst);
}

/*
 * inst joins twin (a reference, which inst keeps): it runs as long as the
 * twin does and ends as it ends.
 */
static void
join_twin(struct job_instance *inst, struct job_instance *twin)
{
	atomic_store_explicit(&inst->gate.joined, twin, memory_order_release);
	if (!future_start(inst->future))
		return;		/* cancelled on the way */
	job_note_started(inst);
	job_ref(inst);
	future_on_done(twin->future, &inst->gate.join_waiter, on_twin_done,
		       inst);
}

/*
 * A live twin of inst by its key, as a new reference, or NULL.  One whose
 * cancel was asked for is not joined: it is on its way out (an exec child
 * in its kill_grace, an http transfer until its thread's next turn, a
 * plugin until it polls) and will end CANCELLED, which would become the
 * outcome of a request that nobody cancelled.  A cancel that comes after
 * the join still ends the joiners with it.
 */
static struct job_instance *
find_twin(struct job_gate *g, const char *key)
{
	struct job_instance *t;

	for (t = g->twins; t != NULL; t = t->gate.twin_next)
		if (!strcmp(t->gate.key, key) && !job_cancel_requested(t))
			return job_ref(t);
	return NULL;
}

int
job_gate_run(struct job_instance *inst,
	     void (*start)(struct job_instance *inst))
{
	const struct job_def *def = inst->def;
	struct job_gate *g = gate_of(inst->env, def->name);
	struct job_instance *twin = NULL;

	if (g == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (def->coalesce &&
	    (inst->gate.key = json_dumps(inst->params, JSON_SORT_KEYS |
					 JSON_COMPACT)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	inst->gate.gate = g;
	inst->gate.start = start;
	/* Outside the gate's lock: it runs at once if inst is complete. */
	future_on_done(inst->future, &inst->gate.waiter, on_gate_done,
		       job_ref(inst));
	pthread_mutex_lock(&g->lock);
	if (inst->gate.state == GATE_DONE) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	if (inst->gate.key != NULL &&
	    (twin = find_twin(g, inst->gate.key)) == NULL) {
		inst->gate.twin_next = g->twins;
		if (g->twins != NULL)
			g->twins->gate.twin_prev = inst;
		g->twins = inst;
		inst->gate.twin_listed = true;
	}
	if (twin == NULL) {
		inst->gate.prev = g->tail;
		if (g->tail != NULL)
			g->tail->gate.next = inst;
		else
			g->head = inst;
		g->tail = inst;
		inst->gate.state = GATE_QUEUED;
		g->max = def->max_concurrent;
	}
	pthread_mutex_unlock(&g->lock);
	if (twin != NULL)
		join_twin(inst, twin);
	else
		gate_pump(g, start);
	return 0;
}

bool
job_gate_cancel_joined(struct job_instance *inst)
{
	if (atomic_load_explicit(&inst->gate.joined, memory_order_acquire) ==
	    NULL)
		return false;
	return future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
}

void
job_gates_free(struct job_env *env)
{
	struct job_gate *g, *next;

	for (g = env->gates; g != NULL; g = next) {
		next = g->next;
		pthread_mutex_destroy(&g->lock);
		free(g);
	}
	env->gates = NULL;
}
