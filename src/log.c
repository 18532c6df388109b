/*
 * log.c - see log.h.
 *
 * The level is the one piece of process-wide state besides the daemon
 * context: it is an atomic, read on every call, so no lock is needed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static atomic_int current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, (int)level,
			      memory_order_relaxed);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&current_level,
						    memory_order_relaxed);
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
		return level_names[level];
	return "unknown";
}

int
log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

size_t
log_format_time(char *buf, size_t size, const struct timespec *ts)
{
	struct tm tm;
	size_t len;
	int n;

	gmtime_r(&ts->tv_sec, &tm);
	len = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(buf + len, size - len, ".%03ldZ", ts->tv_nsec / 1000000);
	if (n > 0)
		len += (size_t)n < size - len ? (size_t)n : size - len - 1;
	return len;
}

/*
 * Drops the line if level is below the current one; otherwise formats
 * "2026-11-23T10:00:00.123Z level: message[: errstr]\n" and writes it.
 */
static void
log_write(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	size_t len, start, i, max = sizeof(line) - 1;	/* room for '\n' */
	int n;

	if ((int)level > atomic_load_explicit(&current_level,
					      memory_order_relaxed))
		return;
	clock_now(CLOCK_REALTIME, &ts);
	len = log_format_time(line, max, &ts);
	n = snprintf(line + len, max - len, " %s: ", level_names[level]);
	len += (size_t)n;
	start = len;
	n = vsnprintf(line + len, max - len, fmt, ap);
	len = n < 0 ? len : len + (size_t)n;
	if (len >= max)
		len = max - 1;	/* truncated before its terminating NUL */
	if (errnum != 0 && len < max - 1) {
		char buf[128];
		const char *msg = strerror_r(errnum, buf, sizeof(buf));

		n = snprintf(line + len, max - len, ": %s", msg);
		len = n < 0 ? len : len + (size_t)n;
		if (len >= max)
			len = max - 1;
	}
	/*
	 * One event, one line: a control character that came from a client
	 * or a file (a decoded %0a in a path) must not forge another line.
	 */
	for (i = start; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
		    line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

#define LOG_FUNCTION(name, level, with_errno)                      \
	void name(const char *fmt, ...)                             \
	{                                                           \
		int errnum = (with_errno) ? errno : 0;              \
		va_list ap;                                         \
		va_start(ap, fmt);                                  \
		log_write((level), errnum, fmt, ap);                \
		va_end(ap);                                         \
	}

LOG_FUNCTION(log_error, LOG_LEVEL_ERROR, 0)
LOG_FUNCTION(log_warn, LOG_LEVEL_WARNING, 1)
LOG_FUNCTION(log_warnx, LOG_LEVEL_WARNING, 0)
LOG_FUNCTION(log_info, LOG_LEVEL_INFO, 0)
LOG_FUNCTION(log_debug, LOG_LEVEL_DEBUG, 0)
