/*
 * kinds.h - the table of job kinds.
 *
 * A kind is a name, a parser for its own keys in a [job] section, and the
 * code that runs one instance.  Adding a kind is one file in src/kinds/
 * and one entry in job_kinds[] (job.c).
 */
#ifndef TASKPOOLD_KINDS_H
#define TASKPOOLD_KINDS_H

#include <stdbool.h>
#include <stddef.h>

struct job_def;
struct job_instance;
struct job_env;
struct timer_entry;

struct job_kind {
	const char *name;

	/*
	 * Takes one key of a [job] section (other than kind and timeout).
	 * Returns 0, 1 for a key the kind does not know, or -1 for a bad
	 * value with the reason written to why.
	 */
	int (*set)(struct job_def *def, const char *key, const char *value,
		   char *why, size_t whylen);

	/* Checks the whole section once it is read.  Same returns as set. */
	int (*check)(struct job_def *def, char *why, size_t whylen);

	/*
	 * Starts an instance: arranges for its future to complete later (or
	 * now).  Returns 0, or -1 with errno (EAGAIN: no room) without
	 * completing the future: job_run() completes it FAILED then.  A
	 * cancel may come at any point of it: once the future is RUNNING
	 * and whatever completes it is armed, the kind checks
	 * job_cancel_requested() and stops the job itself if it is set.
	 */
	int (*start)(struct job_instance *inst, struct job_env *env);

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

extern const struct job_kind job_kind_sleep;

#endif
