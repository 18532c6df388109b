/*
 * notify.h - telling the service manager what the daemon is doing, by the
 * protocol of sd_notify(3): READY=1, RELOADING=1, STOPPING=1, and a one-line
 * STATUS= that systemctl status shows.
 *
 * With libsystemd, sd_notify() sends.  Built without it (configure
 * --without-libsystemd), the same datagram goes out by hand: one AF_UNIX
 * datagram to $NOTIFY_SOCKET, a path, or "@name" for the abstract
 * namespace; the kernel attaches the sender's credentials, which systemd
 * asks for (SO_PASSCRED).  Without $NOTIFY_SOCKET nothing is sent.
 * MAINPID= is never sent: systemd started the daemon and knows its pid.
 *
 * Main thread only (start-up, the signal loop, the drain): a send may wait
 * while the manager's queue is full, and no other thread may wait on it.
 */
#ifndef TASKPOOLD_NOTIFY_H
#define TASKPOOLD_NOTIFY_H

#include <stdbool.h>

/* The longest STATUS= text kept; longer ones are cut. */
#define NOTIFY_STATUS_MAX 512

struct notify {
	bool enabled;			/* $NOTIFY_SOCKET was set at init */
	bool warned;			/* a failed send was logged */
	char status[NOTIFY_STATUS_MAX];	/* the last STATUS= sent, or "" */
};

/* Reads $NOTIFY_SOCKET once.  Cannot fail. */
void notify_init(struct notify *n);

/*
 * Sends state ("READY=1", ...) in one datagram with "STATUS=status" when
 * status is not NULL; state NULL sends the status alone.  The status is
 * made one line of printable ASCII (any other byte becomes '?').  The
 * first failure is logged as a warning, later ones at debug: a manager
 * that is gone is said once.
 */
void notify_send(struct notify *n, const char *state, const char *status);

/* Sends STATUS=status alone, unless it is what was sent last. */
void notify_status(struct notify *n, const char *status);

#endif
