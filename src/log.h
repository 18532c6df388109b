/*
 * log.h - one line per event on stderr, in the OpenBSD daemons' shape.
 *
 * Each call writes one whole line with a single write(2), so lines from
 * different threads never interleave.  Lines below the current level are
 * dropped before formatting.  The level may change at any time (SIGHUP).
 */
#ifndef TASKPOOLD_LOG_H
#define TASKPOOLD_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#include <stddef.h>
#include <time.h>

/*
 * "2026-11-23T10:00:00.123Z" (RFC 3339, UTC, milliseconds) into buf, which
 * should hold LOG_TIME_MAX bytes.  Returns its length.  Shared by the log
 * and the API's timestamps, so that the two can be matched.
 */
#define LOG_TIME_MAX 40
size_t log_format_time(char *buf, size_t size, const struct timespec *ts);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* "error", "warning", "info", "debug" and back; -1 for an unknown name. */
const char *log_level_name(enum log_level level);
int log_level_parse(const char *name);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
