/*
 * taskpoold/job.h - the interface between taskpoold(8) and a plugin.
 *
 * A plugin is a shared object holding C functions that jobs of kind
 * `plugin` run (taskpoold.conf(5), taskpoold-plugin(7)).  The daemon opens
 * it with dlopen() when it loads its config, checks that it was built for
 * this interface, and then calls one function per job instance, on one of
 * its worker threads:
 *
 *	#include <taskpoold/job.h>
 *
 *	TASKPOOLD_PLUGIN;
 *
 *	json_t *
 *	hello(const struct taskpoold_call *call, char *error, size_t errlen)
 *	{
 *		const char *name = json_string_value(
 *			json_object_get(call->params, "name"));
 *
 *		if (name == NULL) {
 *			snprintf(error, errlen, "no name");
 *			return NULL;
 *		}
 *		return json_pack("{s:s+}", "greeting", "Hello, ", name);
 *	}
 *
 * Build it with
 *	cc -shared -fPIC $(pkg-config --cflags taskpoold) -o hello.so \
 *	    hello.c $(pkg-config --libs taskpoold)
 * (which links jansson, the same library the daemon uses).
 *
 * Stability: TASKPOOLD_ABI_VERSION changes only when a plugin built
 * against an older header would misbehave; the daemon refuses, at load,
 * a plugin built for another version.  What is added compatibly goes at
 * the end of struct taskpoold_call, and call->size says which fields the
 * running daemon filled in: test it (TASKPOOLD_CALL_HAS()) before reading
 * a field that is newer than version 1.
 *
 * Plain C11, no other header of taskpoold's; jansson is the only
 * dependency (taskpoold.pc says so).
 */
#ifndef TASKPOOLD_PUBLIC_JOB_H
#define TASKPOOLD_PUBLIC_JOB_H

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The interface this header describes. */
#define TASKPOOLD_ABI_VERSION 1

/*
 * The symbol every plugin exports, once, to say which interface it was
 * built for: write `TASKPOOLD_PLUGIN;` at file scope in one of its
 * sources.  A library without it, or with another version, is refused
 * when the config is loaded (`taskpoold -t` says so, with file and line).
 */
#define TASKPOOLD_ABI_SYMBOL "taskpoold_abi_version"
#if defined(__GNUC__)
#define TASKPOOLD_EXPORT __attribute__((visibility("default")))
#else
#define TASKPOOLD_EXPORT
#endif
#define TASKPOOLD_PLUGIN \
	TASKPOOLD_EXPORT extern const unsigned int taskpoold_abi_version; \
	TASKPOOLD_EXPORT const unsigned int taskpoold_abi_version = \
		TASKPOOLD_ABI_VERSION

/*
 * What a job function gets: one per call, made by the daemon, valid for
 * the call only.  Read it; never write it, never keep a pointer into it
 * past the return.
 */
struct taskpoold_call {
	/* sizeof(struct taskpoold_call) as the daemon knows it. */
	size_t size;
	/* The job's name (its [job NAME] section) and this instance's id. */
	const char *job;
	const char *id;
	/*
	 * The parameter values of this instance, an object: every parameter
	 * the job declares (`param.NAME` keys), already validated, with its
	 * default filled in; strings as JSON strings, int as integers, enum
	 * as strings, bool as booleans.  Borrowed: a copy of the instance's
	 * own, valid until the function returns; do not json_decref() it.
	 */
	json_t *params;
	/*
	 * Nonzero once the job should stop: it was cancelled, it ran past
	 * its timeout, or the daemon is stopping.  Call it through
	 * taskpoold_cancelled().  Cheap (one atomic load) and callable from
	 * any thread while the function runs.
	 */
	int (*cancelled)(const struct taskpoold_call *call);
};

/* True when the daemon filled in `field` (a field newer than version 1). */
#define TASKPOOLD_CALL_HAS(call, field) \
	((call)->size >= offsetof(struct taskpoold_call, field) + \
			 sizeof((call)->field))

/*
 * Nonzero once the job should stop.  A long job polls it, every few
 * milliseconds of work, and returns soon after it turns nonzero (with
 * anything: its result is discarded).  A function that never polls keeps
 * its worker thread until it returns, whatever happens to its job.
 */
static inline int
taskpoold_cancelled(const struct taskpoold_call *call)
{
	return call->cancelled(call);
}

/*
 * A job function, found by its name (the job's `function` key).
 * Returns the result, a new reference to any JSON value, which the
 * daemon takes (the job succeeds with it); or NULL with a short sentence
 * in UTF-8 written to error (errlen bytes, TASKPOOLD_ERROR_MAX, including
 * the terminating NUL), and the job fails with it.  Runs on a worker
 * thread, several at once if jobs overlap: keep no unguarded state.
 */
#define TASKPOOLD_ERROR_MAX 512
typedef json_t *taskpoold_job_fn(const struct taskpoold_call *call,
				 char *error, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
