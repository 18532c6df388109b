/*
 * activation.c - see activation.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "activation.h"
#include "log.h"

/* A decimal number from 1 to max, and nothing else; -1 otherwise. */
static long
parse_positive(const char *s, long max)
{
	long n = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (max - (*s - '0')) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n >= 1 ? n : -1;
}

int
activation_parse(const char *listen_pid, const char *listen_fds, pid_t self)
{
	long pid, n;

	if (listen_pid == NULL)
		return 0;
	pid = parse_positive(listen_pid, INT_MAX);
	if (pid < 0)
		return -1;
	if (pid != (long)self || listen_fds == NULL)
		return 0;
	n = parse_positive(listen_fds, INT_MAX - ACTIVATION_FIRST_FD);
	return n < 0 ? -1 : (int)n;
}

#ifdef HAVE_LIBSYSTEMD
static int
listen_fds(void)
{
	return sd_listen_fds(1);
}
#else
/*
 * sd_listen_fds(1) by hand: the number of sockets passed, 0, or -errno
 * (EINVAL: bad values; EBADF: one of them is not open).  The variables are
 * unset in every case, and the passed fds made close-on-exec.
 */
static int
listen_fds(void)
{
	int n = activation_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
				 getpid());
	int fd;

	if (n < 0)
		n = -EINVAL;
	for (fd = ACTIVATION_FIRST_FD; n > 0 && fd < ACTIVATION_FIRST_FD + n;
	     fd++)
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
			n = -errno;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}
#endif

/*
 * A variable's value for a message, into buf: at most 20 bytes of it, each
 * byte that is not printable ASCII as '?' (the environment is untrusted
 * text), or "(unset)".
 */
static void
describe(const char *value, char *buf, size_t size)
{
	size_t i;

	if (value == NULL) {
		snprintf(buf, size, "(unset)");
		return;
	}
	for (i = 0; i < 20 && i + 1 < size && value[i] != '\0'; i++)
		buf[i] = value[i] >= 0x20 && value[i] < 0x7f ? value[i] : '?';
	buf[i] = '\0';
}

/* Logs why listen_fds() failed with -err. */
static void
log_failure(int err, const char *pid, const char *fds)
{
	int n = activation_parse(pid, fds, getpid());
	int fd;

	if (err == EBADF && n > 0) {
		for (fd = ACTIVATION_FIRST_FD; fd < ACTIVATION_FIRST_FD + n &&
		     fcntl(fd, F_GETFD) != -1; fd++)
			;
		log_error("socket activation: LISTEN_FDS=%d but fd %d is not "
			  "open", n, fd);
	} else if (err == EINVAL || err == ERANGE) {
		char p[32], f[32];

		describe(pid, p, sizeof(p));
		describe(fds, f, sizeof(f));
		log_error("socket activation: bad LISTEN_PID or LISTEN_FDS "
			  "(LISTEN_PID=%s, LISTEN_FDS=%s)", p, f);
	} else {
		log_error("socket activation: %s", strerror(err));
	}
}

/* 0 if fd is a listening IPv4 or IPv6 stream socket; -1, logged, if not. */
static int
check_socket(int fd)
{
	int type, family, listening;
	socklen_t len;
	struct stat st;

	if (fstat(fd, &st) != 0) {
		log_error("socket activation: fd %d: %s", fd, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("socket activation: fd %d is not a socket", fd);
		return -1;
	}
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    (len = sizeof(family),
	     getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) ||
	    (len = sizeof(listening),
	     getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)) {
		log_error("socket activation: fd %d: getsockopt: %s", fd,
			  strerror(errno));
		return -1;
	}
	if (type != SOCK_STREAM) {
		log_error("socket activation: fd %d is not a stream socket",
			  fd);
		return -1;
	}
	if (family != AF_INET && family != AF_INET6) {
		log_error("socket activation: fd %d is not an IPv4 or IPv6 "
			  "socket", fd);
		return -1;
	}
	if (!listening) {
		log_error("socket activation: fd %d is not listening", fd);
		return -1;
	}
	return 0;
}

int
activation_take_socket(int *fd)
{
	char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int n;

	/* Copies: listen_fds() unsets them, and the messages name them. */
	pid = pid != NULL ? strdup(pid) : NULL;
	fds = fds != NULL ? strdup(fds) : NULL;
	*fd = -1;
	n = listen_fds();
	if (n < 0)
		log_failure(-n, pid, fds);
	else if (n > 1)
		log_error("socket activation: %d sockets passed (LISTEN_FDS=%d); "
			  "taskpoold serves one: give its socket unit a single "
			  "ListenStream=", n, n);
	else if (n == 1 && check_socket(ACTIVATION_FIRST_FD) == 0)
		*fd = ACTIVATION_FIRST_FD;
	free(pid);
	free(fds);
	return n == 0 || *fd >= 0 ? 0 : -1;
}
