/*
 * check_config.c - the configuration file: what config_load() accepts, what
 * it refuses (with the line and the reason), and the value parsers.
 *
 * Every refusal names the line at fault: the line of the bad key, of the
 * section header for what is wrong with a whole section, and 0 for what is
 * not tied to a line.  Each test writes its file into a fresh temporary
 * directory; the sanitizer build checks that a refused file leaves nothing
 * allocated.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "kinds/kinds.h"
#include "params.h"
#include "kinds/sleep.h"
#include "store/store.h"

#ifndef TEST_SRCDIR
#error "TEST_SRCDIR must name the source tree (see Makefile.am)"
#endif

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)

/* What kind sleep read from a job's section. */
static const struct sleep_def *
sleep_of(const struct job_def *d)
{
	return d->kind_data;
}

/* ---- fixtures and helpers ------------------------------------------------ */

#define MAX_FILES 4

static char tmpdir[PATH_MAX / 2];
static char written[MAX_FILES][PATH_MAX];
static int nwritten;

static void
setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_config.XXXXXX",
		 base != NULL && *base != '\0' ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	nwritten = 0;
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < nwritten; i++)
		unlink(written[i]);
	rmdir(tmpdir);
}

/*
 * Writes len bytes of text to tmpdir/name (so that a test can put a NUL in
 * a file); returns the path (valid until teardown).
 */
static const char *
write_bytes(const char *name, const char *text, size_t len)
{
	char *path;
	FILE *fp;

	ck_assert_int_lt(nwritten, MAX_FILES);
	path = written[nwritten++];
	ck_assert_int_lt(snprintf(path, PATH_MAX, "%s/%s", tmpdir, name),
			 PATH_MAX);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

static const char *
write_file(const char *name, const char *text)
{
	return write_bytes(name, text, strlen(text));
}

/* Loads text as a config file; fails the test if it is refused. */
static struct config *
load_ok(const char *text)
{
	struct config_error err;
	struct config *c = config_load(write_file("ok.conf", text), &err);

	ck_assert_msg(c != NULL, "refused: line %d: %s", err.line, err.text);
	return c;
}

/*
 * Loads text as a config file and expects a refusal, which it leaves in err.
 * Fails the test (without leaking) if the file is accepted.
 */
static void
load_refused(const char *text, struct config_error *err)
{
	const char *path = write_file("bad.conf", text);
	struct config *c = config_load(path, err);

	if (c != NULL) {
		config_unref(c);
		ck_abort_msg("accepted: %s", text);
	}
	ck_assert_str_eq(err->file, path);
}

/* The reason must contain `part`; the whole reason is shown if not. */
#define ck_assert_reason(err, part)					\
	ck_assert_msg(strstr((err).text, (part)) != NULL,		\
		      "reason \"%s\" lacks \"%s\"", (err).text, (part))

/* A string of n copies of c; the caller frees it. */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- the shipped config -------------------------------------------------- */

#define SHIPPED TEST_BUILDDIR "/etc/taskpoold.conf"

START_TEST(test_shipped_config_loads)
{
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);

	ck_assert_msg(c != NULL, "%s:%d: %s", err.file, err.line, err.text);
	ck_assert_str_eq(c->path, SHIPPED);
	config_unref(c);
}
END_TEST

START_TEST(test_shipped_config_has_documented_server_pool_registry_log)
{
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);

	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->server.listen, "127.0.0.1:8080");
	ck_assert_uint_eq(c->server.threads, 2);
	ck_assert_uint_eq(c->server.max_connections, 0);
	ck_assert_uint_eq(c->server.max_connections_per_ip, 0);
	ck_assert_int_eq(c->server.header_timeout_ns, 30 * NS_PER_S);
	ck_assert_int_eq(c->server.body_timeout_ns, 60 * NS_PER_S);
	ck_assert_uint_eq(c->server.connection_memory, 16 * 1024);
	ck_assert_uint_eq(c->server.connection_timeout_s, 30);
	ck_assert_int_eq(c->server.drain_timeout_ns, 10 * NS_PER_S);
	ck_assert_uint_eq(c->pool.workers, 4);
	ck_assert_uint_eq(c->pool.queue, 4096);
	ck_assert_uint_eq(c->registry.max_jobs, 100000);
	ck_assert_int_eq(c->registry.retain_ns, 600 * NS_PER_S);
	ck_assert_int_eq(c->log.level, LOG_LEVEL_INFO);
	ck_assert(c->log.jobs);
	ck_assert(!c->log.access_log);
	config_unref(c);
}
END_TEST

START_TEST(test_shipped_config_defines_the_five_seed_jobs)
{
	static const struct {
		const char *name;
		int64_t duration_ns;
		const char *result;
	} want[] = {
		{ "task1", 1 * NS_PER_S, "Task 1 done" },
		{ "task2", 2 * NS_PER_S, "Task 2 done" },
		{ "first", 1 * NS_PER_S, "First result" },
		{ "second", 5 * NS_PER_S, "Second result" },
		{ "third", 3 * NS_PER_S, "Third result" },
	};
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	size_t i;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_ge(c->njobs, 5);
	for (i = 0; i < 5; i++) {
		const struct job_def *d = &c->jobs[i];

		ck_assert_str_eq(d->name, want[i].name);
		ck_assert_ptr_eq(d->kind, &job_kind_sleep);
		ck_assert_int_eq(sleep_of(d)->duration_ns, want[i].duration_ns);
		ck_assert_str_eq(sleep_of(d)->result, want[i].result);
		ck_assert_int_eq(d->timeout_ns, 60 * NS_PER_S);
		ck_assert_ptr_eq(config_find_job(c, want[i].name), d);
	}
	config_unref(c);
}
END_TEST

START_TEST(test_shipped_config_routes_tasks_gathers_task1_and_task2)
{
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	const struct route *r;

	ck_assert_ptr_nonnull(c);
	r = config_find_route(c, "/tasks");
	ck_assert_ptr_eq(r, &c->routes[0]);
	ck_assert_str_eq(r->path, "/tasks");
	ck_assert_str_eq(r->method, "GET");
	ck_assert_int_eq(r->wait, RUN_WAIT_ALL);
	ck_assert_int_eq(r->timeout_ns, 30 * NS_PER_S);
	ck_assert_uint_eq(r->njobs, 2);
	ck_assert_ptr_eq(r->jobs[0], config_find_job(c, "task1"));
	ck_assert_ptr_eq(r->jobs[1], config_find_job(c, "task2"));
	config_unref(c);
}
END_TEST

START_TEST(test_shipped_config_routes_run_tasks_waits_for_first)
{
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	const struct route *r;

	ck_assert_ptr_nonnull(c);
	r = config_find_route(c, "/run-tasks");
	ck_assert_ptr_eq(r, &c->routes[1]);
	ck_assert_str_eq(r->method, "GET");
	ck_assert_int_eq(r->wait, RUN_WAIT_FIRST);
	ck_assert_int_eq(r->timeout_ns, 30 * NS_PER_S);
	ck_assert_uint_eq(r->njobs, 3);
	ck_assert_ptr_eq(r->jobs[0], config_find_job(c, "first"));
	ck_assert_ptr_eq(r->jobs[1], config_find_job(c, "second"));
	ck_assert_ptr_eq(r->jobs[2], config_find_job(c, "third"));
	config_unref(c);
}
END_TEST

/*
 * After the seed's: one job of each other kind, each behind a route (but
 * http in a build without libcurl, which refuses http jobs).
 */
START_TEST(test_shipped_config_shows_a_job_of_each_kind_behind_a_route)
{
	static const struct {
		const char *job, *kind, *route, *param;
	} want[] = {
		{ "greet", "exec", "/greet/{name}", "name" },
#ifdef HAVE_LIBCURL
		{ "upstream", "http", "/upstream", NULL },
#endif
		{ "primes", "plugin", "/primes", "n" },
	};
	const size_t n = sizeof(want) / sizeof(want[0]);
	struct config_error err;
	struct config *c = config_load(SHIPPED, &err);
	const struct job_def *d;
	const struct route *r;
	size_t i;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->njobs, 5 + n);
	ck_assert_uint_eq(c->nroutes, 2 + n);
	for (i = 0; i < n; i++) {
		d = &c->jobs[5 + i];
		r = &c->routes[2 + i];
		ck_assert_str_eq(d->name, want[i].job);
		ck_assert_ptr_eq(d->kind, job_kind_find(want[i].kind));
		ck_assert_str_eq(r->path, want[i].route);
		ck_assert_uint_eq(r->njobs, 1);
		ck_assert_ptr_eq(r->jobs[0], d);
		if (want[i].param != NULL)
			ck_assert_ptr_nonnull(config_job_param(d, want[i].param));
	}
	config_unref(c);
}
END_TEST

/* ---- what loads ---------------------------------------------------------- */

START_TEST(test_empty_file_takes_every_default)
{
	struct config *c = load_ok("");
	char host[256];
	const char *instance = "taskpoold";

	/* The instance defaults to the host name when that is a valid name. */
	if (gethostname(host, sizeof(host)) == 0) {
		size_t i, n;

		host[sizeof(host) - 1] = '\0';
		n = strlen(host);
		for (i = 0; i < n; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
				    host[i]))
				break;
		if (n > 0 && n <= CONFIG_NAME_MAX && i == n)
			instance = host;
	}
	ck_assert_str_eq(c->server.listen, "127.0.0.1:8080");
	ck_assert_str_eq(c->server.instance, instance);
	ck_assert_uint_eq(c->server.threads, 2);
	ck_assert_uint_eq(c->server.max_connections, 0);
	ck_assert_uint_eq(c->server.max_connections_per_ip, 0);
	ck_assert_int_eq(c->server.header_timeout_ns, 30 * NS_PER_S);
	ck_assert_int_eq(c->server.body_timeout_ns, 60 * NS_PER_S);
	ck_assert_uint_eq(c->server.connection_memory, 16 * 1024);
	ck_assert_uint_eq(c->server.connection_timeout_s, 30);
	ck_assert_int_eq(c->server.drain_timeout_ns, 10 * NS_PER_S);
	ck_assert_uint_eq(c->server.max_body, 64 * 1024);
	ck_assert_uint_eq(c->server.max_run_jobs, 16);
	ck_assert_uint_eq(c->pool.workers, 4);
	ck_assert_uint_eq(c->pool.queue, 4096);
	ck_assert_uint_eq(c->registry.max_jobs, 100000);
	ck_assert_int_eq(c->registry.retain_ns, 600 * NS_PER_S);
	ck_assert_uint_eq(c->registry.max_runs, 10000);
	ck_assert_int_eq(c->log.level, LOG_LEVEL_INFO);
	ck_assert(c->log.jobs);
	ck_assert(!c->log.access_log);
	ck_assert_uint_eq(c->njobs, 0);
	ck_assert_uint_eq(c->nroutes, 0);
	config_unref(c);
}
END_TEST

START_TEST(test_every_fixed_key_is_read)
{
	struct config *c = load_ok(
		"[server]\n"
		"listen = [::1]:9090\n"
		"instance = node-1.a_b\n"
		"threads = 256\n"
		"max_connections = 1000000\n"
		"max_connections_per_ip = 1000000\n"
		"header_timeout = 100ms\n"
		"body_timeout = 0\n"
		"connection_memory = 1M\n"
		"connection_timeout = 1h\n"
		"drain_timeout = 0\n"
		"max_body = 16M\n"
		"max_run_jobs = 64\n"
		"[pool]\n"
		"workers = 1024\n"
		"queue = 1000000\n"
		"[registry]\n"
		"max_jobs = 16\n"
		"retain = 1.5s\n"
		"max_runs = 16\n"
		"[log]\n"
		"level = debug\n"
		"jobs = no\n"
		"access_log = yes\n");

	ck_assert_str_eq(c->server.listen, "[::1]:9090");
	ck_assert_str_eq(c->server.instance, "node-1.a_b");
	ck_assert_uint_eq(c->server.threads, 256);
	ck_assert_uint_eq(c->server.max_connections, 1000000);
	ck_assert_uint_eq(c->server.max_connections_per_ip, 1000000);
	ck_assert_int_eq(c->server.header_timeout_ns, 100 * NS_PER_MS);
	ck_assert_int_eq(c->server.body_timeout_ns, 0);
	ck_assert_uint_eq(c->server.connection_memory, 1024 * 1024);
	ck_assert_uint_eq(c->server.connection_timeout_s, 3600);
	ck_assert_int_eq(c->server.drain_timeout_ns, 0);
	ck_assert_uint_eq(c->pool.workers, 1024);
	ck_assert_uint_eq(c->pool.queue, 1000000);
	ck_assert_uint_eq(c->registry.max_jobs, 16);
	ck_assert_int_eq(c->registry.retain_ns, 1500 * NS_PER_MS);
	ck_assert_uint_eq(c->server.max_body, 16 * 1024 * 1024);
	ck_assert_uint_eq(c->server.max_run_jobs, 64);
	ck_assert_uint_eq(c->registry.max_runs, 16);
	ck_assert_int_eq(c->log.level, LOG_LEVEL_DEBUG);
	ck_assert(!c->log.jobs);
	ck_assert(c->log.access_log);
	config_unref(c);
}
END_TEST

START_TEST(test_connection_timeout_rounds_up_to_whole_seconds)
{
	struct config *c = load_ok("[server]\nconnection_timeout = 1001ms\n");

	ck_assert_uint_eq(c->server.connection_timeout_s, 2);
	config_unref(c);
}
END_TEST

START_TEST(test_job_and_route_defaults)
{
	struct config *c = load_ok("[job j]\nkind = sleep\n"
				   "[route /r]\njobs = j\n");
	const struct job_def *j = config_find_job(c, "j");
	const struct route *r = config_find_route(c, "/r");

	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->line, 1);
	ck_assert_int_eq(j->timeout_ns, 60 * NS_PER_S);
	ck_assert_int_eq(sleep_of(j)->duration_ns, 0);
	ck_assert_str_eq(sleep_of(j)->result, "");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->line, 3);
	ck_assert_str_eq(r->method, "GET");
	ck_assert_int_eq(r->wait, RUN_WAIT_ALL);
	ck_assert_int_eq(r->timeout_ns, 30 * NS_PER_S);
	ck_assert_int_eq(r->losers, ROUTE_LOSERS_DETACH);
	config_unref(c);
}
END_TEST

START_TEST(test_route_keys_are_read)
{
	struct config *c = load_ok(
		"[job a]\nkind = sleep\n"
		"[route /post]\nmethod = POST\njobs = a\nwait = none\n"
		"timeout = 1ms\n"
		"[route /any]\nmethod = DELETE\njobs = a\nwait = any\n"
		"timeout = 1h\nlosers = cancel\n");
	const struct route *post = config_find_route(c, "/post");
	const struct route *any = config_find_route(c, "/any");

	ck_assert_str_eq(post->method, "POST");
	ck_assert_int_eq(post->wait, RUN_WAIT_NONE);
	ck_assert_int_eq(post->timeout_ns, NS_PER_MS);
	ck_assert_str_eq(any->method, "DELETE");
	ck_assert_int_eq(any->wait, RUN_WAIT_ANY);
	ck_assert_int_eq(any->timeout_ns, 3600 * NS_PER_S);
	ck_assert_int_eq(any->losers, ROUTE_LOSERS_CANCEL);
	ck_assert_int_eq(post->losers, ROUTE_LOSERS_DETACH);
	config_unref(c);
}
END_TEST

START_TEST(test_route_may_name_jobs_defined_after_it)
{
	struct config *c = load_ok(
		"[route /later]\njobs = b a\n"
		"[job a]\nkind = sleep\nresult = A\n"
		"[job b]\nkind = sleep\nresult = B\n");
	const struct route *r = config_find_route(c, "/later");

	ck_assert_uint_eq(r->njobs, 2);
	ck_assert_str_eq(r->jobs[0]->name, "b");
	ck_assert_str_eq(sleep_of(r->jobs[0])->result, "B");
	ck_assert_str_eq(r->jobs[1]->name, "a");
	ck_assert_ptr_eq(r->jobs[1], &c->jobs[0]);
	config_unref(c);
}
END_TEST

START_TEST(test_route_job_list_splits_on_spaces_tabs_and_commas)
{
	struct config *c = load_ok(
		"[job a]\nkind = sleep\n[job b]\nkind = sleep\n"
		"[job c]\nkind = sleep\n"
		"[route /r]\njobs = a,b\tc , a\n");
	const struct route *r = config_find_route(c, "/r");

	ck_assert_uint_eq(r->njobs, 4);
	ck_assert_str_eq(r->jobs[0]->name, "a");
	ck_assert_str_eq(r->jobs[1]->name, "b");
	ck_assert_str_eq(r->jobs[2]->name, "c");
	ck_assert_str_eq(r->jobs[3]->name, "a");
	config_unref(c);
}
END_TEST

START_TEST(test_route_may_list_64_jobs)
{
	char line[256] = "jobs =";
	struct config *c;
	char text[512];
	int i;

	for (i = 0; i < CONFIG_ROUTE_JOBS_MAX; i++)
		strcat(line, " a");
	snprintf(text, sizeof(text), "[job a]\nkind = sleep\n[route /r]\n%s\n",
		 line);
	c = load_ok(text);
	ck_assert_uint_eq(config_find_route(c, "/r")->njobs,
			  CONFIG_ROUTE_JOBS_MAX);
	config_unref(c);
}
END_TEST

START_TEST(test_sleep_job_keys_are_read_in_any_order)
{
	struct config *c = load_ok("[job j]\nresult = done\nduration = 2.5s\n"
				   "timeout = 3s\nkind = sleep\n");
	const struct job_def *j = config_find_job(c, "j");

	ck_assert_ptr_eq(j->kind, &job_kind_sleep);
	ck_assert_int_eq(sleep_of(j)->duration_ns, 2500 * NS_PER_MS);
	ck_assert_int_eq(j->timeout_ns, 3 * NS_PER_S);
	ck_assert_str_eq(sleep_of(j)->result, "done");
	config_unref(c);
}
END_TEST

START_TEST(test_job_timeout_of_7_days_is_accepted)
{
	struct config *c = load_ok("[job j]\nkind = sleep\ntimeout = 7d\n");

	ck_assert_int_eq(config_find_job(c, "j")->timeout_ns,
			 7 * 24 * 3600 * NS_PER_S);
	config_unref(c);
}
END_TEST

START_TEST(test_sleep_duration_equal_to_timeout_is_accepted)
{
	struct config *c = load_ok("[job j]\nkind = sleep\nduration = 60s\n");

	ck_assert_int_eq(sleep_of(config_find_job(c, "j"))->duration_ns,
			 60 * NS_PER_S);
	config_unref(c);
}
END_TEST

START_TEST(test_comment_lines_and_inline_semicolon_comments_are_ignored)
{
	struct config *c = load_ok(
		"# a comment\n"
		"; another\n"
		"   # an indented one\n"
		"[pool] ; the pool\n"
		"workers = 7 ; seven\n"
		"\n"
		"[job j]\n"
		"kind = sleep\n"
		"result = a;b # c ; d\n");

	ck_assert_uint_eq(c->pool.workers, 7);
	/* ';' starts a comment only after whitespace; '#' only at the start. */
	ck_assert_str_eq(sleep_of(config_find_job(c, "j"))->result, "a;b # c");
	config_unref(c);
}
END_TEST

START_TEST(test_same_key_in_different_sections_is_accepted)
{
	struct config *c = load_ok("[log]\njobs = no\n"
				   "[job a]\nkind = sleep\ntimeout = 5s\n"
				   "[route /r]\njobs = a\ntimeout = 5s\n");

	ck_assert(!c->log.jobs);
	ck_assert_int_eq(config_find_job(c, "a")->timeout_ns, 5 * NS_PER_S);
	ck_assert_int_eq(config_find_route(c, "/r")->timeout_ns, 5 * NS_PER_S);
	config_unref(c);
}
END_TEST

START_TEST(test_route_paths_next_to_reserved_ones_are_accepted)
{
	struct config *c = load_ok("[job a]\nkind = sleep\n"
				   "[route /jobsearch]\njobs = a\n"
				   "[route /healthz2]\njobs = a\n"
				   "[route /]\njobs = a\n"
				   "[route /a/b.c/~d_e-f]\njobs = a\n");

	ck_assert_uint_eq(c->nroutes, 4);
	ck_assert_ptr_nonnull(config_find_route(c, "/jobsearch"));
	ck_assert_ptr_nonnull(config_find_route(c, "/healthz2"));
	ck_assert_ptr_nonnull(config_find_route(c, "/"));
	ck_assert_ptr_nonnull(config_find_route(c, "/a/b.c/~d_e-f"));
	config_unref(c);
}
END_TEST

START_TEST(test_job_name_of_64_characters_is_accepted)
{
	char *name = repeat('n', CONFIG_NAME_MAX);
	char text[256];
	struct config *c;

	snprintf(text, sizeof(text), "[job %s]\nkind = sleep\n", name);
	c = load_ok(text);
	ck_assert_ptr_nonnull(config_find_job(c, name));
	config_unref(c);
	free(name);
}
END_TEST

START_TEST(test_line_of_198_characters_is_accepted)
{
	char *result = repeat('r', 198 - strlen("result = "));
	char text[512];
	struct config *c;

	snprintf(text, sizeof(text), "[job j]\nkind = sleep\nresult = %s\n",
		 result);
	c = load_ok(text);
	ck_assert_str_eq(sleep_of(config_find_job(c, "j"))->result, result);
	config_unref(c);
	free(result);
}
END_TEST

START_TEST(test_utf8_byte_order_mark_is_skipped)
{
	struct config *c = load_ok("\xEF\xBB\xBF[pool]\nworkers = 3\n");

	ck_assert_uint_eq(c->pool.workers, 3);
	config_unref(c);
}
END_TEST

START_TEST(test_section_header_may_end_in_blanks_and_a_comment)
{
	struct config *c = load_ok("[server]  \t\nthreads = 3\n"
				   "[pool]\t; the pool\nworkers = 5\n");

	ck_assert_uint_eq(c->server.threads, 3);
	ck_assert_uint_eq(c->pool.workers, 5);
	config_unref(c);
}
END_TEST

/*
 * inih reads an indented line as a continuation only when a key came before
 * it in the section; an indented first key or header, an indented comment
 * and a blank line are what they look like.
 */
START_TEST(test_indented_lines_that_continue_nothing_are_accepted)
{
	struct config *c = load_ok("[log]\n"
				   "  [pool]\n"
				   "  workers = 2\n"
				   "   ; a note\n"
				   " \t \n"
				   "queue = 9\n"
				   "[server]\n"
				   "\tthreads = 3\n");

	ck_assert_uint_eq(c->pool.workers, 2);
	ck_assert_uint_eq(c->pool.queue, 9);
	ck_assert_uint_eq(c->server.threads, 3);
	config_unref(c);
}
END_TEST

START_TEST(test_utf8_result_with_a_tab_is_kept_byte_for_byte)
{
	/* U+00E9, U+00F6, U+20AC, U+1D11E, U+10FFFF, U+FFFD and a tab. */
	const char *result = "h\xc3\xa9llo\tw\xc3\xb6rld \xe2\x82\xac "
			     "\xf0\x9d\x84\x9e \xf4\x8f\xbf\xbf \xef\xbf\xbd";
	char text[256];
	struct config *c;

	snprintf(text, sizeof(text), "[job j]\nkind = sleep\nresult = %s\n",
		 result);
	c = load_ok(text);
	ck_assert_str_eq(sleep_of(config_find_job(c, "j"))->result, result);
	config_unref(c);
}
END_TEST

/* 0.123456d once overflowed into a negative duration that passed. */
START_TEST(test_durations_in_fractions_of_a_day_are_exact)
{
	struct config *c = load_ok("[server]\ndrain_timeout = 0.0123456d\n"
				   "[registry]\nretain = 0.123456d\n"
				   "[job j]\nkind = sleep\n"
				   "duration = 0.123456d\ntimeout = 1.123456d\n");
	const struct job_def *j = config_find_job(c, "j");

	ck_assert_int_eq(c->server.drain_timeout_ns, INT64_C(1066659840000));
	ck_assert_int_eq(c->registry.retain_ns, INT64_C(10666598400000));
	ck_assert_int_eq(sleep_of(j)->duration_ns, INT64_C(10666598400000));
	ck_assert_int_eq(j->timeout_ns, INT64_C(97066598400000));
	config_unref(c);
}
END_TEST

START_TEST(test_lookups_of_unknown_names_return_null)
{
	struct config *c = load_ok("[job a]\nkind = sleep\n"
				   "[route /a]\njobs = a\n");

	ck_assert_ptr_null(config_find_job(c, "b"));
	ck_assert_ptr_null(config_find_job(c, "A"));
	ck_assert_ptr_null(config_find_route(c, "/b"));
	ck_assert_ptr_null(config_find_route(c, "/a/"));
	config_unref(c);
}
END_TEST

/* ---- refcount ------------------------------------------------------------ */

START_TEST(test_ref_returns_the_same_config_and_keeps_it_alive)
{
	struct config *c = load_ok("[pool]\nworkers = 9\n");

	ck_assert_ptr_eq(config_ref(c), c);
	config_unref(c);
	/* Still held by the second reference: ASan would flag a free. */
	ck_assert_uint_eq(c->pool.workers, 9);
	ck_assert_str_eq(c->server.listen, "127.0.0.1:8080");
	config_unref(c);
}
END_TEST

START_TEST(test_unref_of_null_does_nothing)
{
	config_unref(NULL);
}
END_TEST

/* ---- [store] -------------------------------------------------------------- */

START_TEST(test_store_defaults_to_memory_with_its_defaults)
{
	struct config *c = load_ok("[server]\nthreads = 2\n");

	ck_assert_int_eq(c->store.backend, STORE_MEMORY);
	ck_assert_str_eq(c->store.path, "/var/lib/taskpoold/taskpoold.db");
	ck_assert_ptr_null(c->store.url);
	ck_assert_int_eq(c->store.lease_ns, 30 * NS_PER_S);
	ck_assert_uint_eq(c->store.max_attempts, 3);
	config_unref(c);
}
END_TEST

START_TEST(test_store_keys_are_read)
{
	struct config *c;

	c = load_ok("[store]\nbackend = sqlite\npath = /srv/t.db\n");
	ck_assert_int_eq(c->store.backend, STORE_SQLITE);
	ck_assert_str_eq(c->store.path, "/srv/t.db");
	config_unref(c);
	c = load_ok("[store]\nbackend = postgresql\nurl = host=db "
		    "dbname=t\nlease = 1.5s\nmax_attempts = 1000\n");
	ck_assert_int_eq(c->store.backend, STORE_POSTGRESQL);
	ck_assert_str_eq(c->store.url, "host=db dbname=t");
	ck_assert_int_eq(c->store.lease_ns, 1500 * NS_PER_MS);
	ck_assert_uint_eq(c->store.max_attempts, 1000);
	config_unref(c);
}
END_TEST

static const struct {
	const char *text;
	int line;
	const char *reason;
} bad_store[] = {
	{ "[store]\nbackend = sqlite3\n", 2, "bad value 'sqlite3' for "
	  "backend (expected memory, sqlite or postgresql)" },
	{ "[store]\npath = var/t.db\n", 2, "path must be the absolute path "
	  "of the database file" },
	{ "[store]\n\nbackend = postgresql\n", 3, "backend = postgresql "
	  "needs url in [store]" },
	{ "[store]\nlease = 0\n", 2, "bad value '0' for lease" },
	{ "[store]\nlease = 8d\n", 2, "bad value '8d' for lease" },
	{ "[store]\nmax_attempts = 0\n", 2, "bad value '0' for "
	  "max_attempts (expected 1 to 1000)" },
	/* The url's password is never quoted, whatever is wrong. */
	{ "[store]\nurl = postgresql://u:pw-42@db/t\nurl = x\n", 3,
	  "key 'url' is set twice" },
	{ "[store]\nbackend = postgresql\nurl = postgresql://u:pw-42@db\n"
	  "lease = never\n", 4, "bad value 'never' for lease" },
};

START_TEST(test_store_mistakes_are_refused_at_their_line)
{
	struct config_error err;

	load_refused(bad_store[_i].text, &err);
	ck_assert_int_eq(err.line, bad_store[_i].line);
	ck_assert_reason(err, bad_store[_i].reason);
	ck_assert_ptr_null(strstr(err.text, "pw-42"));
}
END_TEST

/* ---- what is refused: structure ------------------------------------------ */

START_TEST(test_unknown_section_is_refused_at_its_line)
{
	struct config_error err;

	load_refused("[server]\nthreads = 2\n[srever]\nthreads = 2\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "unknown section [srever]");
}
END_TEST

static const char *const fixed_sections[] = {
	"server", "pool", "registry", "log", "store",
};

START_TEST(test_fixed_section_twice_is_refused_at_the_second)
{
	const char *s = fixed_sections[_i];
	struct config_error err;
	char text[256], reason[64];

	snprintf(text, sizeof(text), "[%s]\n# between\n[job a]\nkind = sleep\n"
		 "[%s]\n", s, s);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 5);
	snprintf(reason, sizeof(reason), "section [%s] appears twice", s);
	ck_assert_reason(err, reason);
}
END_TEST

START_TEST(test_unknown_key_in_fixed_section_is_refused_at_its_line)
{
	const char *s = fixed_sections[_i];
	struct config_error err;
	char text[256], reason[64];

	snprintf(text, sizeof(text), "[%s]\n\nbogus = 1\n", s);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	snprintf(reason, sizeof(reason), "unknown key 'bogus' in [%s]", s);
	ck_assert_reason(err, reason);
}
END_TEST

START_TEST(test_unknown_key_in_route_is_refused_at_its_line)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\n[route /r]\njobs = a\n"
		     "deadline = 1s\n", &err);
	ck_assert_int_eq(err.line, 5);
	ck_assert_reason(err, "unknown key 'deadline' in [route]");
}
END_TEST

START_TEST(test_unknown_key_in_sleep_job_is_refused_at_its_line)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\ncommand = ls\nresult = x\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "unknown key 'command' for a job of kind sleep");
}
END_TEST

START_TEST(test_key_outside_any_section_is_refused_at_its_line)
{
	struct config_error err;

	load_refused("# top\nthreads = 2\n[server]\n", &err);
	ck_assert_int_eq(err.line, 2);
	ck_assert_reason(err, "key 'threads' outside any section");
}
END_TEST

START_TEST(test_key_set_twice_is_refused_at_the_second)
{
	struct config_error err;

	load_refused("[server]\nthreads = 2\nlisten = 127.0.0.1:1\n"
		     "threads = 2\n", &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_reason(err, "key 'threads' is set twice in this section");
}
END_TEST

START_TEST(test_job_key_set_twice_is_refused_at_the_second)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\nresult = x\nresult = y\n", &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_reason(err, "key 'result' is set twice in this section");
}
END_TEST

static const char *const headers_with_trailing_text[] = {
	"[pool] garbage", "[pool]x", "[pool] # a comment", "[pool]; a comment",
	"[pool]]", "[job b] [job c]",
};

START_TEST(test_text_after_section_header_is_refused_at_its_line)
{
	struct config_error err;
	char text[256];

	snprintf(text, sizeof(text), "[server]\nthreads = 2\n%s\n",
		 headers_with_trailing_text[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "text after ']' in section header (a "
			 "comment there must start with a blank and ';')");
}
END_TEST

static const char *const continuations[] = {
	"[server]\nthreads = 2\n  listen = 127.0.0.1:1\n",
	"[server]\nthreads = 2\n\tlisten = 127.0.0.1:1\n",
	"[server]\nthreads = 2\n  [pool]\n",
	"[server]\nthreads = 2\n\n  more text\n",
};

/* Once reported as "key 'threads' is set twice in this section". */
START_TEST(test_indented_line_after_a_key_is_refused_as_a_continuation)
{
	struct config_error err;

	load_refused(continuations[_i], &err);
	ck_assert_int_eq(err.line, _i == 3 ? 4 : 3);
	ck_assert_str_eq(err.text, "indented line continues the value of "
			 "'threads', and continuation lines are not "
			 "supported (unindent it)");
}
END_TEST

/* ---- what is refused: bytes that cannot go into JSON or a log line ------- */

static const char *const not_utf8[] = {
	"\xff",			/* never in UTF-8 */
	"a\x80",		/* continuation byte without a lead */
	"\xc0\xaf",		/* overlong '/' */
	"\xc1\xbf",
	"\xe0\x80\xaf",
	"\xf0\x80\x80\xaf",
	"\xed\xa0\x80",		/* surrogates */
	"\xed\xbf\xbf",
	"\xf4\x90\x80\x80",	/* U+110000 */
	"\xf5\x80\x80\x80",
	"\xf8\x88\x80\x80\x80",	/* 5 bytes */
	"\xe2\x82",		/* cut short */
	"\xe2\x82" "x",
	"\xc3" "b",
};

START_TEST(test_result_that_is_not_valid_utf8_is_refused_at_its_line)
{
	struct config_error err;
	char text[256];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\nresult = %s\n",
		 not_utf8[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "result is not valid UTF-8");
}
END_TEST

static const char *const control_characters[] = {
	"a\x01" "b", "a\x1b[31mb", "a\rb", "a\x0b" "b", "a\x7f" "b",
	"a\xc2\x85" "b",	/* U+0085, C1 */
	"a\xc2\x9b" "2J",	/* U+009B, CSI */
};

START_TEST(test_result_with_a_control_character_is_refused_at_its_line)
{
	struct config_error err;
	char text[256];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\nresult = %s\n",
		 control_characters[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "result has a control character (only "
			 "tab is allowed)");
}
END_TEST

static const struct {
	const char *text;
	int line;
	const char *reason;
} bad_bytes_elsewhere[] = {
	{ "[job \xff]\nkind = sleep\n", 1,
	  "section header is not valid UTF-8" },
	{ "[job a]\nkind = sleep\n[route /\x1b[2J]\njobs = a\n", 3,
	  "section header has a control character (only tab is allowed)" },
	{ "[server]\nthr\xff" "eads = 2\n", 2, "key name is not valid UTF-8" },
	{ "[server]\n\x1b[1mthreads = 2\n", 2,
	  "key name has a control character (only tab is allowed)" },
	{ "[job a]\nkind = sl\xc3\xa9" "ep\xff\n", 2,
	  "kind is not valid UTF-8" },
	{ "[server]\nlisten = 127.0.0.1:80\x01\n", 2,
	  "listen has a control character (only tab is allowed)" },
};

START_TEST(test_bad_bytes_in_a_header_key_or_value_are_refused_at_their_line)
{
	struct config_error err;

	load_refused(bad_bytes_elsewhere[_i].text, &err);
	ck_assert_int_eq(err.line, bad_bytes_elsewhere[_i].line);
	ck_assert_str_eq(err.text, bad_bytes_elsewhere[_i].reason);
}
END_TEST

/* A NUL would silently end the line early: "ab\0cd" would read as "ab". */
START_TEST(test_nul_byte_is_refused_at_its_line)
{
	static const char text[] = "[job a]\nkind = sleep\nresult = ab\0cd\n";
	const char *path = write_bytes("nul.conf", text, sizeof(text) - 1);
	struct config_error err;
	struct config *c = config_load(path, &err);

	if (c != NULL) {
		config_unref(c);
		ck_abort_msg("accepted a NUL byte");
	}
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "line has a NUL byte");
}
END_TEST

/*
 * config_load_buffer() reads a buffer as config_load() reads a file: the
 * fuzzer's way in (tests/fuzz/fuzz_config.c), so it must take the same
 * bytes the same way, a NUL and an unterminated last line included.
 */
START_TEST(test_buffer_loads_like_a_file)
{
	static const char text[] = "[job a]\nkind = sleep\nresult = done";
	struct config_error err;
	struct config *c = config_load_buffer("mem.conf", text,
					      sizeof(text) - 1, &err);

	ck_assert_msg(c != NULL, "refused: line %d: %s", err.line, err.text);
	ck_assert_str_eq(c->path, "mem.conf");
	ck_assert_uint_eq(c->njobs, 1);
	ck_assert_str_eq(sleep_of(&c->jobs[0])->result, "done");
	config_unref(c);
	c = config_load_buffer("empty.conf", "", 0, &err);
	ck_assert_msg(c != NULL, "refused: line %d: %s", err.line, err.text);
	ck_assert_uint_eq(c->njobs, 0);
	config_unref(c);
}
END_TEST

START_TEST(test_buffer_refuses_a_nul_byte_at_its_line)
{
	static const char text[] = "[job a]\nkind = sleep\nresult = ab\0cd\n";
	struct config_error err;
	struct config *c = config_load_buffer("mem.conf", text,
					      sizeof(text) - 1, &err);

	if (c != NULL) {
		config_unref(c);
		ck_abort_msg("accepted a NUL byte");
	}
	ck_assert_str_eq(err.file, "mem.conf");
	ck_assert_int_eq(err.line, 3);
	ck_assert_str_eq(err.text, "line has a NUL byte");
}
END_TEST

/*
 * A reason cut short at the size of err.text must not end in half a UTF-8
 * sequence: it goes into a log line.  Here the cut falls after the first
 * byte of the 64th U+00E9.
 */
START_TEST(test_reason_cut_short_stays_valid_utf8)
{
	char *path = repeat('p', 100), *job = malloc(90 * 2 + 1);
	char text[512], want[256];
	struct config_error err;
	size_t i;

	ck_assert_ptr_nonnull(job);
	path[0] = '/';
	for (i = 0; i < 90; i++)
		memcpy(job + 2 * i, "\xc3\xa9", 2);
	job[180] = '\0';
	snprintf(text, sizeof(text), "[route %s]\njobs = %s\n", path, job);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 2);
	snprintf(want, sizeof(want), "route '%s' names unknown job '%.*s?",
		 path, 63 * 2, job);
	ck_assert_uint_eq(strlen(want), sizeof(err.text) - 1);
	ck_assert_str_eq(err.text, want);
	free(job);
	free(path);
}
END_TEST

/* ---- what is refused: values of the fixed sections and routes ------------ */

/*
 * Each row is put at line 3 of "# bad value\n[SECTION]\nKEY = VALUE\n" and
 * must be refused there with this reason.
 */
static const struct {
	const char *section;
	const char *key;
	const char *value;
	const char *reason;
} bad_values[] = {
	{ "server", "listen", "localhost:8080", "bad value 'localhost:8080' "
	  "for listen (expected ADDRESS:PORT" },
	{ "server", "listen", "127.0.0.1:65536", "bad value "
	  "'127.0.0.1:65536' for listen" },
	{ "server", "listen", "127.0.0.1", "bad value '127.0.0.1' for "
	  "listen" },
	{ "server", "listen", "https://localhost:8443", "bad value "
	  "'https://localhost:8443' for listen (expected ADDRESS:PORT" },
	{ "server", "listen", "https://127.0.0.1:8443", "listen = "
	  "https://... needs cert and key in [server]" },
	{ "server", "cert", "/nonexistent.pem", "cert and key go together: "
	  "key is missing" },
	{ "server", "key", "/nonexistent.key", "cert and key go together: "
	  "cert is missing" },
	{ "server", "tls_priorities", "NORMAL:+NO-SUCH-THING", "bad "
	  "tls_priorities: The request is invalid. at: +NO-SUCH-THING" },
	{ "server", "instance", "node/1", "bad value 'node/1' for instance "
	  "(expected 1 to 64 of A-Z a-z 0-9 _ . -)" },
	{ "server", "instance", "i123456789i123456789i123456789i123456789"
	  "i123456789i123456789abcde", "for instance" },	/* 65 */
	{ "server", "threads", "0", "bad value '0' for threads (expected 1 to "
	  "256)" },
	{ "server", "threads", "257", "bad value '257' for threads" },
	{ "server", "threads", "two", "bad value 'two' for threads" },
	{ "server", "max_connections", "1000001", "bad value '1000001' for "
	  "max_connections (expected 0 (automatic) to 1000000)" },
	{ "server", "max_connections", "-1", "bad value '-1' for "
	  "max_connections" },
	{ "server", "max_connections_per_ip", "1000001", "bad value '1000001' "
	  "for max_connections_per_ip (expected 0 (no limit) to 1000000)" },
	{ "server", "header_timeout", "99ms", "bad value '99ms' for "
	  "header_timeout (expected 0 (none) or a duration from 100ms to 1h)" },
	{ "server", "body_timeout", "61m", "bad value '61m' for "
	  "body_timeout" },
	{ "server", "body_timeout", "5", "bad value '5' for body_timeout" },
	{ "server", "connection_memory", "4095", "bad value '4095' for "
	  "connection_memory (expected a size from 4K to 1M)" },
	{ "server", "connection_memory", "2M", "bad value '2M' for "
	  "connection_memory" },
	{ "server", "connection_memory", "16G", "bad value '16G' for "
	  "connection_memory" },
	{ "server", "connection_timeout", "999ms", "bad value '999ms' for "
	  "connection_timeout (expected a duration from 1s to 1h)" },
	{ "server", "connection_timeout", "61m", "bad value '61m' for "
	  "connection_timeout" },
	{ "server", "connection_timeout", "30", "bad value '30' for "
	  "connection_timeout" },
	{ "server", "drain_timeout", "2h", "bad value '2h' for drain_timeout "
	  "(expected a duration up to 1h)" },
	{ "server", "drain_timeout", "soon", "bad value 'soon' for "
	  "drain_timeout" },
	{ "server", "max_body", "1023", "bad value '1023' for max_body "
	  "(expected a size from 1K to 16M)" },
	{ "server", "max_body", "17M", "bad value '17M' for max_body" },
	{ "server", "max_run_jobs", "0", "bad value '0' for max_run_jobs "
	  "(expected 1 to 64)" },
	{ "server", "max_run_jobs", "65", "bad value '65' for max_run_jobs" },
	{ "registry", "max_runs", "15", "bad value '15' for max_runs "
	  "(expected 16 to 10000000)" },
	{ "pool", "workers", "0", "bad value '0' for workers (expected 1 to "
	  "1024)" },
	{ "pool", "workers", "1025", "bad value '1025' for workers" },
	{ "pool", "queue", "0", "bad value '0' for queue (expected 1 to "
	  "1000000)" },
	{ "pool", "queue", "1000001", "bad value '1000001' for queue" },
	{ "registry", "max_jobs", "15", "bad value '15' for max_jobs "
	  "(expected 16 to 10000000)" },
	{ "registry", "max_jobs", "10000001", "bad value '10000001' for "
	  "max_jobs" },
	{ "registry", "retain", "169h", "bad value '169h' for retain "
	  "(expected a duration up to 7d" },
	{ "registry", "retain", "10", "bad value '10' for retain" },
	{ "log", "level", "verbose", "bad value 'verbose' for level "
	  "(expected error, warning, info or debug)" },
	{ "log", "level", "INFO", "bad value 'INFO' for level" },
	{ "log", "access_log", "1x", "bad value '1x' for access_log "
	  "(expected yes or no)" },
	{ "log", "jobs", "maybe", "bad value 'maybe' for jobs (expected yes "
	  "or no)" },
	{ "route /r", "method", "get", "bad value 'get' for method (expected "
	  "GET, POST, PUT, PATCH or DELETE)" },
	{ "route /r", "method", "HEAD", "bad value 'HEAD' for method" },
	{ "route /r", "wait", "some", "bad value 'some' for wait (expected "
	  "all, first, any or none)" },
	{ "route /r", "timeout", "0", "bad value '0' for timeout (expected a "
	  "duration from 1ms to 1h)" },
	{ "route /r", "timeout", "61m", "bad value '61m' for timeout" },
	{ "route /r", "timeout", "5", "bad value '5' for timeout" },
	{ "route /r", "losers", "drop", "bad value 'drop' for losers "
	  "(expected detach or cancel)" },
};

START_TEST(test_bad_value_is_refused_at_its_line)
{
	struct config_error err;
	char text[512];

	snprintf(text, sizeof(text), "# bad value\n[%s]\n%s = %s\n",
		 bad_values[_i].section, bad_values[_i].key,
		 bad_values[_i].value);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, bad_values[_i].reason);
}
END_TEST

/* ---- what is refused: jobs ----------------------------------------------- */

static const char *const bad_job_names[] = {
	"a b", "a/b", "a:b", "t\xc3\xa2" "che",	/* UTF-8 is not A-Z */
	"n123456789n123456789n123456789n123456789n123456789n123456789abcde",
};

START_TEST(test_bad_job_name_is_refused_at_its_header)
{
	struct config_error err;
	char text[256], reason[128];

	snprintf(text, sizeof(text), "[job ok]\nkind = sleep\n[job %s]\n"
		 "kind = sleep\n", bad_job_names[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	snprintf(reason, sizeof(reason), "bad job name '%s'",
		 bad_job_names[_i]);
	ck_assert_reason(err, reason);
}
END_TEST

START_TEST(test_duplicate_job_is_refused_naming_the_first_line)
{
	struct config_error err;

	load_refused("[server]\n[job a]\nkind = sleep\n[job b]\nkind = sleep\n"
		     "[job a]\nkind = sleep\n", &err);
	ck_assert_int_eq(err.line, 6);
	ck_assert_reason(err, "job 'a' is already defined at line 2");
}
END_TEST

START_TEST(test_job_without_kind_is_refused_at_its_header)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\n\n[job b]\nduration = 1s\n"
		     "result = x\n", &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_reason(err, "job 'b' has no kind");
}
END_TEST

START_TEST(test_unknown_kind_is_refused_at_the_kind_line)
{
	struct config_error err;

	load_refused("[job a]\nresult = x\nkind = shell\nduration = 1s\n",
		     &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "unknown job kind 'shell' (known: sleep, exec, http, plugin)");
}
END_TEST

static const struct {
	const char *value;
	const char *reason;
} bad_job_timeouts[] = {
	{ "0", "bad value '0' for timeout (expected a duration from 1ms to "
	  "7d)" },
	{ "999us", "bad value '999us' for timeout" },
	{ "8d", "bad value '8d' for timeout" },
	{ "169h", "bad value '169h' for timeout" },
	{ "10", "bad value '10' for timeout" },
};

START_TEST(test_bad_job_timeout_is_refused_at_its_line)
{
	struct config_error err;
	char text[256];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\ntimeout = %s\n"
		 "result = x\n", bad_job_timeouts[_i].value);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, bad_job_timeouts[_i].reason);
}
END_TEST

static const char *const bad_durations[] = {
	"1", "-1s", "1 s", "1w", "soon", "8d",
	"7.0000000000000000000001d",	/* over 7d by less than 1ns */
	"99999999999999999999999999999999999999d",
};

START_TEST(test_bad_sleep_duration_is_refused_at_its_line)
{
	struct config_error err;
	char text[256], reason[128];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\nresult = x\n"
		 "duration = %s\ntimeout = 168h\n", bad_durations[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 4);
	snprintf(reason, sizeof(reason), "bad value '%s' for duration "
		 "(expected a duration up to 7d", bad_durations[_i]);
	ck_assert_reason(err, reason);
}
END_TEST

START_TEST(test_sleep_longer_than_timeout_is_refused_at_its_header)
{
	struct config_error err;

	load_refused("[job ok]\nkind = sleep\n[job slow]\nkind = sleep\n"
		     "duration = 2s\ntimeout = 1999ms\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "job 'slow': duration is longer than its "
			 "timeout");
}
END_TEST

START_TEST(test_sleep_longer_than_default_timeout_is_refused)
{
	struct config_error err;

	load_refused("[job slow]\nkind = sleep\nduration = 61s\n", &err);
	ck_assert_int_eq(err.line, 1);
	ck_assert_reason(err, "job 'slow': duration is longer than its "
			 "timeout");
}
END_TEST

/* ---- what is refused: routes --------------------------------------------- */

static const char *const bad_route_paths[] = {
	"tasks", "/a//b", "/a/", "/a b", "/a?x=1", "/a%20b", "//",
	"/g/{}", "/g/{a-b}", "/g/x{a}", "/g/{a}x", "/g/{a", "/g/a}",
	"/g/{a}}", "/g/{a/b}", "/{",
};

START_TEST(test_bad_route_path_is_refused_at_its_header)
{
	struct config_error err;
	char text[256], reason[128];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\n[route %s]\n"
		 "jobs = a\n", bad_route_paths[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	snprintf(reason, sizeof(reason), "bad route path '%s'",
		 bad_route_paths[_i]);
	ck_assert_reason(err, reason);
}
END_TEST

static const char *const reserved_route_paths[] = {
	"/jobs", "/jobs/x", "/runs", "/runs/{id}", "/healthz", "/metrics",
	"/openapi.json",
};

START_TEST(test_reserved_route_path_is_refused_at_its_header)
{
	struct config_error err;
	char text[256], reason[128];

	snprintf(text, sizeof(text), "[job a]\nkind = sleep\n[route %s]\n"
		 "jobs = a\n", reserved_route_paths[_i]);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	snprintf(reason, sizeof(reason), "route path '%s' is reserved",
		 reserved_route_paths[_i]);
	ck_assert_reason(err, reason);
}
END_TEST

START_TEST(test_duplicate_route_is_refused_naming_the_first_line)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\n[route /r]\njobs = a\n"
		     "[route /s]\njobs = a\n[route /r]\njobs = a\n", &err);
	ck_assert_int_eq(err.line, 7);
	ck_assert_reason(err, "route '/r' is already defined at line 3");
}
END_TEST

START_TEST(test_route_naming_unknown_job_is_refused_at_its_jobs_line)
{
	struct config_error err;

	load_refused("[route /r]\nmethod = GET\njobs = a nope\nwait = all\n"
		     "[job a]\nkind = sleep\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "route '/r' names unknown job 'nope'");
}
END_TEST

START_TEST(test_route_without_jobs_is_refused_at_its_header)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\n[route /r]\nwait = all\n"
		     "timeout = 1s\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "route '/r' has no jobs");
}
END_TEST

START_TEST(test_route_with_empty_job_list_is_refused_at_its_jobs_line)
{
	struct config_error err;

	load_refused("[job a]\nkind = sleep\n[route /r]\nwait = all\n"
		     "jobs = , ,\n", &err);
	ck_assert_int_eq(err.line, 5);
	ck_assert_reason(err, "route '/r' has an empty job list");
}
END_TEST

START_TEST(test_route_with_65_jobs_is_refused_at_its_jobs_line)
{
	char line[256] = "jobs =";
	struct config_error err;
	char text[512];
	int i;

	for (i = 0; i < CONFIG_ROUTE_JOBS_MAX + 1; i++)
		strcat(line, " a");
	snprintf(text, sizeof(text), "[job a]\nkind = sleep\n[route /r]\n%s\n"
		 "wait = all\n", line);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_reason(err, "route '/r' has more than 64 jobs");
}
END_TEST

/* "jobs = a a a ..." with n jobs, into line (of size 256). */
static void
jobs_line(char *line, int n)
{
	int i;

	strcpy(line, "jobs =");
	for (i = 0; i < n; i++)
		strcat(line, " a");
}

/* ---- what is refused: limits that contradict each other ------------------ */

START_TEST(test_route_with_more_jobs_than_max_jobs_is_refused_at_its_jobs_line)
{
	struct config_error err;
	char line[256], text[512];

	jobs_line(line, 17);
	snprintf(text, sizeof(text), "[registry]\nmax_jobs = 16\n[job a]\n"
		 "kind = sleep\n[route /r]\nwait = all\n%s\n", line);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 7);
	ck_assert_str_eq(err.text, "route '/r' starts 17 jobs a request, "
			 "more than max_jobs = 16 (line 2) holds");
}
END_TEST

START_TEST(test_max_jobs_after_the_route_is_checked_too)
{
	struct config_error err;
	char line[256], text[512];

	jobs_line(line, CONFIG_ROUTE_JOBS_MAX);
	snprintf(text, sizeof(text), "[job a]\nkind = sleep\n[route /r]\n%s\n"
		 "[registry]\nmax_jobs = 63\n", line);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_str_eq(err.text, "route '/r' starts 64 jobs a request, "
			 "more than max_jobs = 63 (line 6) holds");
}
END_TEST

START_TEST(test_route_with_as_many_jobs_as_max_jobs_is_accepted)
{
	struct config *c;
	char line[256], text[512];

	jobs_line(line, 16);
	snprintf(text, sizeof(text), "[registry]\nmax_jobs = 16\n[job a]\n"
		 "kind = sleep\n[route /r]\n%s\n", line);
	c = load_ok(text);
	ck_assert_uint_eq(config_find_route(c, "/r")->njobs, 16);
	config_unref(c);
}
END_TEST

/* No kind uses the pool yet, and a queue deeper than max_jobs is harmless. */
START_TEST(test_pool_limits_smaller_or_larger_than_the_rest_are_accepted)
{
	struct config *c;
	char line[256], text[512];

	jobs_line(line, CONFIG_ROUTE_JOBS_MAX);
	snprintf(text, sizeof(text), "[pool]\nworkers = 1024\nqueue = 1\n"
		 "[registry]\nmax_jobs = 64\n[job a]\nkind = sleep\n"
		 "[route /r]\n%s\n", line);
	c = load_ok(text);
	config_unref(c);
	snprintf(text, sizeof(text), "[pool]\nworkers = 1\nqueue = 1000000\n"
		 "[registry]\nmax_jobs = 16\n");
	c = load_ok(text);
	config_unref(c);
}
END_TEST

/* ---- what is refused: syntax and the file -------------------------------- */

START_TEST(test_line_of_199_characters_is_refused_at_its_line)
{
	char *comment = repeat('x', 198);	/* with '#': 199 characters */
	struct config_error err;
	char text[512];

	snprintf(text, sizeof(text), "[server]\nthreads = 2\n#%s\n"
		 "threads = 3\n", comment);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "line too long (at most 198 characters)");
	free(comment);
}
END_TEST

/* The last line may fill the reader's buffer: nothing of it is cut off. */
START_TEST(test_full_last_line_without_newline_is_accepted)
{
	char *comment = repeat('x', 198);	/* with '#': 199 characters */
	struct config *c;
	char text[512];

	snprintf(text, sizeof(text), "[server]\nthreads = 3\n#%s", comment);
	c = load_ok(text);
	ck_assert_uint_eq(c->server.threads, 3);
	config_unref(c);
	free(comment);
}
END_TEST

START_TEST(test_section_header_without_bracket_is_refused_at_its_line)
{
	struct config_error err;

	load_refused("[server]\nthreads = 2\n[pool\nworkers = 2\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "section header without ']'");
}
END_TEST

START_TEST(test_line_without_equals_is_a_syntax_error_at_its_line)
{
	struct config_error err;

	/* Neither '=' nor ':' (which inih also takes as the separator). */
	load_refused("[server]\nthreads = 2\nworkers 4\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "syntax error");
}
END_TEST

START_TEST(test_syntax_error_before_a_bad_value_is_reported_first)
{
	struct config_error err;

	load_refused("[server]\ngarbage\n[pool]\nworkers = 0\n", &err);
	ck_assert_int_eq(err.line, 2);
	ck_assert_reason(err, "syntax error");
}
END_TEST

START_TEST(test_bad_value_before_a_syntax_error_is_reported_first)
{
	struct config_error err;

	load_refused("[pool]\nworkers = 0\ngarbage\n", &err);
	ck_assert_int_eq(err.line, 2);
	ck_assert_reason(err, "bad value '0' for workers");
}
END_TEST

START_TEST(test_syntax_error_is_reported_before_job_errors)
{
	struct config_error err;

	load_refused("[job a]\nkind = shell\n[pool]\ngarbage\n", &err);
	ck_assert_int_eq(err.line, 4);
	ck_assert_reason(err, "syntax error");
}
END_TEST

START_TEST(test_missing_file_is_refused_with_line_0_and_strerror)
{
	struct config_error err;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%.*s/absent.conf", PATH_MAX / 2,
		 tmpdir);
	ck_assert_ptr_null(config_load(path, &err));
	ck_assert_str_eq(err.file, path);
	ck_assert_int_eq(err.line, 0);
	ck_assert_str_eq(err.text, strerror(ENOENT));
}
END_TEST

START_TEST(test_directory_is_refused_with_line_0_read_error)
{
	struct config_error err;

	ck_assert_ptr_null(config_load(tmpdir, &err));
	ck_assert_str_eq(err.file, tmpdir);
	ck_assert_int_eq(err.line, 0);
	ck_assert_str_eq(err.text, "read error");
}
END_TEST

/* ---- config_parse_duration ----------------------------------------------- */

static const struct {
	const char *text;
	int64_t ns;
} good_durations[] = {
	{ "0", 0 },
	{ "0s", 0 },
	{ "250ms", 250 * NS_PER_MS },
	{ "1s", NS_PER_S },
	{ "1.5s", 1500 * NS_PER_MS },
	{ "0.001s", NS_PER_MS },
	{ "1.5ms", 1500000 },
	{ "0.000000001s", 1 },
	{ "0.0000000019s", 1 },		/* digits beyond ns are dropped */
	{ "2m", 120 * NS_PER_S },
	{ "1.25m", 75 * NS_PER_S },
	{ "1h", 3600 * NS_PER_S },
	{ "168h", 7 * 24 * 3600 * NS_PER_S },
	{ "10080m", 7 * 24 * 3600 * NS_PER_S },
	{ "604800s", 7 * 24 * 3600 * NS_PER_S },
	{ "604800000ms", 7 * 24 * 3600 * NS_PER_S },
	{ "1d", 24 * 3600 * NS_PER_S },
	{ "1.5d", 36 * 3600 * NS_PER_S },
	{ "7d", 7 * 24 * 3600 * NS_PER_S },
};

START_TEST(test_parse_duration_accepts)
{
	int64_t ns = -1;

	ck_assert_int_eq(config_parse_duration(good_durations[_i].text, &ns),
			 0);
	ck_assert_int_eq(ns, good_durations[_i].ns);
}
END_TEST

static const char *const refused_durations[] = {
	"30",			/* no unit */
	"1.5",
	"",
	"-1s",
	"+1s",
	" 1s",
	"1s ",
	"1 s",
	"s",
	".5s",
	"1.s",
	"1S",
	"1sec",
	"1w",
	"1us",
	"1e3ms",
	"garbage",
	"168.000001h",		/* just over 7 days */
	"169h",
	"604801s",
	"10081m",
	"8d",
	"7.000001d",
	"99999999999999999999s",	/* would overflow int64 */
	"9223372036854775808ms",
	"99999999999999999999999999999999999999999d",
	"7.5d",
	"7.0000000000000000000001d",	/* over by less than 1ns */
	"168.0000000000000000001h",
	"604800000.0000000000001ms",
	"604800.000000000000000000000000000000000000000001s",
	"1..5s",
	"1.5.5s",
};

START_TEST(test_parse_duration_refuses)
{
	int64_t ns = 0;

	ck_assert_msg(config_parse_duration(refused_durations[_i], &ns) == -1,
		      "accepted \"%s\"", refused_durations[_i]);
}
END_TEST

/*
 * Fractions of any length are exact to the nanosecond (what is below one
 * is dropped), in every unit, and never overflow: these once came out
 * wrapped, some of them negative.
 */
static const struct {
	const char *text;
	int64_t ns;
} long_fraction_durations[] = {
	{ "1.123456d", INT64_C(97066598400000) },
	{ "0.123456d", INT64_C(10666598400000) },
	{ "6.999999999d", INT64_C(604799999913600) },
	{ "6.9999999999999999999999d", INT64_C(604799999999999) },
	{ "0.0000000000000000000001d", 0 },
	{ "1.999999999999999999999h", INT64_C(7199999999999) },
	{ "0.00000000001m", 0 },
	/* 1ns is 0.0000000000166...m: just below it, then just above. */
	{ "0.0000000000166666666666666666666m", 0 },
	{ "0.0000000000166666666666666666667m", 1 },
	{ "0.0000000000166666666666666666667000m", 1 },
	{ "1.0000000000000000000001s", NS_PER_S },
	{ "0.99999999999999999999999ms", 999999 },
	{ "00000000000000000000000000001s", NS_PER_S },
	{ "168.0000000000000000000000h", 7 * 24 * 3600 * NS_PER_S },
	{ "1.1m", 66 * NS_PER_S },
};

START_TEST(test_parse_duration_long_fractions_are_exact)
{
	int64_t ns = -1;

	ck_assert_int_eq(config_parse_duration(
	    long_fraction_durations[_i].text, &ns), 0);
	ck_assert_int_eq(ns, long_fraction_durations[_i].ns);
}
END_TEST

static const struct {
	const char *unit;
	int64_t ns;
} duration_units[] = {
	{ "ms", NS_PER_MS }, { "s", NS_PER_S }, { "m", 60 * NS_PER_S },
	{ "h", 3600 * NS_PER_S }, { "d", 86400 * NS_PER_S },
};

/* "0.9", "0.99", ... of every unit: growing, never negative, below 1. */
START_TEST(test_parse_duration_fraction_of_nines_stays_below_one_unit)
{
	char text[64] = "0.";
	int64_t ns, last = 0;
	size_t k;

	for (k = 1; k <= 40; k++) {
		text[1 + k] = '9';
		snprintf(text + 2 + k, sizeof(text) - 2 - k, "%s",
			 duration_units[_i].unit);
		ck_assert_int_eq(config_parse_duration(text, &ns), 0);
		ck_assert_msg(ns >= last && ns < duration_units[_i].ns,
			      "%s gave %lld", text, (long long)ns);
		last = ns;
	}
	ck_assert_int_eq(last, duration_units[_i].ns - 1);
}
END_TEST

START_TEST(test_parse_duration_leaves_ns_alone_when_refused)
{
	static const char *const refused[] = {
		"7.5d", "8d", "7.0000000000000000000001d", "1.5", "",
	};
	size_t i;
	int64_t ns;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ns = 42;
		ck_assert_int_eq(config_parse_duration(refused[i], &ns), -1);
		ck_assert_msg(ns == 42, "\"%s\" wrote %lld", refused[i],
			      (long long)ns);
	}
}
END_TEST

/* ---- config_parse_size --------------------------------------------------- */

static const struct {
	const char *text;
	size_t bytes;
} good_sizes[] = {
	{ "0", 0 },
	{ "4096", 4096 },
	{ "16K", 16 * 1024 },
	{ "16k", 16 * 1024 },
	{ "1M", 1024 * 1024 },
	{ "1024M", (size_t)1 << 30 },
	{ "1099511627776", (size_t)1 << 40 },
};

START_TEST(test_parse_size_accepts)
{
	size_t bytes = 1;

	ck_assert_int_eq(config_parse_size(good_sizes[_i].text, &bytes), 0);
	ck_assert_uint_eq(bytes, good_sizes[_i].bytes);
}
END_TEST

static const char *const refused_sizes[] = {
	"",
	"K",
	"-1",
	" 16K",
	"16 K",
	"16KB",
	"1G",
	"1.5M",
	"1099511627777",		/* one byte over 1 TiB */
	"1048577M",
	"99999999999999999999",		/* strtoull overflows */
	/* 2^54 K and 2^44 M + 1 wrap around 2^64 to small numbers. */
	"18014398509481985K",
	"17592186044417M",
};

START_TEST(test_parse_size_refuses)
{
	size_t bytes = 0;

	ck_assert_msg(config_parse_size(refused_sizes[_i], &bytes) == -1,
		      "accepted \"%s\" as %zu", refused_sizes[_i], bytes);
}
END_TEST

/* ---- TLS files ------------------------------------------------------------ */

/*
 * An unreadable certificate is refused at cert's line, whatever the order
 * of the keys: the pair is read once the whole file is, certificate
 * first.
 */
START_TEST(test_unreadable_cert_or_key_is_refused_at_its_line)
{
	struct config_error err;
	const char *cert = write_file("not.pem", "no certificate here\n");

	load_refused("[server]\nkey = /nonexistent/k.pem\ncert = "
		     "/nonexistent/c.pem\n", &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, "cannot read /nonexistent/c.pem: No such file");
	{
		char text[512];

		snprintf(text, sizeof(text), "[server]\ncert = %s\nkey = "
			 "/nonexistent/k.pem\n", cert);
		load_refused(text, &err);
		ck_assert_int_eq(err.line, 2);
		ck_assert_reason(err, "no PEM certificate chain of at most "
				 "16");
	}
}
END_TEST

/* ---- config_parse_listen ------------------------------------------------- */

START_TEST(test_parse_listen_takes_ipv4_address_and_port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	unsigned len = 0;

	ck_assert_int_eq(config_parse_listen("127.0.0.1:8080", &ss, &len), 0);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
}
END_TEST

START_TEST(test_parse_listen_takes_bracketed_ipv6_and_port_0)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned len = 0;

	ck_assert_int_eq(config_parse_listen("[::1]:0", &ss, &len), 0);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 0);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
}
END_TEST

START_TEST(test_parse_listen_takes_star_as_any_ipv4_address)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	unsigned len = 0;

	ck_assert_int_eq(config_parse_listen("*:65535", &ss, &len), 0);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 65535);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_ANY);
}
END_TEST

static const char *const refused_listens[] = {
	"localhost:8080",	/* numeric addresses only */
	"example.com:80",
	"127.0.0.1",		/* no port */
	"127.0.0.1:",
	":8080",
	"8080",
	"127.0.0.1:65536",
	"127.0.0.1:-1",
	"127.0.0.1:80x",
	"127.0.0.1: 80",
	"::1:8080",		/* IPv6 needs brackets */
	"[::1]",
	"[::1:8080",
	"[]:80",
	"[127.0.0.1]:80",
	"256.0.0.1:80",
	"",
	"https://",		/* a scheme, then ADDRESS:PORT */
	"http://",
	"https://localhost:8443",
	"https://127.0.0.1:8443/",	/* no path */
	"https://127.0.0.1",
	"ftp://127.0.0.1:21",	/* http and https only */
	"https:/127.0.0.1:8443",
	"https//127.0.0.1:8443",
	"httpss://127.0.0.1:8443",
	" https://127.0.0.1:8443",
	"http://https://127.0.0.1:8443",
};

/* Each with its port and whether it means TLS. */
static const struct {
	const char *listen;
	unsigned port;
	bool tls;
} schemed_listens[] = {
	{ "https://127.0.0.1:8443", 8443, true },
	{ "HTTPS://127.0.0.1:8443", 8443, true },	/* RFC 3986 3.1 */
	{ "https://[::1]:0", 0, true },
	{ "https://*:443", 443, true },
	{ "http://127.0.0.1:8080", 8080, false },
	{ "Http://[::1]:80", 80, false },
	{ "127.0.0.1:8443", 8443, false },	/* bare: plain HTTP */
};

START_TEST(test_parse_listen_takes_a_scheme)
{
	struct sockaddr_storage ss;
	unsigned len = 0, port;

	ck_assert_msg(config_parse_listen(schemed_listens[_i].listen, &ss,
					  &len) == 0, "refused \"%s\"",
		      schemed_listens[_i].listen);
	port = ntohs(ss.ss_family == AF_INET6 ?
		     ((struct sockaddr_in6 *)&ss)->sin6_port :
		     ((struct sockaddr_in *)&ss)->sin_port);
	ck_assert_uint_eq(port, schemed_listens[_i].port);
	ck_assert_msg(config_listen_tls(schemed_listens[_i].listen) ==
		      schemed_listens[_i].tls, "\"%s\": TLS is %d",
		      schemed_listens[_i].listen, !schemed_listens[_i].tls);
}
END_TEST

START_TEST(test_parse_listen_refuses)
{
	struct sockaddr_storage ss;
	unsigned len = 0;

	ck_assert_msg(config_parse_listen(refused_listens[_i], &ss, &len) == -1,
		      "accepted \"%s\"", refused_listens[_i]);
}
END_TEST

/* ---- config_parse_uint and config_parse_bool ----------------------------- */

START_TEST(test_parse_uint_accepts_the_bounds_and_refuses_beyond)
{
	unsigned v = 0;

	ck_assert_int_eq(config_parse_uint("1", 1, 10, &v), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(config_parse_uint("10", 1, 10, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(config_parse_uint("0", 1, 10, &v), -1);
	ck_assert_int_eq(config_parse_uint("11", 1, 10, &v), -1);
	ck_assert_int_eq(config_parse_uint("4294967296", 0, UINT_MAX, &v), -1);
	ck_assert_int_eq(config_parse_uint("+5", 1, 10, &v), -1);
	ck_assert_int_eq(config_parse_uint("5 ", 1, 10, &v), -1);
	ck_assert_int_eq(config_parse_uint("", 1, 10, &v), -1);
	ck_assert_uint_eq(v, 10);
}
END_TEST

START_TEST(test_parse_bool_takes_yes_true_on_and_no_false_off)
{
	bool b;

	b = false;
	ck_assert_int_eq(config_parse_bool("yes", &b), 0);
	ck_assert(b);
	b = false;
	ck_assert_int_eq(config_parse_bool("true", &b), 0);
	ck_assert(b);
	b = false;
	ck_assert_int_eq(config_parse_bool("on", &b), 0);
	ck_assert(b);
	b = true;
	ck_assert_int_eq(config_parse_bool("no", &b), 0);
	ck_assert(!b);
	b = true;
	ck_assert_int_eq(config_parse_bool("false", &b), 0);
	ck_assert(!b);
	b = true;
	ck_assert_int_eq(config_parse_bool("off", &b), 0);
	ck_assert(!b);
	ck_assert_int_eq(config_parse_bool("Yes", &b), -1);
	ck_assert_int_eq(config_parse_bool("1", &b), -1);
	ck_assert_int_eq(config_parse_bool("", &b), -1);
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

#define NELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- declared parameters (params.h) ---------------------------------------- */

/* Job j of kind sleep with one more line: the declaration, at line 3. */
static void
load_decl_refused(const char *decl, struct config_error *err)
{
	char text[512];

	snprintf(text, sizeof(text), "[job j]\nkind = sleep\n%s\n", decl);
	load_refused(text, err);
}

static const struct { const char *decl, *reason; } bad_decls[] = {
	{ "param.x = float", "param.x: unknown type 'float' (expected "
	  "string, int, enum or bool)" },
	{ "param.x = String", "param.x: unknown type 'String'" },
	{ "param.x = enum", "param.x: an enum needs its choices" },
	{ "param.x = enum a||b", "param.x: empty enum choice" },
	{ "param.x = enum a|", "param.x: empty enum choice" },
	{ "param.x = enum a|b|a", "param.x: enum choice 'a' is listed twice" },
	{ "param.x = string max=0", "param.x: bad max= (expected 1 to 65536 "
	  "bytes)" },
	{ "param.x = string max=65537", "param.x: bad max= (expected 1 to "
	  "65536 bytes)" },
	{ "param.x = string max=ten", "param.x: bad max=" },
	{ "param.x = int max=1.5", "param.x: bad max= (expected a 64-bit "
	  "decimal integer)" },
	{ "param.x = int max=9223372036854775808", "param.x: bad max=" },
	{ "param.x = int min=", "param.x: bad min=" },
	{ "param.x = int min=5 max=1", "param.x: min= 5 is above max= 1" },
	{ "param.x = bool max=3", "param.x: max= is for strings and ints "
	  "only" },
	{ "param.x = enum a|b max=3", "param.x: max= is for strings and ints "
	  "only" },
	{ "param.x = int pattern=[0-9]+", "param.x: pattern= is for strings "
	  "only" },
	{ "param.x = string pattern=", "param.x: empty pattern" },
	{ "param.x = string pattern=a(b", "param.x: bad pattern: " },
	{ "param.x = string pattern=[z-a]", "param.x: bad pattern: " },
	{ "param.x = string min=1", "param.x: unknown option 'min=1'" },
	{ "param.x = string frob", "param.x: unknown option 'frob'" },
	{ "param.x = string secret secret", "param.x: option 'secret' is "
	  "given twice" },
	{ "param.x = int max=1 max=2", "param.x: option 'max' is given "
	  "twice" },
	{ "param.x = int default=1 default=2", "param.x: option 'default' "
	  "is given twice" },
	{ "param.x = int max=5 default=6", "param.x: bad default: it must be "
	  "an integer from -9223372036854775808 to 5" },
	{ "param.x = int default=one", "param.x: bad default: it must be a "
	  "decimal integer" },
	{ "param.x = string max=2 default=abc", "param.x: bad default: it is "
	  "longer than 2 bytes" },
	{ "param.x = string default=-rf", "param.x: bad default: it may not "
	  "start with '-'" },
	{ "param.x = string default=ABC pattern=[a-z]+", "param.x: bad "
	  "default: it does not match the pattern [a-z]+" },
	{ "param.x = enum a|b default=c", "param.x: bad default: it must be "
	  "one of a, b" },
	{ "param.x = bool default=maybe", "param.x: bad default: it must be "
	  "true, false, 1, 0, yes or no" },
	{ "param.x = string default=\"a b", "param.x: default= has no "
	  "closing '\"'" },
	{ "param.bad-name = int", "bad parameter name 'bad-name' (use 1 to "
	  "64 of A-Z a-z 0-9 _)" },
	{ "param. = int", "bad parameter name ''" },
	{ "param.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  " = int", "bad parameter name" },
	{ "max_concurrent = 100001", "bad value '100001' for max_concurrent "
	  "(expected 0 to 100000)" },
	{ "max_concurrent = -1", "bad value '-1' for max_concurrent" },
	{ "coalesce = maybe", "bad value 'maybe' for coalesce (expected yes "
	  "or no)" },
};

START_TEST(test_bad_declaration_is_refused_at_its_line)
{
	struct config_error err;

	load_decl_refused(bad_decls[_i].decl, &err);
	ck_assert_int_eq(err.line, 3);
	ck_assert_reason(err, bad_decls[_i].reason);
}
END_TEST

START_TEST(test_33rd_declaration_is_refused_at_its_line)
{
	struct config_error err;
	char text[2048];
	size_t n = 0;
	int i;

	n += (size_t)snprintf(text, sizeof(text), "[job j]\nkind = sleep\n");
	for (i = 0; i < 33; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "param.p%d = bool\n", i);
	load_refused(text, &err);
	ck_assert_int_eq(err.line, 35);
	ck_assert_reason(err, "job 'j' declares more than 32 parameters");
}
END_TEST

START_TEST(test_issue_example_declarations_are_read_with_their_options)
{
	struct config *c = load_ok(
		"[job greet]\nkind = sleep\n"
		"param.name = string max=32 pattern=[A-Za-z ]+\n"
		"param.times = int min=1 max=5 default=1\n"
		"param.mode = enum fast|slow default=fast\n"
		"param.verbose = bool default=false\n"
		"param.token = string secret\n");
	const struct job_def *j = config_find_job(c, "greet");
	const struct param_decl *d;

	ck_assert_uint_eq(j->nparams, 5);
	d = config_job_param(j, "name");
	ck_assert_int_eq(d->type, PARAM_STRING);
	ck_assert_uint_eq(d->max_len, 32);
	ck_assert_str_eq(d->pattern_text, "[A-Za-z ]+");
	ck_assert_ptr_null(d->default_value);
	ck_assert(!d->secret);
	d = config_job_param(j, "times");
	ck_assert_int_eq(d->type, PARAM_INT);
	ck_assert_int_eq(d->min, 1);
	ck_assert_int_eq(d->max, 5);
	ck_assert_int_eq(json_integer_value(d->default_value), 1);
	d = config_job_param(j, "mode");
	ck_assert_int_eq(d->type, PARAM_ENUM);
	ck_assert_uint_eq(d->nchoices, 2);
	ck_assert_str_eq(d->choices[0], "fast");
	ck_assert_str_eq(d->choices[1], "slow");
	ck_assert_str_eq(json_string_value(d->default_value), "fast");
	d = config_job_param(j, "verbose");
	ck_assert_int_eq(d->type, PARAM_BOOL);
	ck_assert(json_is_false(d->default_value));
	d = config_job_param(j, "token");
	ck_assert(d->secret);
	ck_assert_uint_eq(d->max_len, PARAM_STRING_MAX_DEFAULT);
	ck_assert_ptr_null(d->default_value);
	config_unref(c);
}
END_TEST

START_TEST(test_pattern_runs_to_the_end_of_the_line)
{
	struct config *c = load_ok("[job j]\nkind = sleep\n"
				   "param.s = string pattern=a b  secret\n");
	const struct param_decl *d = config_job_param(
		config_find_job(c, "j"), "s");

	ck_assert_str_eq(d->pattern_text, "a b  secret");
	ck_assert(!d->secret);
	config_unref(c);
}
END_TEST

START_TEST(test_quoted_default_may_hold_blanks)
{
	struct config *c = load_ok("[job j]\nkind = sleep\n"
				   "param.s = string default=\"Hello, world\" "
				   "max=12\n");
	const struct param_decl *d = config_job_param(
		config_find_job(c, "j"), "s");

	ck_assert_str_eq(json_string_value(d->default_value), "Hello, world");
	ck_assert_uint_eq(d->max_len, 12);
	config_unref(c);
}
END_TEST

START_TEST(test_max_concurrent_and_coalesce_are_read_with_defaults)
{
	struct config *c = load_ok("[job a]\nkind = sleep\n"
				   "[job b]\nkind = sleep\nmax_concurrent = 2\n"
				   "coalesce = yes\n"
				   "[job z]\nkind = sleep\nmax_concurrent = 0\n");

	ck_assert_uint_eq(config_find_job(c, "a")->max_concurrent, 0);
	ck_assert(!config_find_job(c, "a")->coalesce);
	ck_assert_uint_eq(config_find_job(c, "b")->max_concurrent, 2);
	ck_assert(config_find_job(c, "b")->coalesce);
	ck_assert_uint_eq(config_find_job(c, "z")->max_concurrent, 0);
	config_unref(c);
}
END_TEST

static const struct { const char *text, *reason; int line; } bad_templates[] = {
	{ "[job a]\nkind = sleep\n[route /g/{n}]\njobs = a\n",
	  "route '/g/{n}': no job of the route declares {n}", 3 },
	{ "[job a]\nkind = sleep\nparam.n = string secret\n"
	  "[route /g/{n}]\njobs = a\n",
	  "route '/g/{n}': {n} is a secret parameter, and paths are logged",
	  4 },
	{ "[job a]\nkind = sleep\nparam.n = string\n"
	  "[job b]\nkind = sleep\nparam.n = string secret\n"
	  "[route /g/{n}]\njobs = a b\n",
	  "{n} is a secret parameter", 7 },
	{ "[job a]\nkind = sleep\nparam.n = string\n"
	  "[route /g/{n}/{n}]\njobs = a\n",
	  "route '/g/{n}/{n}' has {n} twice", 4 },
	{ "[job a]\nkind = sleep\nparam.n = string\nparam.m = string\n"
	  "[route /g/{n}]\njobs = a\n[route /g/{m}]\njobs = a\n",
	  "route '/g/{m}' takes the same paths as '/g/{n}' at line 5", 7 },
};

START_TEST(test_bad_path_template_is_refused_at_its_header)
{
	struct config_error err;

	load_refused(bad_templates[_i].text, &err);
	ck_assert_int_eq(err.line, bad_templates[_i].line);
	ck_assert_reason(err, bad_templates[_i].reason);
}
END_TEST

START_TEST(test_template_declared_by_one_job_of_the_route_is_enough)
{
	struct config *c = load_ok("[job a]\nkind = sleep\nparam.n = int\n"
				   "[job b]\nkind = sleep\n"
				   "[route /g/{n}]\njobs = a b\n");

	ck_assert_ptr_nonnull(config_find_route(c, "/g/12"));
	config_unref(c);
}
END_TEST

START_TEST(test_literal_route_wins_over_a_template)
{
	struct config *c = load_ok(
		"[job a]\nkind = sleep\nparam.x = string\nparam.y = string\n"
		"[route /a/{x}/c]\njobs = a\n[route /a/b/{y}]\njobs = a\n"
		"[route /a/b/c]\njobs = a\n[route /{x}/b/c]\njobs = a\n");

	ck_assert_str_eq(config_find_route(c, "/a/b/c")->path, "/a/b/c");
	ck_assert_str_eq(config_find_route(c, "/a/z/c")->path, "/a/{x}/c");
	ck_assert_str_eq(config_find_route(c, "/a/b/z")->path, "/a/b/{y}");
	ck_assert_str_eq(config_find_route(c, "/z/b/c")->path, "/{x}/b/c");
	config_unref(c);
}
END_TEST

START_TEST(test_template_takes_one_non_empty_segment)
{
	struct config *c = load_ok("[job a]\nkind = sleep\nparam.x = string\n"
				   "[route /g/{x}]\njobs = a\n");

	ck_assert_ptr_nonnull(config_find_route(c, "/g/x.y-z"));
	ck_assert_ptr_null(config_find_route(c, "/g/"));
	ck_assert_ptr_null(config_find_route(c, "/g"));
	ck_assert_ptr_null(config_find_route(c, "/g/a/b"));
	ck_assert_ptr_null(config_find_route(c, "/h/a"));
	config_unref(c);
}
END_TEST

START_TEST(test_declarations_come_before_other_keys_whatever_their_order)
{
	struct config *c = load_ok("[job a]\ntimeout = 2s\nkind = sleep\n"
				   "param.x = int default=3\n");

	ck_assert_uint_eq(config_find_job(c, "a")->nparams, 1);
	config_unref(c);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("shipped");
	tcase_add_test(tc, test_shipped_config_loads);
	tcase_add_test(tc, test_shipped_config_has_documented_server_pool_registry_log);
	tcase_add_test(tc, test_shipped_config_defines_the_five_seed_jobs);
	tcase_add_test(tc, test_shipped_config_routes_tasks_gathers_task1_and_task2);
	tcase_add_test(tc, test_shipped_config_routes_run_tasks_waits_for_first);
	tcase_add_test(tc, test_shipped_config_shows_a_job_of_each_kind_behind_a_route);
	suite_add_tcase(s, tc);

	tc = tcase_create("accepted");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_file_takes_every_default);
	tcase_add_test(tc, test_buffer_loads_like_a_file);
	tcase_add_test(tc, test_buffer_refuses_a_nul_byte_at_its_line);
	tcase_add_test(tc, test_every_fixed_key_is_read);
	tcase_add_test(tc, test_connection_timeout_rounds_up_to_whole_seconds);
	tcase_add_test(tc, test_job_and_route_defaults);
	tcase_add_test(tc, test_route_keys_are_read);
	tcase_add_test(tc, test_route_may_name_jobs_defined_after_it);
	tcase_add_test(tc, test_route_job_list_splits_on_spaces_tabs_and_commas);
	tcase_add_test(tc, test_route_may_list_64_jobs);
	tcase_add_test(tc, test_sleep_job_keys_are_read_in_any_order);
	tcase_add_test(tc, test_sleep_duration_equal_to_timeout_is_accepted);
	tcase_add_test(tc, test_job_timeout_of_7_days_is_accepted);
	tcase_add_test(tc, test_comment_lines_and_inline_semicolon_comments_are_ignored);
	tcase_add_test(tc, test_same_key_in_different_sections_is_accepted);
	tcase_add_test(tc, test_route_paths_next_to_reserved_ones_are_accepted);
	tcase_add_test(tc, test_job_name_of_64_characters_is_accepted);
	tcase_add_test(tc, test_line_of_198_characters_is_accepted);
	tcase_add_test(tc, test_utf8_byte_order_mark_is_skipped);
	tcase_add_test(tc, test_section_header_may_end_in_blanks_and_a_comment);
	tcase_add_test(tc, test_indented_lines_that_continue_nothing_are_accepted);
	tcase_add_test(tc, test_utf8_result_with_a_tab_is_kept_byte_for_byte);
	tcase_add_test(tc, test_durations_in_fractions_of_a_day_are_exact);
	tcase_add_test(tc, test_lookups_of_unknown_names_return_null);
	tcase_add_test(tc, test_ref_returns_the_same_config_and_keeps_it_alive);
	tcase_add_test(tc, test_unref_of_null_does_nothing);
	tcase_add_test(tc, test_store_defaults_to_memory_with_its_defaults);
	tcase_add_test(tc, test_store_keys_are_read);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unknown_section_is_refused_at_its_line);
	tcase_add_loop_test(tc, test_store_mistakes_are_refused_at_their_line,
			    0, NELEMS(bad_store));
	tcase_add_loop_test(tc, test_fixed_section_twice_is_refused_at_the_second,
			    0, NELEMS(fixed_sections));
	tcase_add_loop_test(tc, test_unknown_key_in_fixed_section_is_refused_at_its_line,
			    0, NELEMS(fixed_sections));
	tcase_add_test(tc, test_unknown_key_in_route_is_refused_at_its_line);
	tcase_add_test(tc, test_unreadable_cert_or_key_is_refused_at_its_line);
	tcase_add_test(tc, test_unknown_key_in_sleep_job_is_refused_at_its_line);
	tcase_add_test(tc, test_key_outside_any_section_is_refused_at_its_line);
	tcase_add_test(tc, test_key_set_twice_is_refused_at_the_second);
	tcase_add_test(tc, test_job_key_set_twice_is_refused_at_the_second);
	tcase_add_loop_test(tc, test_text_after_section_header_is_refused_at_its_line,
			    0, NELEMS(headers_with_trailing_text));
	tcase_add_loop_test(tc, test_indented_line_after_a_key_is_refused_as_a_continuation,
			    0, NELEMS(continuations));
	tcase_add_loop_test(tc, test_result_that_is_not_valid_utf8_is_refused_at_its_line,
			    0, NELEMS(not_utf8));
	tcase_add_loop_test(tc, test_result_with_a_control_character_is_refused_at_its_line,
			    0, NELEMS(control_characters));
	tcase_add_loop_test(tc, test_bad_bytes_in_a_header_key_or_value_are_refused_at_their_line,
			    0, NELEMS(bad_bytes_elsewhere));
	tcase_add_test(tc, test_nul_byte_is_refused_at_its_line);
	tcase_add_test(tc, test_reason_cut_short_stays_valid_utf8);
	tcase_add_loop_test(tc, test_bad_value_is_refused_at_its_line,
			    0, NELEMS(bad_values));
	tcase_add_loop_test(tc, test_bad_job_name_is_refused_at_its_header,
			    0, NELEMS(bad_job_names));
	tcase_add_test(tc, test_duplicate_job_is_refused_naming_the_first_line);
	tcase_add_test(tc, test_job_without_kind_is_refused_at_its_header);
	tcase_add_test(tc, test_unknown_kind_is_refused_at_the_kind_line);
	tcase_add_loop_test(tc, test_bad_job_timeout_is_refused_at_its_line,
			    0, NELEMS(bad_job_timeouts));
	tcase_add_loop_test(tc, test_bad_sleep_duration_is_refused_at_its_line,
			    0, NELEMS(bad_durations));
	tcase_add_test(tc, test_sleep_longer_than_timeout_is_refused_at_its_header);
	tcase_add_test(tc, test_sleep_longer_than_default_timeout_is_refused);
	tcase_add_loop_test(tc, test_bad_route_path_is_refused_at_its_header,
			    0, NELEMS(bad_route_paths));
	tcase_add_loop_test(tc, test_reserved_route_path_is_refused_at_its_header,
			    0, NELEMS(reserved_route_paths));
	tcase_add_test(tc, test_duplicate_route_is_refused_naming_the_first_line);
	tcase_add_test(tc, test_route_naming_unknown_job_is_refused_at_its_jobs_line);
	tcase_add_test(tc, test_route_without_jobs_is_refused_at_its_header);
	tcase_add_test(tc, test_route_with_empty_job_list_is_refused_at_its_jobs_line);
	tcase_add_test(tc, test_route_with_65_jobs_is_refused_at_its_jobs_line);
	tcase_add_test(tc, test_route_with_more_jobs_than_max_jobs_is_refused_at_its_jobs_line);
	tcase_add_test(tc, test_max_jobs_after_the_route_is_checked_too);
	tcase_add_test(tc, test_route_with_as_many_jobs_as_max_jobs_is_accepted);
	tcase_add_test(tc, test_pool_limits_smaller_or_larger_than_the_rest_are_accepted);
	tcase_add_test(tc, test_line_of_199_characters_is_refused_at_its_line);
	tcase_add_test(tc, test_full_last_line_without_newline_is_accepted);
	tcase_add_test(tc, test_section_header_without_bracket_is_refused_at_its_line);
	tcase_add_test(tc, test_line_without_equals_is_a_syntax_error_at_its_line);
	tcase_add_test(tc, test_syntax_error_before_a_bad_value_is_reported_first);
	tcase_add_test(tc, test_bad_value_before_a_syntax_error_is_reported_first);
	tcase_add_test(tc, test_syntax_error_is_reported_before_job_errors);
	tcase_add_test(tc, test_missing_file_is_refused_with_line_0_and_strerror);
	tcase_add_test(tc, test_directory_is_refused_with_line_0_read_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("parsers");
	tcase_add_loop_test(tc, test_parse_duration_accepts,
			    0, NELEMS(good_durations));
	tcase_add_loop_test(tc, test_parse_duration_refuses,
			    0, NELEMS(refused_durations));
	tcase_add_loop_test(tc, test_parse_duration_long_fractions_are_exact,
			    0, NELEMS(long_fraction_durations));
	tcase_add_loop_test(tc, test_parse_duration_fraction_of_nines_stays_below_one_unit,
			    0, NELEMS(duration_units));
	tcase_add_test(tc, test_parse_duration_leaves_ns_alone_when_refused);
	tcase_add_loop_test(tc, test_parse_size_accepts, 0, NELEMS(good_sizes));
	tcase_add_loop_test(tc, test_parse_size_refuses, 0, NELEMS(refused_sizes));
	tcase_add_test(tc, test_parse_listen_takes_ipv4_address_and_port);
	tcase_add_test(tc, test_parse_listen_takes_bracketed_ipv6_and_port_0);
	tcase_add_test(tc, test_parse_listen_takes_star_as_any_ipv4_address);
	tcase_add_loop_test(tc, test_parse_listen_refuses,
			    0, NELEMS(refused_listens));
	tcase_add_loop_test(tc, test_parse_listen_takes_a_scheme,
			    0, NELEMS(schemed_listens));
	tcase_add_test(tc, test_parse_uint_accepts_the_bounds_and_refuses_beyond);
	tcase_add_test(tc, test_parse_bool_takes_yes_true_on_and_no_false_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("params");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bad_declaration_is_refused_at_its_line,
			    0, NELEMS(bad_decls));
	tcase_add_test(tc, test_33rd_declaration_is_refused_at_its_line);
	tcase_add_test(tc, test_issue_example_declarations_are_read_with_their_options);
	tcase_add_test(tc, test_pattern_runs_to_the_end_of_the_line);
	tcase_add_test(tc, test_quoted_default_may_hold_blanks);
	tcase_add_test(tc, test_max_concurrent_and_coalesce_are_read_with_defaults);
	tcase_add_loop_test(tc, test_bad_path_template_is_refused_at_its_header,
			    0, NELEMS(bad_templates));
	tcase_add_test(tc, test_template_declared_by_one_job_of_the_route_is_enough);
	tcase_add_test(tc, test_literal_route_wins_over_a_template);
	tcase_add_test(tc, test_template_takes_one_non_empty_segment);
	tcase_add_test(tc, test_declarations_come_before_other_keys_whatever_their_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
