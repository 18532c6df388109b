/*
 * log.c - see log.h.
 *
 * Process-wide state, because log_*() is called from every module and
 * thread with no context at hand: the level (an atomic, read on every
 * call, so no lock), whether stderr is the journal (set by main() before
 * any thread starts, read-only after), and the queue of the log thread
 * below.  Nothing else.
 *
 * The queue is a ring of bytes holding whole lines back to back.  A caller
 * formats its line on its own stack, then copies it in under queue.lock (a
 * leaf: held for a memcpy of at most LOG_LINE_MAX bytes, never around I/O)
 * or, when the line does not fit, counts it as dropped.  The one log
 * thread writes the oldest bytes with queue.lock released, then gives
 * their room back; it is the only writer of stderr while it runs, so lines
 * still never interleave.  Why a byte ring and not a ring of line slots:
 * lines run from 40 to 2,048 bytes, so slots would waste most of their room
 * or hold few lines, and the thread can write many lines in one write(2).
 * Why drop rather than wait: a caller may be the timer thread, which must
 * never wait for stderr (a full pipe, a stalled journald).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define LOG_LINE_MAX 2048

static atomic_int current_level = LOG_LEVEL_INFO;

/*
 * Lines in the journal's form (log_detect_journal()).  Written by the
 * main thread before any other starts; pthread_create() orders it before
 * every read on the threads started after.
 */
static bool journal;

/*
 * The log thread's queue.  `running` is true from log_thread_start() until
 * the thread has written the last queued byte after log_thread_stop(); a
 * line logged while it is false is written at once by its caller.
 */
static struct {
	pthread_mutex_t lock;	/* guards everything below but thread */
	pthread_cond_t wake;	/* a line came into an empty ring, or stop */
	char *ring;
	size_t cap, head, used;	/* used bytes start at ring[head], wrap */
	unsigned long long dropped;	/* lines that did not fit, unreported */
	bool running, stopping;
	pthread_t thread;	/* start and stop only (main thread) */
} queue = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

/* sd-daemon(3)'s priorities (syslog's), by level. */
static const char level_priorities[] = {
	[LOG_LEVEL_ERROR] = '3',
	[LOG_LEVEL_WARNING] = '4',
	[LOG_LEVEL_INFO] = '6',
	[LOG_LEVEL_DEBUG] = '7',
};

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

/*
 * A decimal number without sign or blanks, from *s up to stop; advances
 * *s past it.  0, or -1 when there is none or it does not fit.
 */
static int
parse_decimal(const char **s, char stop, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - (unsigned)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (*p != stop)
		return -1;
	*s = p;
	*out = v;
	return 0;
}

bool
log_detect_journal(void)
{
	const char *s = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	journal = false;
	if (s == NULL || parse_decimal(&s, ':', &dev) != 0)
		return false;
	s++;
	if (parse_decimal(&s, '\0', &ino) != 0 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return false;
	journal = (unsigned long long)st.st_dev == dev &&
		  (unsigned long long)st.st_ino == ino;
	return journal;
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
 * Formats "2026-11-23T10:00:00.123Z level: message[: errstr]\n", or
 * "<N>level: message[: errstr]\n" for the journal, into line
 * (LOG_LINE_MAX bytes).  Returns its length, newline included.  Messages
 * hold no newline (see below), so the prefix starts every line.
 */
static size_t
log_format(char *line, enum log_level level, int errnum, const char *fmt,
	   va_list ap) __attribute__((format(printf, 4, 0)));

static size_t
log_format(char *line, enum log_level level, int errnum, const char *fmt,
	   va_list ap)
{
	struct timespec ts;
	size_t len, start, i, max = LOG_LINE_MAX - 1;	/* room for '\n' */
	int n;

	if (journal) {
		n = snprintf(line, max, "<%c>%s: ", level_priorities[level],
			     level_names[level]);
		len = (size_t)n;
	} else {
		clock_now(CLOCK_REALTIME, &ts);
		len = log_format_time(line, max, &ts);
		n = snprintf(line + len, max - len, " %s: ",
			     level_names[level]);
		len += (size_t)n;
	}
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
	return len;
}

static size_t
log_format_line(char *line, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static size_t
log_format_line(char *line, enum log_level level, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	len = log_format(line, level, 0, fmt, ap);
	va_end(ap);
	return len;
}

static bool
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&current_level,
						  memory_order_relaxed);
}

/*
 * Writes all of buf to stderr, unless stderr fails: nothing useful can be
 * done then, and the bytes are lost.
 */
static void
write_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Hands one whole line to the log thread, or writes it here and now when
 * there is none.  Never waits for stderr while the thread runs: a line that
 * does not fit in the ring is dropped and counted.
 */
static void
log_emit(const char *line, size_t len)
{
	size_t tail, first;

	pthread_mutex_lock(&queue.lock);
	if (!queue.running) {
		pthread_mutex_unlock(&queue.lock);
		write_all(line, len);
		return;
	}
	if (queue.cap - queue.used < len) {
		queue.dropped++;
		pthread_mutex_unlock(&queue.lock);
		return;
	}
	tail = (queue.head + queue.used) % queue.cap;
	first = len < queue.cap - tail ? len : queue.cap - tail;
	memcpy(queue.ring + tail, line, first);
	memcpy(queue.ring, line + first, len - first);
	if (queue.used == 0)	/* the thread may be waiting for this */
		pthread_cond_signal(&queue.wake);
	queue.used += len;
	pthread_mutex_unlock(&queue.lock);
}

/* Drops the line if level is below the current one, else logs it. */
static void
log_write(enum log_level level, int errnum, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void
log_write(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];

	if (!log_enabled(level))
		return;
	log_emit(line, log_format(line, level, errnum, fmt, ap));
}

/*
 * The log thread, with queue.lock held: writes every queued byte with one
 * writev(2) (two pieces when they wrap) and the lock released, then frees
 * what was written.  Only producers append, and only to the free part of
 * the ring, so the bytes being written cannot change under the writer.
 */
static void
queue_write_oldest(void)
{
	struct iovec iov[2];
	size_t len = queue.used, first = queue.cap - queue.head;
	ssize_t n;

	if (first > len)
		first = len;
	iov[0].iov_base = queue.ring + queue.head;
	iov[0].iov_len = first;
	iov[1].iov_base = queue.ring;
	iov[1].iov_len = len - first;
	pthread_mutex_unlock(&queue.lock);
	do
		n = writev(STDERR_FILENO, iov, iov[1].iov_len > 0 ? 2 : 1);
	while (n < 0 && errno == EINTR);
	pthread_mutex_lock(&queue.lock);
	/* Partly written: the rest goes next time.  Failed: drop it all. */
	if (n > 0 && (size_t)n < len)
		len = (size_t)n;
	queue.head = (queue.head + len) % queue.cap;
	queue.used -= len;
}

/* The log thread, with queue.lock held: "log: N lines dropped". */
static void
queue_report_dropped(void)
{
	unsigned long long n = queue.dropped;
	char line[LOG_LINE_MAX];

	queue.dropped = 0;
	pthread_mutex_unlock(&queue.lock);
	if (log_enabled(LOG_LEVEL_WARNING))
		write_all(line, log_format_line(line, LOG_LEVEL_WARNING,
						"log: %llu lines dropped", n));
	pthread_mutex_lock(&queue.lock);
}

/*
 * Writes until the ring is empty, reports drops once it is (so the count
 * comes after the lines that were kept), and sleeps.  Stops once told to
 * and nothing is left; from then on callers write themselves.
 */
static void *
log_thread_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&queue.lock);
	for (;;) {
		if (queue.used > 0)
			queue_write_oldest();
		else if (queue.dropped > 0)
			queue_report_dropped();
		else if (queue.stopping)
			break;
		else
			pthread_cond_wait(&queue.wake, &queue.lock);
	}
	queue.running = false;
	pthread_mutex_unlock(&queue.lock);
	return NULL;
}

int
log_thread_start(size_t queue_bytes)
{
	sigset_t all, old;
	char *ring;
	int err;

	if (queue_bytes < LOG_LINE_MAX) {	/* every line must fit */
		errno = EINVAL;
		return -1;
	}
	ring = malloc(queue_bytes);
	if (ring == NULL)
		return -1;
	pthread_mutex_lock(&queue.lock);
	if (queue.running || queue.ring != NULL) {
		pthread_mutex_unlock(&queue.lock);
		free(ring);
		errno = EBUSY;
		return -1;
	}
	queue.ring = ring;
	queue.cap = queue_bytes;
	queue.head = queue.used = 0;
	queue.dropped = 0;
	queue.stopping = false;
	pthread_mutex_unlock(&queue.lock);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&queue.thread, NULL, log_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&queue.lock);
	if (err == 0)
		queue.running = true;
	else
		queue.ring = NULL;
	pthread_mutex_unlock(&queue.lock);
	if (err != 0) {
		free(ring);
		errno = err;
		return -1;
	}
	return 0;
}

void
log_thread_stop(void)
{
	pthread_mutex_lock(&queue.lock);
	if (!queue.running || queue.stopping) {
		pthread_mutex_unlock(&queue.lock);
		return;
	}
	queue.stopping = true;
	pthread_cond_signal(&queue.wake);
	pthread_mutex_unlock(&queue.lock);
	pthread_join(queue.thread, NULL);

	pthread_mutex_lock(&queue.lock);
	free(queue.ring);
	queue.ring = NULL;
	queue.cap = 0;
	queue.stopping = false;
	pthread_mutex_unlock(&queue.lock);
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
