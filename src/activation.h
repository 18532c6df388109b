/*
 * activation.h - socket activation: the listening socket that the service
 * manager passes (systemd with taskpoold.socket, systemd-socket-activate,
 * or any manager that speaks the sd_listen_fds(3) protocol).
 *
 * The protocol: the manager execs the daemon with the sockets open as fd
 * 3, 4, ... (SD_LISTEN_FDS_START), LISTEN_FDS=n and LISTEN_PID=<the
 * daemon's pid>; a LISTEN_PID of another process (a parent that forgot to
 * unset it) means that nothing is passed to this one.  With libsystemd the
 * variables are read by sd_listen_fds(3); without it (configure
 * --without-libsystemd) by activation_parse().
 *
 * taskpoold serves exactly one socket, a listening IPv4 or IPv6 stream
 * socket.  Anything else is refused with a clear error rather than half
 * served: a second socket that nobody accepted from would hold its clients
 * in its queue for ever.
 */
#ifndef TASKPOOLD_ACTIVATION_H
#define TASKPOOLD_ACTIVATION_H

#include <sys/types.h>

#define ACTIVATION_FIRST_FD 3	/* SD_LISTEN_FDS_START */

/*
 * The socket passed to this process, if any.  Reads LISTEN_PID and
 * LISTEN_FDS and unsets them and LISTEN_FDNAMES (always: so that no
 * program that the daemon runs sees them), so it must be called before
 * any thread starts.  Returns 0 with *fd the passed socket (close-on-exec;
 * the caller owns it) or -1 when none was passed to this process; or -1
 * with the reason logged as an error (bad values, more than one socket, or
 * one that is not a listening IPv4 or IPv6 stream socket).
 */
int activation_take_socket(int *fd);

/*
 * The protocol by hand: how many sockets listen_pid and listen_fds (the
 * variables' values, either may be NULL) pass to the process self.
 * Returns n >= 1; 0 when nothing is passed to self (a variable unset, or
 * LISTEN_PID another process's); -1 when a value is not a decimal number
 * in range: LISTEN_PID 1 .. INT_MAX, LISTEN_FDS 1 .. INT_MAX - 3 (0 is an
 * error, as in sd_listen_fds(3)).  Stricter than libsystemd, which also
 * takes "+3", " 3" or "0x3": no manager writes those.  Used only without
 * libsystemd, built always so that its unit test runs in every build.
 */
int activation_parse(const char *listen_pid, const char *listen_fds,
		     pid_t self);

#endif
