/*
 * exec.c - kind `exec`: runs a program (never a shell) with the job's
 * parameters as whole arguments; its stdout is the result.
 *
 * A child is started on the caller's thread (exec_spawn.c, quick), and
 * from then on waited for by one exec thread (exec_reaper.c), which runs
 * for the daemon's whole life: an epoll loop over each child's pidfd and
 * its stdout and stderr pipes.  A running exec job holds no worker.
 *
 * Why a pidfd rather than SIGCHLD: a SIGCHLD handler is process-wide
 * state (and this daemon takes signals synchronously on main alone);
 * waitpid(-1) would reap children that are not ours (a plugin's); and a
 * pid can be reaped and reused between the signal and a kill().  A pidfd
 * names exactly our child, polls with the pipes in one loop, and is
 * reaped with waitid(P_PIDFD).  The group is signalled with kill(-pid)
 * only under the kind's lock and only while the leader is not reaped:
 * until then its pid, the group's id, cannot be reused.
 *
 * Timeout and cancel end the child the same way: SIGTERM to the group,
 * SIGKILL after kill_grace (the exec thread keeps that deadline).  The
 * job's timeout is the instance's timer entry on the daemon's timer.  A
 * job ends when its leader is reaped (what remains of its group is
 * killed first) and both pipes reached end of file, or a short bound
 * after the reap if a descendant that left the group holds them.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "job.h"
#include "kinds/exec.h"
#include "kinds/exec_run.h"
#include "kinds/kind.h"
#include "kinds/kinds.h"

static struct exec_run *
find_run(struct exec_state *st, const struct job_instance *inst)
{
	struct exec_run *r;

	for (r = st->runs; r != NULL; r = r->next)
		if (r->inst == inst)
			return r;
	return NULL;
}

void
exec_run_signal(struct exec_run *r, int sig)
{
	if (!r->reaped)
		(void)kill(-r->pid, sig);
}

bool
exec_run_disarm(struct exec_state *st, struct exec_run *r)
{
	if (!timer_cancel(st->env->timer, &r->inst->timer))
		return false;
	st->timer_refs--;
	return true;
}

void
exec_state_wake(struct exec_state *st)
{
	uint64_t one = 1;

	(void)!write(st->wakefd, &one, sizeof(one));
}

/*
 * SIGTERM now and SIGKILL after kill_grace, once: whichever of a timeout,
 * a cancel and the stop comes first decides how the job ends.  Under
 * st->lock.  Returns true if the exec thread must look at its deadlines.
 */
static bool
stop_run(struct exec_run *r, enum future_state ending)
{
	if (r->reaped || r->phase != EXEC_RUNNING)
		return false;
	r->ending = ending;
	if (r->ed->kill_grace_ns == 0) {
		exec_run_signal(r, SIGKILL);
		r->phase = EXEC_KILL_SENT;
		return false;
	}
	exec_run_signal(r, SIGTERM);
	r->phase = EXEC_TERM_SENT;
	r->kill_at = timer_now_ns() + r->ed->kill_grace_ns;
	return true;
}

/*
 * Never completes the future itself: the exec thread does when the child
 * is reaped, and sees the cancel mark then.  Returns false.
 */
static bool
exec_cancel(struct job_instance *inst, struct job_env *env)
{
	struct exec_state *st = kinds_state(env, &job_kind_exec);
	struct exec_run *r;
	bool wake = false;

	if (st == NULL)
		return false;
	pthread_mutex_lock(&st->lock);
	if ((r = find_run(st, inst)) != NULL)
		wake = stop_run(r, FUTURE_CANCELLED);
	pthread_mutex_unlock(&st->lock);
	if (wake)
		exec_state_wake(st);
	return false;
}

/* The instance's timeout: the entry holds a reference on inst. */
static void
exec_fire(struct timer_entry *e, bool fired)
{
	struct job_instance *inst = (struct job_instance *)
		((char *)e - offsetof(struct job_instance, timer));
	struct exec_state *st = kinds_state(inst->env, &job_kind_exec);
	struct exec_run *r;
	bool wake = false;

	pthread_mutex_lock(&st->lock);
	if (fired && (r = find_run(st, inst)) != NULL)
		wake = stop_run(r, FUTURE_TIMED_OUT);
	/*
	 * The wake comes before the decrement, under the lock: once
	 * timer_refs is 0, exec_close() may free st.
	 */
	if (wake)
		exec_state_wake(st);
	if (--st->timer_refs == 0)
		pthread_cond_broadcast(&st->idle);
	pthread_mutex_unlock(&st->lock);
	job_unref(inst);
}

/*
 * Puts r on the list, arms its timeout and hands it to the exec thread,
 * which registers its fds: from here on only that thread frees r.  A
 * timeout that cannot be armed (no memory, timer stopping) ends the
 * child at once.  Returns true if a cancel came before it was armed.
 */
static bool
hand_over(struct exec_state *st, struct exec_run *r)
{
	struct job_instance *inst = r->inst;
	bool armed;

	pthread_mutex_lock(&st->lock);
	r->next = st->runs;
	if (st->runs != NULL)
		st->runs->prev = r;
	st->runs = r;
	st->nruns++;
	r->fresh_next = st->fresh;
	st->fresh = r;
	job_ref(inst);
	armed = timer_add(st->env->timer, &inst->timer,
			  inst->def->timeout_ns) == 0;
	if (armed)
		st->timer_refs++;
	else {
		exec_run_signal(r, SIGKILL);
		r->phase = EXEC_KILL_SENT;
		r->ending = FUTURE_FAILED;
	}
	pthread_mutex_unlock(&st->lock);
	if (!armed)
		job_unref(inst);
	exec_state_wake(st);
	/*
	 * A cancel since future_start() found nothing on the list and
	 * left its mark, which the lock orders before this read.
	 */
	return job_cancel_requested(inst);
}

/*
 * Fails inst's future with "cannot run PROGRAM: reason", unless a cancel
 * came since future_start(): it found nothing to stop and counts on this
 * thread to end the job CANCELLED (job.h).
 */
static void
fail_start(struct job_instance *inst, const char *program, int err)
{
	char *msg;

	if (job_cancel_requested(inst)) {
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
		return;
	}
	if (asprintf(&msg, "cannot run %s: %s", program, strerror(err)) < 0)
		msg = NULL;
	future_complete(inst->future, FUTURE_FAILED, NULL, msg);
}

/*
 * On the caller's thread, which holds a reference: renders, spawns and
 * hands the child over; never waits for it.  Returns -1 (errno) only
 * when nothing was started.
 */
static int
exec_start(struct job_instance *inst, struct job_env *env)
{
	const struct exec_def *ed = inst->def->kind_data;
	struct exec_state *st = kinds_state(env, &job_kind_exec);
	struct exec_run *r;
	char **argv, **envp;
	int err;

	if (st == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (!future_start(inst->future))
		return 0;	/* cancelled before it started */
	if (env->test_after_start != NULL)
		env->test_after_start(inst);
	job_note_started(inst);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	if (exec_render(ed, inst->params, &argv, &envp) != 0) {
		free(r);
		return -1;
	}
	r->pid = exec_spawn(ed, argv, envp, r->fds);
	err = errno;
	exec_words_free(argv);
	exec_words_free(envp);
	if (r->pid < 0) {
		free(r);
		fail_start(inst, ed->words[0], err);
		return 0;
	}
	r->inst = job_ref(inst);
	r->ed = ed;
	r->ending = FUTURE_QUEUED;
	if (hand_over(st, r))
		exec_cancel(inst, env);
	return 0;
}

/* The exec thread, with every signal blocked like every thread but main. */
static int
start_thread(struct exec_state *st)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&st->thread, NULL, exec_reaper_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static int
exec_open(struct job_env *env, void **state)
{
	struct exec_state *st = calloc(1, sizeof(*st));
	struct epoll_event ev;
	int err = ENOMEM;

	if (st == NULL)
		return -1;
	st->env = env;
	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	st->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (st->epfd < 0 || st->wakefd < 0 ||
	    epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->wakefd, &ev) != 0)
		goto fail;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->idle, NULL);
	if ((err = start_thread(st)) != 0) {
		pthread_cond_destroy(&st->idle);
		pthread_mutex_destroy(&st->lock);
		goto fail;
	}
	*state = st;
	return 0;
fail:
	if (err == ENOMEM)
		err = errno;
	if (st->epfd >= 0)
		close(st->epfd);
	if (st->wakefd >= 0)
		close(st->wakefd);
	free(st);
	errno = err;
	return -1;
}

/*
 * Every live job was cancelled before this (SIGTERM, SIGKILL due within
 * kill_grace); anything still untouched gets the same now.  The thread
 * ends once every run has ended; then no timeout may still be firing.
 */
static void
exec_close(struct job_env *env, void *state)
{
	struct exec_state *st = state;
	struct exec_run *r;

	(void)env;
	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	st->stopping = true;
	for (r = st->runs; r != NULL; r = r->next)
		stop_run(r, FUTURE_CANCELLED);
	pthread_mutex_unlock(&st->lock);
	exec_state_wake(st);
	pthread_join(st->thread, NULL);
	pthread_mutex_lock(&st->lock);
	while (st->timer_refs > 0)
		pthread_cond_wait(&st->idle, &st->lock);
	pthread_mutex_unlock(&st->lock);
	pthread_cond_destroy(&st->idle);
	pthread_mutex_destroy(&st->lock);
	close(st->epfd);
	close(st->wakefd);
	free(st);
}

const struct job_kind job_kind_exec = {
	.name = "exec",
	.open = exec_open,
	.close = exec_close,
	.parse = exec_parse,
	.check = exec_check,
	.free = exec_free,
	.start = exec_start,
	.cancel = exec_cancel,
	.fire = exec_fire,
};
