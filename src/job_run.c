/*
 * job_run.c - running and stopping job instances: the part of job.h that
 * hands an instance to its kind, through its job's gate when it has one
 * (job_gate.h), and takes it back on a cancel.  job.c below it makes,
 * names and frees instances; the gate sits between the two, using job.c's
 * references and called from here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "job_gate.h"
#include "kinds/kind.h"

void
job_env_clear(struct job_env *env)
{
	size_t i;

	for (i = 0; i < JOB_DURATION_HITS; i++)
		free(atomic_exchange_explicit(&env->duration_hits[i], NULL,
					      memory_order_relaxed));
	job_gates_free(env);
	pthread_mutex_destroy(&env->gates_lock);
}

/* Hands inst to its kind; a kind that cannot start it fails it. */
static int
start_kind(struct job_instance *inst)
{
	int err;

	if (inst->def->kind->start(inst, inst->env) == 0)
		return 0;
	/* A cancel that came while the kind failed to start it still wins. */
	err = errno;
	future_complete(inst->future, job_cancel_requested(inst) ?
			FUTURE_CANCELLED : FUTURE_FAILED, NULL,
			strdup(strerror(err)));
	errno = err;
	return -1;
}

/* start_kind() for the gate, which has no one to tell of a failure. */
static void
start_admitted(struct job_instance *inst)
{
	(void)start_kind(inst);
}

int
job_run(struct job_instance *inst)
{
	int err;

	if (inst->def->max_concurrent == 0 && !inst->def->coalesce)
		return start_kind(inst);
	if (job_gate_run(inst, start_admitted) == 0)
		return 0;
	err = errno;
	future_complete(inst->future, FUTURE_FAILED, NULL,
			strdup(strerror(err)));
	errno = err;
	return -1;
}

/*
 * The mark comes first: a kind that has started the future but not yet
 * armed its timer would make both calls below find nothing to do.  It
 * reads the mark after arming, under the timer's lock, so either the
 * kind's cancel here finds the entry armed, or the kind sees the mark.
 */
bool
job_cancel(struct job_instance *inst)
{
	atomic_store(&inst->cancel_requested, true);
	if (future_cancel(inst->future))
		return true;
	if (job_gate_cancel_joined(inst))
		return true;
	if (inst->def->kind->cancel != NULL)
		return inst->def->kind->cancel(inst, inst->env);
	return false;
}
