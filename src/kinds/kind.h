/*
 * kind.h - the operations of a job kind: what the config and the job
 * modules know of every kind, and all they know.
 *
 * A kind gives a [job] section of its kind meaning (parse, check), runs
 * its instances (start, cancel, fire) and frees what it made (free).  What
 * it reads from the section it keeps in the definition's kind_data, in a
 * struct of its own that nothing outside the kind's file looks into.  The
 * table of kinds, which names each, is kinds.h.
 */
#ifndef TASKPOOLD_KIND_H
#define TASKPOOLD_KIND_H

#include <stdbool.h>
#include <stddef.h>

struct job_def;
struct job_instance;
struct job_env;
struct timer_entry;

struct job_kind {
	const char *name;

	/*
	 * Once per process, before any thread starts (libcurl's global
	 * init): 0, or -1 with the reason written to why.  May be NULL.
	 */
	int (*global_init)(char *why, size_t whylen);

	/*
	 * The daemon starts: makes what the kind keeps while it runs (its
	 * thread) in *state, which job_env.kind_state holds.  0, or -1 with
	 * errno and nothing left behind.  May be NULL.
	 */
	int (*open)(struct job_env *env, void **state);

	/*
	 * The daemon stops, after it cancelled every live job and before the
	 * pool and the timer go: ends the instances still running (their
	 * futures complete), joins the kind's threads and frees state.  May
	 * be NULL.
	 */
	void (*close)(struct job_env *env, void *state);

	/*
	 * Takes one key of a [job] section (other than kind and timeout)
	 * into def->kind_data, which the kind makes at the first key it
	 * needs it for.  Returns 0, 1 for a key the kind does not know, or
	 * -1 for a bad value with the reason written to why.
	 */
	int (*parse)(struct job_def *def, const char *key, const char *value,
		     char *why, size_t whylen);

	/*
	 * Checks the whole section once it is read, and fills in what its
	 * keys left out: def->kind_data is the kind's from here on, even for
	 * a section without keys of the kind's own.  Same returns as parse.
	 */
	int (*check)(struct job_def *def, char *why, size_t whylen);

	/*
	 * Frees a definition's kind_data (NULL is ok): the config calls it
	 * when it goes, or when a load fails after parse.
	 */
	void (*free)(void *kind_data);

	/*
	 * Starts an instance: arranges for its future to complete later (or
	 * now).  A result is text in valid UTF-8 (or JSON text, flagged so:
	 * future_complete_as()); an error is a short sentence in UTF-8.  Returns 0, or -1 with errno (EAGAIN: no room) without
	 * completing the future: job_run() completes it FAILED then.  A
	 * cancel may come at any point of it: once the future is RUNNING
	 * and whatever completes it is armed, the kind checks
	 * job_cancel_requested() and stops the job itself if it is set.
	 */
	int (*start)(struct job_instance *inst, struct job_env *env);

	/*
	 * Bytes the kind wants in each instance's own block for def, at
	 * inst->kind_room (e.g. room for a result known from the config,
	 * completed with FUTURE_RESULT_IN_ROOM: no allocation of its own).
	 * Called when the instance is made.  May be NULL: none.
	 */
	size_t (*room)(const struct job_def *def);

	/*
	 * Stops an instance that has not completed, if the kind can: returns
	 * true if it completed the future (CANCELLED).  May return false for
	 * a job not armed yet, or being completed on another thread: that
	 * thread sees job_cancel_requested() and completes it CANCELLED.
	 * May be NULL.
	 */
	bool (*cancel)(struct job_instance *inst, struct job_env *env);

	/*
	 * The callback of the instance's timer entry, set when the instance
	 * is made (before anyone else can see it), or NULL if the kind arms
	 * no timer.
	 */
	void (*fire)(struct timer_entry *e, bool fired);
};

#endif
