/*
 * exec_reaper.c - the exec thread: one epoll loop over every child's
 * pidfd and pipes, for the daemon's whole life (exec.c says why a pidfd).
 *
 * Only this thread registers a run's fds, reads them, reaps, and ends
 * and frees a run, so an event's run is always alive while the batch it
 * came in is handled: runs that end are collected and ended after it.
 *
 * A child's end: its pidfd polls readable once the leader has exited.
 * Under the kind's lock, what remains of its group is killed (the leader,
 * still an unreaped zombie, keeps the group's id ours) and the leader is
 * reaped.  The pipes are then read to end of file, for at most
 * EXEC_DRAIN_NS: every process of the group is dead, so only a
 * descendant that left it (setsid) can hold them open longer, and it
 * must not hold the job.  Reading never stops before that: past
 * max_output the rest is read and thrown away, so a child never blocks
 * on a full pipe.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"
#include "kinds/exec_run.h"
#include "log.h"

#define EXEC_DRAIN_NS INT64_C(1000000000)	/* pipes after the reap */
#define READ_CHUNK 65536
#define READS_PER_EVENT 16		/* then the next fd's turn */
#define MAX_EVENTS 64

static void
mark_done(struct exec_run *r, struct exec_run **done)
{
	if (r->done)
		return;
	r->done = true;
	r->done_next = *done;
	*done = r;
}

/*
 * Takes a run's fd out of the epoll set, then closes it.  close() alone
 * would not: the set holds the open file, not the number, and another
 * thread's posix_spawn() may hold a copy of it in its child for a moment
 * (until the child's closefrom), during which the stale watch would still
 * report events for a run already freed.
 */
static void
unwatch(struct exec_state *st, struct exec_run *r, int which)
{
	if (r->fds[which] < 0)
		return;
	(void)epoll_ctl(st->epfd, EPOLL_CTL_DEL, r->fds[which], NULL);
	close(r->fds[which]);
	r->fds[which] = -1;
}

static bool
run_over(const struct exec_run *r)
{
	return r->fds[EXEC_PIDFD] < 0 && r->fds[EXEC_STDOUT] < 0 &&
	       r->fds[EXEC_STDERR] < 0;
}

/*
 * The leader exited (or, with block, was just SIGKILLed): kills the rest
 * of its group and reaps it, under the lock.  Returns true once reaped.
 */
static bool
reap(struct exec_state *st, struct exec_run *r, bool block)
{
	struct job_instance *drop = NULL;
	siginfo_t si;
	int rc;

	memset(&si, 0, sizeof(si));
	pthread_mutex_lock(&st->lock);
	exec_run_signal(r, SIGKILL);
	do
		rc = waitid(P_PIDFD, (id_t)r->fds[EXEC_PIDFD], &si,
			    WEXITED | (block ? 0 : WNOHANG));
	while (rc < 0 && errno == EINTR);
	if (rc == 0 && si.si_pid != 0) {
		r->reaped = true;
		r->kill_at = 0;
		if (exec_run_disarm(st, r))
			drop = r->inst;
	}
	pthread_mutex_unlock(&st->lock);
	job_unref(drop);	/* the timeout's; r holds its own */
	if (!r->reaped)
		return false;
	r->code = si.si_code;
	r->status = si.si_status;
	unwatch(st, r, EXEC_PIDFD);
	r->drain_until = timer_now_ns() + EXEC_DRAIN_NS;
	return true;
}

/* Keeps what fits under max_output; the rest is dropped. */
static void
keep_out(struct exec_run *r, const char *buf, size_t n)
{
	size_t room = r->ed->max_output - r->outlen;
	size_t take = n < room ? n : room;

	if (take < n)
		r->truncated = true;
	if (take == 0)
		return;
	if (r->outlen + take > r->outcap) {
		size_t cap = r->outcap ? r->outcap * 2 : READ_CHUNK;
		char *out;

		while (cap < r->outlen + take)
			cap *= 2;
		if (cap > r->ed->max_output)
			cap = r->ed->max_output;
		if ((out = realloc(r->out, cap)) == NULL) {
			r->truncated = true;	/* keep what we have */
			return;
		}
		r->out = out;
		r->outcap = cap;
	}
	memcpy(r->out + r->outlen, buf, take);
	r->outlen += take;
}

/* Keeps the last EXEC_STDERR_TAIL bytes. */
static void
keep_err(struct exec_run *r, const char *buf, size_t n)
{
	size_t drop;

	if (n >= EXEC_STDERR_TAIL) {
		memcpy(r->errtail, buf + n - EXEC_STDERR_TAIL,
		       EXEC_STDERR_TAIL);
		r->errlen = EXEC_STDERR_TAIL;
		return;
	}
	if (r->errlen + n > EXEC_STDERR_TAIL) {
		drop = r->errlen + n - EXEC_STDERR_TAIL;
		memmove(r->errtail, r->errtail + drop, r->errlen - drop);
		r->errlen -= drop;
	}
	memcpy(r->errtail + r->errlen, buf, n);
	r->errlen += n;
}

/* Reads a pipe until it would block (a bounded number of times). */
static void
read_pipe(struct exec_state *st, struct exec_run *r, int which, char *buf)
{
	ssize_t n;
	int i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		n = read(r->fds[which], buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			unwatch(st, r, which);
			return;
		}
		if (which == EXEC_STDOUT)
			keep_out(r, buf, (size_t)n);
		else
			keep_err(r, buf, (size_t)n);
	}
}

static void
on_event(struct exec_state *st, struct exec_watch *w, char *buf,
	 struct exec_run **done)
{
	struct exec_run *r = w->run;

	if (r->fds[w->which] < 0)
		return;
	if (w->which == EXEC_PIDFD)
		reap(st, r, false);
	else
		read_pipe(st, r, w->which, buf);
	if (run_over(r))
		mark_done(r, done);
}

/*
 * Registers the fds of runs just handed over.  One that cannot be
 * watched (no memory) is killed and reaped here, its pipes cut: it then
 * ends like any other, failed by the kill.
 */
static void
watch_fresh(struct exec_state *st, struct exec_run *fresh,
	    struct exec_run **done)
{
	struct exec_run *r, *next;
	struct epoll_event ev;
	int i;

	for (r = fresh; r != NULL; r = next) {
		next = r->fresh_next;
		for (i = 0; i < 3; i++) {
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLIN;
			ev.data.ptr = &r->watch[i];
			r->watch[i].run = r;
			r->watch[i].which = i;
			if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, r->fds[i],
				      &ev) != 0)
				break;
		}
		if (i == 3)
			continue;
		log_warn("exec: cannot watch a child of job %s",
			 r->inst->def->name);
		pthread_mutex_lock(&st->lock);
		r->ending = FUTURE_FAILED;
		pthread_mutex_unlock(&st->lock);
		reap(st, r, true);
		for (i = 1; i < 3; i++)
			unwatch(st, r, i);
		mark_done(r, done);
	}
}

/*
 * Under the lock: SIGKILLs the groups whose grace ran out, cuts the pipes
 * of runs reaped more than EXEC_DRAIN_NS ago, and returns how long epoll
 * may sleep (ms, -1: until an event).
 */
static int
tend_deadlines(struct exec_state *st, struct exec_run **done)
{
	int64_t now = timer_now_ns(), next = INT64_MAX, ms;
	struct exec_run *r;

	for (r = st->runs; r != NULL; r = r->next) {
		if (r->kill_at != 0 && r->kill_at <= now) {
			exec_run_signal(r, SIGKILL);
			r->phase = EXEC_KILL_SENT;
			r->kill_at = 0;
		} else if (r->kill_at != 0 && r->kill_at < next)
			next = r->kill_at;
		if (!r->reaped || r->done)
			continue;
		if (r->drain_until <= now) {
			r->escaped = true;
			mark_done(r, done);
		} else if (r->drain_until < next)
			next = r->drain_until;
	}
	if (next == INT64_MAX)
		return -1;
	ms = (next - now + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

/* Ends r: off the list, its future completed, freed. */
static void
end_run(struct exec_state *st, struct exec_run *r)
{
	enum future_state ending;
	int i;

	for (i = 0; i < 3; i++)
		unwatch(st, r, i);
	pthread_mutex_lock(&st->lock);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		st->runs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	st->nruns--;
	ending = r->ending;
	pthread_mutex_unlock(&st->lock);
	if (r->escaped)
		log_warnx("job %s (id %s): a process outside its group kept "
			  "its output open; stopped reading %.1f s after it "
			  "ended", r->inst->def->name, r->inst->id,
			  (double)EXEC_DRAIN_NS / 1e9);
	exec_run_complete(r, ending);
	job_unref(r->inst);
	free(r->out);
	free(r);
}

void *
exec_reaper_main(void *arg)
{
	struct exec_state *st = arg;
	struct epoll_event evs[MAX_EVENTS];
	struct exec_run *fresh, *done, *r;
	char buf[READ_CHUNK];
	bool stop;
	int n, i, timeout;

	for (;;) {
		done = NULL;
		pthread_mutex_lock(&st->lock);
		fresh = st->fresh;
		st->fresh = NULL;
		timeout = tend_deadlines(st, &done);
		stop = st->stopping && st->nruns == 0;
		pthread_mutex_unlock(&st->lock);
		watch_fresh(st, fresh, &done);
		if (stop)
			break;
		n = epoll_wait(st->epfd, evs, MAX_EVENTS,
			       done != NULL ? 0 : timeout);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				uint64_t count;

				(void)!read(st->wakefd, &count, sizeof(count));
				continue;
			}
			on_event(st, evs[i].data.ptr, buf, &done);
		}
		while ((r = done) != NULL) {
			done = r->done_next;
			end_run(st, r);
		}
	}
	return NULL;
}
