/*
 * exec_run.h - one running child of an exec job, and the kind's state
 * while the daemon runs: shared by exec.c (start, cancel, timeout, the
 * kind's life) and exec_reaper.c (the exec thread: pipes, reaping,
 * results).
 *
 * Lock: exec_state.lock guards the list of runs, nruns, fresh,
 * timer_refs, stopping, and of each run: reaped, phase, ending, kill_at.  The fds,
 * the output buffers and drain_until belong to the exec thread once the
 * run is on the list.  It nests one lock: the timer's, taken under it
 * to arm and disarm an instance's timeout (docs/THREADS.md); timer
 * callbacks run without the timer's lock, so the order is never reversed.
 * No future is completed under it (a waiter may cancel another exec job).
 */
#ifndef TASKPOOLD_KINDS_EXEC_RUN_H
#define TASKPOOLD_KINDS_EXEC_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "future.h"
#include "kinds/exec.h"

struct job_instance;
struct job_env;
struct exec_run;

/* What an epoll event of the exec thread points to. */
struct exec_watch {
	struct exec_run *run;
	int which;			/* EXEC_PIDFD, EXEC_STDOUT, EXEC_STDERR */
};
enum { EXEC_PIDFD, EXEC_STDOUT, EXEC_STDERR };

enum exec_phase {
	EXEC_RUNNING,			/* not signalled */
	EXEC_TERM_SENT,			/* SIGTERM; SIGKILL at kill_at */
	EXEC_KILL_SENT,
};

struct exec_run {
	struct exec_run *prev, *next;	/* exec_state.runs */
	struct exec_run *fresh_next;	/* exec_state.fresh */
	struct exec_run *done_next;	/* the exec thread's list to end */
	bool done;			/* on it */
	struct job_instance *inst;	/* a reference */
	const struct exec_def *ed;	/* borrowed from inst's config */
	pid_t pid;			/* also the group's id */
	int fds[3];			/* by EXEC_*; -1 once closed */
	struct exec_watch watch[3];
	/* Under exec_state.lock. */
	bool reaped;			/* the group id may be reused after */
	enum exec_phase phase;
	enum future_state ending;	/* TIMED_OUT, CANCELLED, or QUEUED */
	int64_t kill_at;		/* monotonic ns; 0: none due */
	/* The exec thread's. */
	int code, status;		/* waitid()'s si_code, si_status */
	int64_t drain_until;		/* reaped: pipes read until then */
	bool escaped;			/* the drain bound cut the pipes */
	char *out;
	size_t outlen, outcap;
	bool truncated;
	char errtail[EXEC_STDERR_TAIL];
	size_t errlen;
};

struct exec_state {
	pthread_mutex_t lock;
	pthread_cond_t idle;		/* timer_refs reached 0 */
	struct exec_run *runs;
	size_t nruns;			/* on the list */
	/* Runs handed over whose fds the exec thread has not watched yet. */
	struct exec_run *fresh;
	unsigned timer_refs;		/* timeouts armed or firing */
	bool stopping;
	int epfd, wakefd;
	struct job_env *env;		/* borrowed */
	pthread_t thread;
};

/* The exec thread (exec_reaper.c); arg is the exec_state. */
void *exec_reaper_main(void *arg);

/*
 * Completes r's future from how it ended (exec_output.c): ending is
 * r->ending as the lock last saw it.  Never under the lock.
 */
void exec_run_complete(struct exec_run *r, enum future_state ending);

/* Wakes the exec thread to look at deadlines again. */
void exec_state_wake(struct exec_state *st);

/*
 * Sends sig to r's whole group if its leader is not reaped (so that the
 * group id is still r's): the caller holds st->lock.
 */
void exec_run_signal(struct exec_run *r, int sig);

/*
 * Removes r's timeout from the timer, under st->lock: true if it was
 * armed (the caller then drops the reference the entry held, after
 * unlocking).
 */
bool exec_run_disarm(struct exec_state *st, struct exec_run *r);

#endif
