/*
 * check_log.c - the log writes one whole line per event: levels filter,
 * long messages are cut but still end in a newline, and control characters
 * from clients or files cannot forge a second line.  With the log thread
 * running, a caller never waits for stderr: a full queue drops lines and
 * counts them, lines keep their order, and a stop writes what is queued.
 * When JOURNAL_STREAM names stderr, lines start with their sd-daemon(3)
 * priority instead of the time.
 *
 * Each test points stderr at a fresh temporary file and reads it back.
 * The queue tests that need a writer stuck in write(2) point it at a pipe
 * filled to the brim instead, and read it back on a thread of their own.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static FILE *capture;
static int saved_stderr = -1;

static void
setup(void)
{
	capture = tmpfile();
	ck_assert_ptr_nonnull(capture);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fileno(capture), STDERR_FILENO), 0);
	log_set_level(LOG_LEVEL_INFO);
}

static void
teardown(void)
{
	unsetenv("JOURNAL_STREAM");
	log_detect_journal();	/* back to the plain form */
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fclose(capture);
}

/* Everything logged so far, NUL-terminated (a new string), and its size. */
static char *
logged(size_t *len)
{
	long size;
	char *text;

	ck_assert_int_eq(fseek(capture, 0, SEEK_END), 0);
	size = ftell(capture);
	ck_assert_int_ge(size, 0);
	rewind(capture);
	text = calloc(1, (size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)size, capture),
			  (size_t)size);
	*len = (size_t)size;
	return text;
}

static size_t
count_char(const char *s, size_t len, char c)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += s[i] == c;
	return n;
}

START_TEST(test_line_has_time_level_and_message)
{
	size_t len;
	char *text;

	log_info("hello %d", 42);
	text = logged(&len);
	/* 2026-11-23T10:00:00.123Z info: hello 42\n */
	ck_assert_uint_eq(len, 24 + strlen(" info: hello 42\n"));
	ck_assert_int_eq(text[4], '-');
	ck_assert_int_eq(text[10], 'T');
	ck_assert_int_eq(text[23], 'Z');
	ck_assert_str_eq(text + 24, " info: hello 42\n");
	free(text);
}
END_TEST

START_TEST(test_lines_below_the_level_are_dropped)
{
	size_t len;
	char *text;

	log_debug("not shown");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("shown");
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 1);
	ck_assert_ptr_nonnull(strstr(text, " debug: shown\n"));
	free(text);
}
END_TEST

START_TEST(test_warn_appends_the_errno_text)
{
	size_t len;
	char *text;

	errno = ENOENT;
	log_warn("open %s", "x.conf");
	text = logged(&len);
	ck_assert_ptr_nonnull(strstr(text, " warning: open x.conf: No such "
				     "file or directory\n"));
	free(text);
}
END_TEST

START_TEST(test_control_characters_cannot_forge_a_line)
{
	size_t len;
	char *text;

	log_warnx("GET /a\n2026-11-23T10:00:00.000Z info: forged\r\x7f\tend");
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 1);
	ck_assert_int_eq(text[len - 1], '\n');
	ck_assert_ptr_nonnull(strstr(text, "GET /a?2026-11-23T10:00:00.000Z "
				     "info: forged??\tend\n"));
	free(text);
}
END_TEST

START_TEST(test_long_message_is_cut_to_one_line_without_nul)
{
	static char big[5000];
	size_t len;
	char *text;

	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
	errno = EINVAL;
	log_warn("%s", big);
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), 2);
	ck_assert_int_eq(text[len - 1], '\n');
	/* Before the fix the cut line ended in "x\0\n". */
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_uint_le(len, 2 * 2048);
	free(text);
}
END_TEST

START_TEST(test_format_time_is_rfc3339_utc_with_milliseconds)
{
	struct timespec ts = { 1795428000, 123999999 };	/* +0.123999999 s */
	char buf[LOG_TIME_MAX];

	ck_assert_uint_eq(log_format_time(buf, sizeof(buf), &ts), 24);
	ck_assert_str_eq(buf, "2026-11-23T10:00:00.123Z");
	ts.tv_nsec = 0;
	log_format_time(buf, sizeof(buf), &ts);
	ck_assert_str_eq(buf, "2026-11-23T10:00:00.000Z");
}
END_TEST

/* ---- the log thread's queue ---------------------------------------- */

/*
 * stderr as a pipe that is full, so that the log thread blocks in its
 * first write, and a thread that reads it all back once started.
 */
struct stalled_pipe {
	int read_fd;
	size_t filler;		/* bytes put in to fill it, before any line */
	pthread_t reader;
	char *text;		/* what the reader got, NUL-terminated */
	size_t len;
};

static void
stall_stderr(struct stalled_pipe *sp)
{
	static const char block[4096];
	int fds[2], flags;
	ssize_t n;

	memset(sp, 0, sizeof(*sp));
	ck_assert_int_eq(pipe(fds), 0);
	flags = fcntl(fds[1], F_GETFL);
	ck_assert_int_eq(fcntl(fds[1], F_SETFL, flags | O_NONBLOCK), 0);
	while ((n = write(fds[1], block, sizeof(block))) > 0)
		sp->filler += (size_t)n;
	while ((n = write(fds[1], block, 1)) > 0)	/* the last page */
		sp->filler += (size_t)n;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(fcntl(fds[1], F_SETFL, flags), 0);
	ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
	close(fds[1]);		/* stderr is now its only write end */
	sp->read_fd = fds[0];
}

static void *
read_all(void *arg)
{
	struct stalled_pipe *sp = arg;
	size_t cap = 1 << 16;
	ssize_t n;

	sp->text = malloc(cap + 1);
	for (;;) {
		if (sp->len == cap)
			sp->text = realloc(sp->text, (cap *= 2) + 1);
		n = read(sp->read_fd, sp->text + sp->len, cap - sp->len);
		if (n <= 0)
			break;
		sp->len += (size_t)n;
	}
	sp->text[sp->len] = '\0';
	return NULL;
}

static void
start_reading(struct stalled_pipe *sp)
{
	ck_assert_int_eq(pthread_create(&sp->reader, NULL, read_all, sp), 0);
}

/*
 * Gives stderr back to the capture file, which closes the pipe's last
 * write end, and waits for the reader to see its end.  Returns the lines
 * that came after the filler (borrowed from sp).
 */
static const char *
finish_reading(struct stalled_pipe *sp)
{
	ck_assert_int_ge(dup2(fileno(capture), STDERR_FILENO), 0);
	pthread_join(sp->reader, NULL);
	close(sp->read_fd);
	ck_assert_ptr_nonnull(sp->text);
	ck_assert_uint_ge(sp->len, sp->filler);
	return sp->text + sp->filler;
}

/* Each line without its 24-character time stamp: "info: line 000\n...". */
static char *
strip_times(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;
	const char *nl;

	ck_assert_ptr_nonnull(out);
	while (*text != '\0') {
		nl = strchr(text, '\n');
		ck_assert_ptr_nonnull(nl);
		ck_assert_uint_gt((size_t)(nl - text), 25);
		ck_assert_int_eq(text[23], 'Z');
		memcpy(o, text + 25, (size_t)(nl + 1 - (text + 25)));
		o += nl + 1 - (text + 25);
		text = nl + 1;
	}
	return out;
}

/* "info: line 000\n" ... for lines first..last-1, a new string. */
static char *
expected_lines(int first, int last)
{
	char *out = calloc(1, (size_t)(last - first) * 16 + 1), *o = out;
	int i;

	for (i = first; i < last; i++)
		o += sprintf(o, "info: line %03d\n", i);
	return out;
}

/* Every line below is this long: "2026-11-23T10:00:00.123Z info: line 000\n" */
#define LINE_LEN (24 + strlen(" info: line 000\n"))

START_TEST(test_full_queue_drops_lines_and_reports_the_count)
{
	struct stalled_pipe sp;
	char *got, *want;
	int i;

	stall_stderr(&sp);
	/* Room for exactly 100 lines, the writer stuck on the full pipe. */
	ck_assert_int_eq(log_thread_start(100 * LINE_LEN), 0);
	for (i = 0; i < 150; i++)
		log_info("line %03d", i);
	start_reading(&sp);
	log_thread_stop();
	got = strip_times(finish_reading(&sp));
	want = expected_lines(0, 100);
	want = realloc(want, strlen(want) + 64);
	strcat(want, "warning: log: 50 lines dropped\n");
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	free(sp.text);
}
END_TEST

START_TEST(test_stop_writes_what_is_queued_then_logs_synchronously)
{
	struct stalled_pipe sp;
	char *got, *want;
	int i;

	stall_stderr(&sp);
	ck_assert_int_eq(log_thread_start(LOG_QUEUE_BYTES), 0);
	for (i = 0; i < 100; i++)
		log_info("line %03d", i);
	start_reading(&sp);
	/* The writer is still stuck: stop must wait for it, not drop. */
	log_thread_stop();
	log_info("line %03d", 100);	/* after the thread: written here */
	got = strip_times(finish_reading(&sp));
	want = expected_lines(0, 101);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	free(sp.text);
}
END_TEST

#define WRITERS 4
#define LINES_EACH 2000

static void *
log_lines(void *arg)
{
	int t = (int)(long)arg, i;

	for (i = 0; i < LINES_EACH; i++)
		log_info("writer %d line %04d", t, i);
	return NULL;
}

START_TEST(test_lines_from_many_threads_come_out_whole_and_in_order)
{
	pthread_t threads[WRITERS];
	int next[WRITERS] = { 0 }, t, i, n;
	size_t len;
	char *text, *line, *save = NULL;

	/* Room for every line: however late the writer runs, none drops. */
	ck_assert_int_eq(log_thread_start(WRITERS * LINES_EACH * 64), 0);
	for (t = 0; t < WRITERS; t++)
		ck_assert_int_eq(pthread_create(&threads[t], NULL, log_lines,
						(void *)(long)t), 0);
	for (t = 0; t < WRITERS; t++)
		pthread_join(threads[t], NULL);
	log_thread_stop();
	text = logged(&len);
	ck_assert_uint_eq(count_char(text, len, '\n'), WRITERS * LINES_EACH);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		ck_assert_int_eq(sscanf(line + 24, " info: writer %d line "
					"%d%n", &t, &i, &n), 2);
		ck_assert_uint_eq(strlen(line), 24 + (size_t)n);
		ck_assert_int_eq(i, next[t]++);	/* each writer's order */
	}
	for (t = 0; t < WRITERS; t++)
		ck_assert_int_eq(next[t], LINES_EACH);
	free(text);
}
END_TEST

START_TEST(test_start_refuses_a_tiny_queue_and_a_second_thread)
{
	errno = 0;
	ck_assert_int_eq(log_thread_start(100), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(log_thread_start(LOG_QUEUE_BYTES), 0);
	ck_assert_int_eq(log_thread_start(LOG_QUEUE_BYTES), -1);
	ck_assert_int_eq(errno, EBUSY);
	log_thread_stop();
	log_thread_stop();	/* nothing left to stop: a no-op */
	ck_assert_int_eq(log_thread_start(LOG_QUEUE_BYTES), 0);
	log_thread_stop();
}
END_TEST


/* Points JOURNAL_STREAM at fd's device and inode, plus ino_delta. */
static void
set_journal_stream(int fd, unsigned long long ino_delta)
{
	struct stat st;
	char value[64];

	ck_assert_int_eq(fstat(fd, &st), 0);
	snprintf(value, sizeof(value), "%llu:%llu",
		 (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + ino_delta);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", value, 1), 0);
}

START_TEST(test_journal_lines_carry_the_priority_and_no_time)
{
	size_t len;
	char *text;

	set_journal_stream(STDERR_FILENO, 0);
	ck_assert(log_detect_journal());
	log_set_level(LOG_LEVEL_DEBUG);
	log_error("e %d", 1);
	errno = ENOENT;
	log_warn("w");
	log_warnx("x\ny");
	log_info("i");
	log_debug("d");
	text = logged(&len);
	/* sd-daemon(3): <3> error, <4> warning, <6> info, <7> debug. */
	ck_assert_str_eq(text, "<3>error: e 1\n"
			 "<4>warning: w: No such file or directory\n"
			 "<4>warning: x?y\n"
			 "<6>info: i\n"
			 "<7>debug: d\n");
	free(text);
}
END_TEST

START_TEST(test_journal_form_holds_for_queued_lines)
{
	size_t len;
	char *text;

	set_journal_stream(STDERR_FILENO, 0);
	ck_assert(log_detect_journal());
	ck_assert_int_eq(log_thread_start(LOG_QUEUE_BYTES), 0);
	log_info("queued");
	log_thread_stop();
	text = logged(&len);
	ck_assert_str_eq(text, "<6>info: queued\n");
	free(text);
}
END_TEST

START_TEST(test_other_journal_streams_keep_the_plain_form)
{
	static const char *const bad[] = {
		"", "12", "12:", ":34", "x:1", "1:2x", "1:2:3", "-1:2",
		"99999999999999999999999:1",
	};
	size_t len, i;
	char *text;

	set_journal_stream(STDERR_FILENO, 1);	/* another file */
	ck_assert(!log_detect_journal());
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(setenv("JOURNAL_STREAM", bad[i], 1), 0);
		ck_assert_msg(!log_detect_journal(), "JOURNAL_STREAM=%s",
			      bad[i]);
	}
	/* Once the journal form is on, a later check can turn it off. */
	set_journal_stream(STDERR_FILENO, 0);
	ck_assert(log_detect_journal());
	ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
	ck_assert(!log_detect_journal());
	log_info("plain");
	text = logged(&len);
	ck_assert_int_eq(text[23], 'Z');
	ck_assert_str_eq(text + 24, " info: plain\n");
	free(text);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("lines");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_line_has_time_level_and_message);
	tcase_add_test(tc, test_lines_below_the_level_are_dropped);
	tcase_add_test(tc, test_warn_appends_the_errno_text);
	tcase_add_test(tc, test_control_characters_cannot_forge_a_line);
	tcase_add_test(tc, test_long_message_is_cut_to_one_line_without_nul);
	tcase_add_test(tc, test_format_time_is_rfc3339_utc_with_milliseconds);
	suite_add_tcase(s, tc);

	tc = tcase_create("queue");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_queue_drops_lines_and_reports_the_count);
	tcase_add_test(tc, test_stop_writes_what_is_queued_then_logs_synchronously);
	tcase_add_test(tc, test_lines_from_many_threads_come_out_whole_and_in_order);
	tcase_add_test(tc, test_start_refuses_a_tiny_queue_and_a_second_thread);
	suite_add_tcase(s, tc);

	tc = tcase_create("journal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_journal_lines_carry_the_priority_and_no_time);
	tcase_add_test(tc, test_journal_form_holds_for_queued_lines);
	tcase_add_test(tc, test_other_journal_streams_keep_the_plain_form);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
