/*
 * log.h - one line per event on stderr, in the OpenBSD daemons' shape.
 *
 * Lines below the current level are dropped before formatting.  The level
 * may change at any time (SIGHUP).  Whole lines never interleave.
 *
 * While the log thread runs (log_thread_start() to log_thread_stop()), a
 * call never waits for stderr: it formats its line and copies it into a
 * bounded queue, and the one log thread writes it.  A line that does not
 * fit is dropped and counted; once the thread has caught up it writes
 * "log: N lines dropped" (a warning).  The timer thread logs, and a full
 * pipe or a stalled journald must not stop every timer.  Before the thread
 * starts and after it stops, each call writes its line itself, with one
 * write(2), so that nothing logged at start-up, by -t or at shutdown can be
 * lost.  The queue is process-wide because log_*() is called from
 * everywhere without a context; it lives in log.c alone.
 *
 * A line is "TIME LEVEL: MESSAGE", or "<N>LEVEL: MESSAGE" when stderr is
 * the journal (log_detect_journal()).
 */
#ifndef TASKPOOLD_LOG_H
#define TASKPOOLD_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * Whether stderr is the journal: systemd sets JOURNAL_STREAM to
 * "DEVICE:INODE" (decimal) of the stream it connects a service's stderr
 * to, and a process whose fd 2 has that device and inode writes to it
 * (a child that redirected stderr, or inherited the variable, does not).
 * Then every line starts with its sd-daemon(3) priority, "<3>" error,
 * "<4>" warning, "<6>" info, "<7>" debug, and carries no time (the
 * journal stamps each line itself); otherwise lines keep the plain form.
 * A missing or malformed variable means no.  Call from main() before any
 * other thread starts; each call decides again.  Returns the decision.
 */
bool log_detect_journal(void);

/*
 * "2026-11-23T10:00:00.123Z" (RFC 3339, UTC, milliseconds) into buf, which
 * should hold LOG_TIME_MAX bytes.  Returns its length.  Shared by the log
 * and the API's timestamps, so that the two can be matched.
 */
#define LOG_TIME_MAX 40
size_t log_format_time(char *buf, size_t size, const struct timespec *ts);

/*
 * Starts the log thread with a queue of queue_bytes (at least 2,048, the
 * longest line; LOG_QUEUE_BYTES in the daemon).  The thread blocks every
 * signal.  Returns 0, or -1 with errno set (EBUSY: it runs already) and
 * lines still written by their callers.  Call from the main thread only,
 * like log_thread_stop().
 */
#define LOG_QUEUE_BYTES (256 * 1024)
int log_thread_start(size_t queue_bytes);

/*
 * Writes every queued line (waiting for stderr as long as it takes),
 * reports drops, joins the thread and frees the queue; later lines are
 * written by their callers again.  Nothing to do if it is not running.
 */
void log_thread_stop(void);

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
