/*
 * exec_spawn.c - starts one child of an exec job, quickly, on the caller's
 * thread (an HTTP thread): it never waits for the child to run or end.
 *
 * What the child gets: stdin from /dev/null, stdout and stderr to pipes
 * that only the daemon reads, no other descriptor (the parent's ends are
 * close-on-exec, and every descriptor from 3 up is closed in the child, so
 * a descriptor another thread opens meanwhile cannot leak either), an
 * empty signal mask and every signal at its default (the daemon's threads
 * block all signals and it ignores SIGPIPE), a process group of its own
 * (so that the whole tree can be signalled), the job's directory, and only
 * the job's env.NAME variables.
 *
 * posix_spawn() does all of that.  It cannot switch users, so a job with
 * `user` forks instead, and its child calls only async-signal-safe
 * functions and raw system calls (the ids were resolved at load) before
 * execve(); a pipe reports a failure before the exec, as posix_spawn()
 * does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinds/exec.h"

static int
spawn_with_posix_spawn(const struct exec_def *ed, char *const argv[],
		       char *const envp[], const int out[2], const int err[2],
		       pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	if ((rc = posix_spawnattr_init(&attr)) != 0)
		return rc;
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		posix_spawnattr_destroy(&attr);
		return rc;
	}
	rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
				      POSIX_SPAWN_SETSIGDEF |
				      POSIX_SPAWN_SETPGROUP);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
						      O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (rc == 0 && ed->directory != NULL)
		rc = posix_spawn_file_actions_addchdir_np(&fa, ed->directory);
	if (rc == 0)
		rc = posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/*
 * The forked child of a job with `user`: async-signal-safe calls only.
 * Ids change with raw system calls, which change only this (the only)
 * thread, rather than glibc's wrappers, which signal every thread the
 * parent had.  Never returns: errno goes to report on failure.
 */
static void
child_as_user(const struct exec_def *ed, char *const argv[],
	      char *const envp[], const int out[2], const int err[2],
	      int report)
{
	struct sigaction sa;
	sigset_t none;
	int sig, fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);	/* KILL, STOP: EINVAL */
	sigemptyset(&none);
	if (setpgid(0, 0) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		goto fail;
	if ((fd = open("/dev/null", O_RDONLY)) < 0 ||
	    (fd != 0 && dup2(fd, 0) != 0) || dup2(out[1], 1) != 1 ||
	    dup2(err[1], 2) != 2)
		goto fail;
	if (ed->directory != NULL && chdir(ed->directory) != 0)
		goto fail;
	if (syscall(SYS_setgroups, (size_t)ed->ngroups, ed->groups) != 0 ||
	    syscall(SYS_setresgid, ed->gid, ed->gid, ed->gid) != 0 ||
	    syscall(SYS_setresuid, ed->uid, ed->uid, ed->uid) != 0)
		goto fail;
	/* report is close-on-exec: a successful exec closes it. */
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
		goto fail;
	execve(argv[0], argv, envp);
fail:
	e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

static int
spawn_as_user(const struct exec_def *ed, char *const argv[],
	      char *const envp[], const int out[2], const int err[2],
	      pid_t *pid)
{
	int report[2], e = 0;
	ssize_t n;
	pid_t p;

	if (pipe2(report, O_CLOEXEC) != 0)
		return errno;
	if ((p = fork()) < 0) {
		e = errno;
		close(report[0]);
		close(report[1]);
		return e;
	}
	if (p == 0)
		child_as_user(ed, argv, envp, out, err, report[1]);
	close(report[1]);
	do
		n = read(report[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		return e != 0 ? e : ECHILD;
	}
	*pid = p;
	return 0;
}

pid_t
exec_spawn(const struct exec_def *ed, char *const argv[], char *const envp[],
	   int fds[3])
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rc;
	pid_t pid = -1;

	if (pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = errno;
		goto fail;
	}
	/* The child's ends block, as a program expects of its stdout. */
	if (fcntl(out[1], F_SETFL, 0) != 0 || fcntl(err[1], F_SETFL, 0) != 0) {
		rc = errno;
		goto fail;
	}
	rc = ed->user != NULL ?
	     spawn_as_user(ed, argv, envp, out, err, &pid) :
	     spawn_with_posix_spawn(ed, argv, envp, out, err, &pid);
	if (rc != 0)
		goto fail;
	close(out[1]);
	close(err[1]);
	/*
	 * The child is ours and unreaped (nothing else in the daemon waits
	 * for children), so its pid cannot be reused before this.
	 */
	if ((fds[0] = pidfd_open(pid, 0)) < 0) {
		rc = errno;
		kill(-pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(out[0]);
		close(err[0]);
		errno = rc;
		return -1;
	}
	fds[1] = out[0];
	fds[2] = err[0];
	return pid;
fail:
	if (out[0] >= 0) {
		close(out[0]);
		close(out[1]);
	}
	if (err[0] >= 0) {
		close(err[0]);
		close(err[1]);
	}
	errno = rc;
	return -1;
}
