/*
 * notify.c - see notify.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "log.h"
#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
static int
send_datagram(const char *text)
{
	return sd_notify(0, text);
}
#else
/*
 * sd_notify()'s protocol by hand, for builds without libsystemd: one
 * datagram to $NOTIFY_SOCKET.  Returns as sd_notify() does: 1 when sent,
 * 0 when there is no socket to send to, -errno on failure.
 */
static int
send_datagram(const char *text)
{
	const char *where = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	int fd, rc = 1;

	if (where == NULL || where[0] == '\0')
		return 0;
	if (where[0] != '/' && where[0] != '@')
		return -EAFNOSUPPORT;
	len = strlen(where);
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, where, len);
	/* "@name" is "\0name" in the abstract namespace, counted exactly. */
	if (where[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			    (where[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL,
		   (const struct sockaddr *)&sa, salen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
#endif

void
notify_init(struct notify *n)
{
	const char *where = getenv("NOTIFY_SOCKET");

	memset(n, 0, sizeof(*n));
	n->enabled = where != NULL && where[0] != '\0';
}

/* Copies status into buf as one line of printable ASCII, cut to fit. */
static void
clean_status(char *buf, size_t size, const char *status)
{
	size_t i;

	for (i = 0; i + 1 < size && status[i] != '\0'; i++)
		buf[i] = status[i] >= 0x20 && status[i] < 0x7f ? status[i] : '?';
	buf[i] = '\0';
}

void
notify_send(struct notify *n, const char *state, const char *status)
{
	char text[NOTIFY_STATUS_MAX + 64];
	size_t len = 0;
	int r;

	if (!n->enabled)
		return;
	text[0] = '\0';
	if (status != NULL)
		clean_status(n->status, sizeof(n->status), status);
	if (state != NULL)
		len = (size_t)snprintf(text, sizeof(text), "%s%s", state,
				       status != NULL ? "\n" : "");
	if (status != NULL && len < sizeof(text))
		snprintf(text + len, sizeof(text) - len, "STATUS=%s",
			 n->status);
	r = send_datagram(text);
	if (r >= 0)
		return;
	text[strcspn(text, "\n")] = '\0';
	if (!n->warned)
		log_warnx("sd_notify %s: %s (further failures are logged at "
			  "debug level)", text, strerror(-r));
	else
		log_debug("sd_notify %s: %s", text, strerror(-r));
	n->warned = true;
}

void
notify_status(struct notify *n, const char *status)
{
	char clean[NOTIFY_STATUS_MAX];

	if (!n->enabled)
		return;
	clean_status(clean, sizeof(clean), status);
	if (strcmp(clean, n->status) != 0)
		notify_send(n, NULL, clean);
}
