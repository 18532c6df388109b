/*
 * job_gate.h - what a job's instances share across requests: the limit
 * on how many run at once (`max_concurrent`) and the running instances
 * that a new one with the same parameters joins (`coalesce`).
 *
 * One gate per job name, for the daemon's life, so that a reload keeps
 * the count of what runs (a reloaded limit applies from the next
 * arrival).  Instances of a job with neither setting never touch a gate:
 * the hot path stays as it was.
 *
 * An instance that passes the gate is queued there in arrival order; the
 * gate starts queued instances while fewer than the limit run, and each
 * completion (a waiter on the instance's future) lets the next one in.
 * A queued instance's future stays QUEUED: a cancel completes it at once,
 * and its waiter takes it out of the queue.
 *
 * Locking: one mutex per gate, a leaf (no other lock is taken under it;
 * kinds are started and futures registered outside it), and one for the
 * table of gates, also a leaf.  Starting queued instances runs in a loop
 * on one thread at a time per gate (`pumping`), so that instances that
 * complete as they start (a zero-length sleep, a spawn that fails) do not
 * recurse once per queued instance.
 */
#ifndef TASKPOOLD_JOB_GATE_H
#define TASKPOOLD_JOB_GATE_H

#include <stdbool.h>

struct job_env;
struct job_instance;

/*
 * Runs inst through its job's gate: joins a live twin (coalesce) or
 * queues it and starts what the limit lets start.  A twin whose cancel
 * was asked for is not joined; one cancelled after the join ends its
 * joiners CANCELLED too.  `start` is how an admitted instance is handed
 * to its kind.  Returns 0, or -1 with errno
 * (ENOMEM: no gate, the caller fails the job).
 */
int job_gate_run(struct job_instance *inst,
		 void (*start)(struct job_instance *inst));

/*
 * Cancels inst if it joined a twin: completes its own future CANCELLED
 * (the twin goes on for the others).  Returns true if it did.
 */
bool job_gate_cancel_joined(struct job_instance *inst);

/* Frees every gate of env; none may hold an instance.  Can't fail. */
void job_gates_free(struct job_env *env);

#endif
