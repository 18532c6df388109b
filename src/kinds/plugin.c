/*
 * plugin.c - kind `plugin`: runs a C function of a shared object, on a
 * worker of the pool.
 *
 * The library is opened when the config is loaded (check), so that a bad
 * path, a missing symbol or a plugin built for another interface
 * (include/taskpoold/job.h) is refused with the file and line of its job,
 * by `taskpoold -t` too.  It is closed when the config is freed, which is
 * when no request and no instance holds it any more: an instance holds its
 * config, and a submission to the pool holds its instance until its
 * release function ran, so no job of it runs then.  dlopen() of a path
 * already open returns the object already loaded, and a reload's new
 * config opens its libraries while the old one still holds them: a
 * library replaced at the same path is not read again by a reload, only
 * by a restart (or under a new path); the man pages say so.
 *
 * One instance is one struct plugin_run, which the pool's submission
 * carries.  Three threads may end an instance, and the first completion
 * of its future wins (future.h):
 *   - the worker, when the function returns: SUCCEEDED with its value,
 *     FAILED with its error, or CANCELLED if a cancel came meanwhile;
 *   - the timer thread, at the job's timeout (inst->timer): TIMED_OUT at
 *     once, and the function is asked to stop; its later return is
 *     ignored;
 *   - whoever drops a submission still queued (a cancel, the pool
 *     stopping): the release function ends the instance CANCELLED.
 * A cancel of a running instance only raises the flag the function polls
 * (taskpoold_cancelled()); the worker ends it CANCELLED when the function
 * returns.  A function that never polls keeps its worker until it
 * returns: a worker is never abandoned, since a thread cannot be stopped
 * safely in the middle of someone else's code.
 *
 * The flag is the instance's cancel mark (job_cancel_requested()), which
 * the timeout raises too, once the instance is TIMED_OUT.  A submission
 * still queued at its timeout keeps its queue slot until a worker takes
 * it and drops it without calling the function.
 *
 * The kind's state (env->kind_state) lists the runs, so that a cancel,
 * which gets only the instance, finds its submission, and so that close
 * can wait for the last one.  plugin_state.lock is a leaf: the pool is
 * called without it, and the timer thread never takes it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskpoold/job.h>

#include "job.h"
#include "kinds/kind.h"
#include "kinds/kinds.h"

/* The settings of one [job] of kind plugin (def->kind_data). */
struct plugin_def {
	char *library;			/* absolute path */
	char *function;
	void *handle;			/* dlopen()'s, closed by free */
	taskpoold_job_fn *fn;
};

struct plugin_state {
	pthread_mutex_t lock;	/* guards runs, nruns, and each run's
				 * prev, next, queued and closing */
	pthread_cond_t idle;	/* nruns reached 0 */
	struct plugin_run *runs;
	size_t nruns;
};

struct plugin_run {
	struct taskpoold_call call;	/* what the function sees */
	atomic_uint refs;		/* the pool item's, and start's */
	bool ran;			/* the worker called the function */
	struct job_instance *inst;	/* a reference */
	struct plugin_state *state;
	struct future *queued;		/* the pool's future, a reference */
	bool closing;			/* close has cancelled it */
	struct plugin_run *prev, *next;
};

/* ---- the config: library and function ---------------------------------- */

static struct plugin_def *
plugin_def_of(struct job_def *def, char *why, size_t whylen)
{
	if (def->kind_data == NULL &&
	    (def->kind_data = calloc(1, sizeof(struct plugin_def))) == NULL)
		snprintf(why, whylen, "out of memory");
	return def->kind_data;
}

static int
plugin_parse(struct job_def *def, const char *key, const char *value,
	     char *why, size_t whylen)
{
	struct plugin_def *pd;
	char **slot, *copy;

	if (strcmp(key, "library") && strcmp(key, "function"))
		return 1;
	if ((pd = plugin_def_of(def, why, whylen)) == NULL)
		return -1;
	if (!strcmp(key, "library") && value[0] != '/') {
		snprintf(why, whylen, "bad value '%s' for library (expected "
			 "an absolute path)", value);
		return -1;
	}
	if (!strcmp(key, "function") && value[0] == '\0') {
		snprintf(why, whylen, "empty function name");
		return -1;
	}
	if ((copy = strdup(value)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	slot = !strcmp(key, "library") ? &pd->library : &pd->function;
	free(*slot);
	*slot = copy;
	return 0;
}

/*
 * Checks the symbol that says which interface the library was built for.
 * Returns 0, or -1 with the reason written to why.
 */
static int
plugin_check_abi(const struct plugin_def *pd, char *why, size_t whylen)
{
	const unsigned int *abi;

	dlerror();
	abi = dlsym(pd->handle, TASKPOOLD_ABI_SYMBOL);
	if (abi == NULL) {
		snprintf(why, whylen, "%s does not export %s: not a "
			 "taskpoold plugin (see taskpoold-plugin(7))",
			 pd->library, TASKPOOLD_ABI_SYMBOL);
		return -1;
	}
	if (*abi != TASKPOOLD_ABI_VERSION) {
		snprintf(why, whylen, "%s was built for plugin ABI %u, this "
			 "taskpoold has ABI %u (rebuild it against its "
			 "taskpoold/job.h)", pd->library, *abi,
			 (unsigned)TASKPOOLD_ABI_VERSION);
		return -1;
	}
	return 0;
}

/* Opens the library and finds the function; 0, or -1 with why. */
static int
plugin_open_library(struct plugin_def *pd, char *why, size_t whylen)
{
	const char *err;
	void *sym;

	pd->handle = dlopen(pd->library, RTLD_NOW | RTLD_LOCAL);
	if (pd->handle == NULL) {
		err = dlerror();
		snprintf(why, whylen, "cannot load library: %s",
			 err != NULL ? err : pd->library);
		return -1;
	}
	if (plugin_check_abi(pd, why, whylen))
		return -1;
	dlerror();
	sym = dlsym(pd->handle, pd->function);
	if (sym == NULL) {
		snprintf(why, whylen, "%s has no function '%s'", pd->library,
			 pd->function);
		return -1;
	}
	/* POSIX: a data pointer from dlsym() may hold a function's address. */
	pd->fn = (taskpoold_job_fn *)sym;
	return 0;
}

static int
plugin_check(struct job_def *def, char *why, size_t whylen)
{
	struct plugin_def *pd = plugin_def_of(def, why, whylen);

	if (pd == NULL)
		return -1;
	if (pd->library == NULL || pd->function == NULL) {
		snprintf(why, whylen, "a plugin job needs library and "
			 "function");
		return -1;
	}
	return plugin_open_library(pd, why, whylen);
}

/*
 * The config goes, so no instance of the job exists any more (each holds
 * the config until its submission's release ran): nothing of the library
 * is running, and it can be closed.
 */
static void
plugin_free(void *kind_data)
{
	struct plugin_def *pd = kind_data;

	if (pd == NULL)
		return;
	if (pd->handle != NULL)
		dlclose(pd->handle);
	free(pd->library);
	free(pd->function);
	free(pd);
}

/* ---- the kind's state: the list of runs -------------------------------- */

static int
plugin_open(struct job_env *env, void **state)
{
	struct plugin_state *st = calloc(1, sizeof(*st));

	(void)env;
	if (st == NULL)
		return -1;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->idle, NULL);
	*state = st;
	return 0;
}

/* The run of inst, with st->lock held; NULL if it has none listed. */
static struct plugin_run *
plugin_run_find(struct plugin_state *st, const struct job_instance *inst)
{
	struct plugin_run *run;

	for (run = st->runs; run != NULL; run = run->next)
		if (run->inst == inst)
			return run;
	return NULL;
}

static void
plugin_run_unlist(struct plugin_run *run)
{
	struct plugin_state *st = run->state;

	pthread_mutex_lock(&st->lock);
	if (run->prev != NULL)
		run->prev->next = run->next;
	else
		st->runs = run->next;
	if (run->next != NULL)
		run->next->prev = run->prev;
	if (--st->nruns == 0)
		pthread_cond_broadcast(&st->idle);
	pthread_mutex_unlock(&st->lock);
}

/* Drops n references to run; the last one frees it. */
static void
plugin_run_drop(struct plugin_run *run, unsigned n)
{
	if (atomic_fetch_sub(&run->refs, n) != n)
		return;
	future_unref(run->queued);
	job_unref(run->inst);
	free(run);
}

static void
plugin_run_unref(struct plugin_run *run)
{
	plugin_run_drop(run, 1);
}

/*
 * The daemon stops, and every job was cancelled: drop the submissions
 * still queued (their release ends them), raise the flag of the running
 * ones, and wait until the last function returned, since the release
 * functions that the pool calls then use this state.
 */
static void
plugin_close(struct job_env *env, void *state)
{
	struct plugin_state *st = state;
	struct plugin_run *run;
	struct future *f;

	(void)env;
	if (st == NULL)
		return;
	for (;;) {
		pthread_mutex_lock(&st->lock);
		for (run = st->runs; run != NULL && run->closing;
		     run = run->next)
			;
		f = run != NULL && run->queued != NULL ?
		    future_ref(run->queued) : NULL;
		if (run != NULL) {
			/* As job_cancel() would: the daemon stops. */
			run->closing = true;
			atomic_store(&run->inst->cancel_requested, true);
		}
		pthread_mutex_unlock(&st->lock);
		if (run == NULL)
			break;
		if (f != NULL)
			future_cancel(f);	/* may free run: not read after */
		future_unref(f);
	}
	pthread_mutex_lock(&st->lock);
	while (st->nruns > 0)
		pthread_cond_wait(&st->idle, &st->lock);
	pthread_mutex_unlock(&st->lock);
	pthread_cond_destroy(&st->idle);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* ---- one instance ------------------------------------------------------ */

static int
plugin_call_cancelled(const struct taskpoold_call *call)
{
	const struct plugin_run *run = (const struct plugin_run *)
		((const char *)call - offsetof(struct plugin_run, call));

	return job_cancel_requested(run->inst) ? 1 : 0;
}

/*
 * Disarms the instance's timeout, and drops the reference of its entry if
 * this did it (otherwise the timer thread fired it and drops its own).
 */
static void
plugin_disarm(struct job_instance *inst)
{
	if (timer_cancel(inst->env->timer, &inst->timer))
		job_unref(inst);
}

/*
 * Ends inst as the function's return says, unless it ended already (a
 * timeout) or a cancel came.  result is stolen; error is the function's
 * buffer.
 */
static void
plugin_end(struct job_instance *inst, json_t *result, char *error)
{
	char *text = NULL;
	json_t *checked;

	if (job_cancel_requested(inst)) {
		json_decref(result);
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
		return;
	}
	if (result != NULL) {
		text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(result);
		if (text != NULL)
			future_complete_as(inst->future, FUTURE_SUCCEEDED,
					   text, FUTURE_RESULT_JSON, NULL);
		else
			future_complete(inst->future, FUTURE_FAILED, NULL,
					strdup("the plugin's result cannot be "
					       "written as JSON"));
		return;
	}
	/* json_string() refuses what is not UTF-8: errors must be. */
	checked = error[0] != '\0' ? json_string(error) : NULL;
	future_complete(inst->future, FUTURE_FAILED, NULL,
			strdup(checked != NULL ? error : error[0] == '\0' ?
			       "the plugin returned no result and no error" :
			       "the plugin's error is not valid UTF-8"));
	json_decref(checked);
}

/* Pool work: calls the function, on a worker. */
static enum future_state
plugin_work(void *arg, char **result, char **error)
{
	struct plugin_run *run = arg;
	struct job_instance *inst = run->inst;
	const struct plugin_def *pd = inst->def->kind_data;
	char text[TASKPOOLD_ERROR_MAX];
	json_t *value;

	(void)result;
	(void)error;
	run->ran = true;
	/* Cancelled or timed out while it waited: the function never runs. */
	if (job_cancel_requested(inst)) {
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
		plugin_disarm(inst);
		return FUTURE_CANCELLED;
	}
	run->call.params = json_deep_copy(inst->params);
	if (run->call.params == NULL) {
		future_complete(inst->future, FUTURE_FAILED, NULL,
				strdup("out of memory"));
		plugin_disarm(inst);
		return FUTURE_FAILED;
	}
	text[0] = '\0';
	value = pd->fn(&run->call, text, sizeof(text));
	text[sizeof(text) - 1] = '\0';
	json_decref(run->call.params);
	run->call.params = NULL;
	plugin_end(inst, value, text);
	plugin_disarm(inst);
	return FUTURE_SUCCEEDED;	/* the pool's future: nobody reads it */
}

/*
 * Pool release: after plugin_work(), or instead of it when the submission
 * was dropped while queued (a cancel, the pool stopping), which ends the
 * instance CANCELLED here.
 */
static void
plugin_release(void *arg)
{
	struct plugin_run *run = arg;

	if (!run->ran) {
		future_complete(run->inst->future, FUTURE_CANCELLED, NULL,
				job_cancel_requested(run->inst) ? NULL :
				strdup("the worker pool stopped"));
		plugin_disarm(run->inst);
	}
	plugin_run_unlist(run);
	plugin_run_unref(run);
}

static bool
plugin_cancel(struct job_instance *inst, struct job_env *env)
{
	struct plugin_state *st = kinds_state(env, &job_kind_plugin);
	struct plugin_run *run;
	struct future *f = NULL;
	bool dropped;

	if (st == NULL)
		return false;	/* never opened: nothing was started */
	pthread_mutex_lock(&st->lock);
	if ((run = plugin_run_find(st, inst)) != NULL && run->queued != NULL)
		f = future_ref(run->queued);
	pthread_mutex_unlock(&st->lock);
	if (f == NULL)
		return false;	/* not submitted yet: start sees the mark */
	/*
	 * Still queued: the release function ends the instance, on this
	 * thread unless a worker had just taken it.  Running: the worker
	 * ends it when the function returns.
	 */
	dropped = future_cancel(f);
	future_unref(f);
	return dropped && future_state(inst->future) == FUTURE_CANCELLED;
}

/* The job's timeout passed, or the timer stopped with the entry armed. */
static void
plugin_fire(struct timer_entry *e, bool fired)
{
	struct job_instance *inst = (struct job_instance *)
		((char *)e - offsetof(struct job_instance, timer));

	if (fired)
		future_complete(inst->future, FUTURE_TIMED_OUT, NULL,
				strdup("timed out"));
	else
		future_complete(inst->future, FUTURE_CANCELLED, NULL,
				strdup("daemon stopped"));
	/*
	 * The function may still run: raise the flag it polls, after the
	 * completion so that the worker cannot make it CANCELLED first.  It
	 * also keeps a submission still queued from calling it.  Not
	 * through the kind's state, which close may free as soon as the
	 * worker is done: the instance is ours until the unref below.
	 */
	atomic_store(&inst->cancel_requested, true);
	job_unref(inst);	/* the timer entry's reference */
}

static struct plugin_run *
plugin_run_new(struct job_instance *inst, struct plugin_state *st)
{
	struct plugin_run *run = calloc(1, sizeof(*run));

	if (run == NULL)
		return NULL;
	run->call.size = sizeof(run->call);
	run->call.job = inst->def->name;
	run->call.id = inst->id;
	run->call.cancelled = plugin_call_cancelled;
	atomic_init(&run->refs, 2);	/* the pool item's, and start's */
	run->inst = job_ref(inst);
	run->state = st;
	pthread_mutex_lock(&st->lock);
	run->next = st->runs;
	if (st->runs != NULL)
		st->runs->prev = run;
	st->runs = run;
	st->nruns++;
	pthread_mutex_unlock(&st->lock);
	return run;
}

/*
 * Submission failed (errno): take the run back.  A cancel that came
 * meanwhile still wins (returns 0, the instance CANCELLED); otherwise -1
 * with errno, and job_run() ends the instance FAILED.
 */
static int
plugin_start_failed(struct job_instance *inst, struct plugin_run *run)
{
	int err = errno;

	plugin_disarm(inst);
	plugin_run_unlist(run);
	/*
	 * Both references at once, the pool item's (never made) and
	 * start's: two unrefs in a row read to clang's analyzer as a use
	 * after free, since it does not follow the count.
	 */
	plugin_run_drop(run, 2);
	if (job_cancel_requested(inst)) {
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
		return 0;
	}
	errno = err;
	return -1;
}

/*
 * Listed first, submitted after, so that the pool lock is never taken
 * under ours; the run's second reference keeps it alive until its pool
 * future is stored, whatever the worker does meanwhile.
 */
static int
plugin_start(struct job_instance *inst, struct job_env *env)
{
	struct plugin_state *st = kinds_state(env, &job_kind_plugin);
	struct plugin_run *run;
	struct future *f;

	if (st == NULL) {
		errno = ENXIO;	/* kinds_open() was not called */
		return -1;
	}
	if (!future_start(inst->future))
		return 0;	/* cancelled before it started */
	if (env->test_after_start != NULL)
		env->test_after_start(inst);
	job_note_started(inst);
	if ((run = plugin_run_new(inst, st)) == NULL)
		return -1;
	job_ref(inst);
	if (timer_add(env->timer, &inst->timer, inst->def->timeout_ns) != 0) {
		job_unref(inst);
		return plugin_start_failed(inst, run);
	}
	f = pool_submit(env->pool, plugin_work, plugin_release, run);
	if (f == NULL)
		return plugin_start_failed(inst, run);
	pthread_mutex_lock(&st->lock);
	run->queued = f;
	pthread_mutex_unlock(&st->lock);
	plugin_run_unref(run);
	/*
	 * A cancel that came before the line above found no pool future to
	 * cancel and left its mark, which our lock orders before this read.
	 */
	if (job_cancel_requested(inst))
		plugin_cancel(inst, env);
	return 0;
}

const struct job_kind job_kind_plugin = {
	.name = "plugin",
	.open = plugin_open,
	.close = plugin_close,
	.parse = plugin_parse,
	.check = plugin_check,
	.free = plugin_free,
	.start = plugin_start,
	.cancel = plugin_cancel,
	.fire = plugin_fire,
};
