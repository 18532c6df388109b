/*
 * check_http_kind.c - kind http without a network: its keys as the config
 * reads them (what a job section may say, what is refused at load and
 * why), the request rendered from a job's parameters, and the pure pieces
 * (what counts as JSON, UTF-8 repair, the retry backoff's bounds).  The
 * transfers themselves are tested against a real upstream by
 * tests/system/test_http.py.
 *
 * Definitions are built by hand with the parameter declarations that the
 * config would have read, as check_template.c does.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "future.h"
#include "job.h"
#include "kinds/http_kind.h"
#include "kinds/kinds.h"
#include "params.h"
#include "timer.h"

static struct param_decl decls[] = {
	{ .name = "name", .type = PARAM_STRING },
	{ .name = "n", .type = PARAM_INT },
};

/* A job definition of kind http with keys (NULL-ended pairs) applied. */
static int
load(struct job_def *def, const char *const *keys, char *why, size_t whylen)
{
	int rc;

	memset(def, 0, sizeof(*def));
	def->name = "t";
	def->kind = &job_kind_http;
	def->timeout_ns = 60 * 1000000000LL;
	def->nparams = 2;
	def->params = decls;
	for (; keys[0] != NULL; keys += 2) {
		rc = job_kind_http.parse(def, keys[0], keys[1], why, whylen);
		ck_assert_msg(rc != 1, "key %s unknown", keys[0]);
		if (rc != 0)
			return rc;
	}
	return job_kind_http.check(def, why, whylen);
}

/* Asserts that keys are refused with a reason holding want. */
static void
assert_refused(const char *const *keys, const char *want)
{
	struct job_def def;
	char why[256] = "";

	ck_assert_int_eq(load(&def, keys, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, want) != NULL, "why: '%s', want '%s'", why,
		      want);
	job_kind_http.free(def.kind_data);
}

START_TEST(test_defaults_of_a_job_with_only_a_url)
{
	const char *keys[] = { "url", "http://127.0.0.1:1/", NULL };
	struct job_def def;
	struct http_def *hd;
	char why[256];

	ck_assert_int_eq(load(&def, keys, why, sizeof(why)), 0);
	hd = def.kind_data;
	ck_assert_str_eq(hd->method, "GET");
	ck_assert_int_eq(hd->retries, 0);
	ck_assert(hd->connect_timeout_ns == 10 * 1000000000LL);
	ck_assert(hd->max_response == 1024 * 1024);
	ck_assert(!hd->follow_redirects);
	ck_assert_ptr_null(hd->body);
	job_kind_http.free(def.kind_data);
}
END_TEST

START_TEST(test_url_holes_are_url_encoded_and_body_holes_json)
{
	const char *keys[] = {
		"url", "https://example.test/greet/{name}?n={n}",
		"method", "POST",
		"header.X-Name", "{name}",
		"body", "{\"name\": {name}, \"n\": {n}}",
		NULL,
	};
	json_t *params = json_pack("{s:s, s:i}", "name", "a b/\"c\"", "n", 7);
	struct http_request req;
	struct curl_slist *l;
	struct job_def def;
	char why[256];

	ck_assert_msg(load(&def, keys, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(http_request_render(def.kind_data, params, &req, why,
					     sizeof(why)), 0);
	ck_assert_str_eq(req.url,
			 "https://example.test/greet/a%20b%2F%22c%22?n=7");
	ck_assert_str_eq(req.body, "{\"name\": \"a b/\\\"c\\\"\", \"n\": 7}");
	ck_assert_uint_eq(req.body_len, strlen(req.body));
	l = req.headers;
	ck_assert_str_eq(l->data, "X-Name: a b/\"c\"");
	ck_assert_str_eq(l->next->data, "Content-Type: application/json");
	ck_assert_ptr_null(l->next->next);
	http_request_clear(&req);
	json_decref(params);
	job_kind_http.free(def.kind_data);
}
END_TEST

START_TEST(test_a_header_content_type_replaces_the_json_default)
{
	const char *keys[] = {
		"url", "http://h/", "method", "PUT",
		"header.content-type", "application/merge-patch+json",
		"body", "{}", NULL,
	};
	struct http_request req;
	struct job_def def;
	char why[256];

	ck_assert_int_eq(load(&def, keys, why, sizeof(why)), 0);
	ck_assert_int_eq(http_request_render(def.kind_data, NULL, &req, why,
					     sizeof(why)), 0);
	ck_assert_str_eq(req.headers->data,
			 "content-type: application/merge-patch+json");
	ck_assert_ptr_null(req.headers->next);
	http_request_clear(&req);
	job_kind_http.free(def.kind_data);
}
END_TEST

START_TEST(test_a_header_value_with_a_newline_fails_the_job)
{
	const char *keys[] = { "url", "http://h/", "header.X-Name", "{name}",
			       NULL };
	json_t *params = json_pack("{s:s, s:i}", "name", "a\r\nX-Evil: 1",
				   "n", 1);
	struct http_request req;
	struct job_def def;
	char why[256];

	ck_assert_int_eq(load(&def, keys, why, sizeof(why)), 0);
	ck_assert_int_eq(http_request_render(def.kind_data, params, &req, why,
					     sizeof(why)), -1);
	ck_assert_str_eq(why, "header X-Name: its value holds a control "
			 "character");
	ck_assert_ptr_null(req.url);
	json_decref(params);
	job_kind_http.free(def.kind_data);
}
END_TEST

START_TEST(test_load_refuses_what_cannot_be_sent)
{
	const char *no_url[] = { "method", "GET", NULL };
	const char *ftp[] = { "url", "ftp://h/x", NULL };
	const char *relative[] = { "url", "/x", NULL };
	const char *hole_scheme[] = { "url", "{name}://h/", NULL };
	const char *undeclared[] = { "url", "http://h/{who}", NULL };
	const char *get_body[] = { "url", "http://h/", "body", "{}", NULL };
	const char *hole_in_string[] = { "url", "http://h/", "method", "POST",
					 "body", "{\"a\": \"hi {name}\"}", NULL };
	const char *bad_name[] = { "url", "http://h/", "header.X Y", "1",
				   NULL };
	const char *length[] = { "url", "http://h/",
				 "header.Content-Length", "1", NULL };
	const char *twice[] = { "url", "http://h/", "header.X-A", "1",
				"header.x-a", "2", NULL };
	const char *method[] = { "url", "http://h/", "method", "get", NULL };
	const char *retries[] = { "url", "http://h/", "retries", "11", NULL };
	const char *size[] = { "url", "http://h/", "max_response", "0", NULL };
	const char *backoff[] = { "url", "http://h/", "retry_base", "2s",
				  "retry_max", "1s", NULL };

	assert_refused(no_url, "an http job needs a url");
	assert_refused(ftp, "url 'ftp://h/x' is not http or https");
	assert_refused(relative, "bad url '/x'");
	assert_refused(hole_scheme, "bad url 'x://h/'");
	assert_refused(undeclared, "{who} names no declared parameter");
	assert_refused(get_body, "a body needs method POST, PUT, PATCH or "
		       "DELETE (method is GET)");
	assert_refused(hole_in_string, "body is not JSON once its holes are "
		       "filled");
	assert_refused(bad_name, "bad header name 'X Y'");
	assert_refused(length, "header Content-Length is libcurl's to set");
	assert_refused(twice, "header x-a is given twice");
	assert_refused(method, "bad value 'get' for method");
	assert_refused(retries, "bad value '11' for retries (expected 0 to "
		       "10)");
	assert_refused(size, "bad value '0' for max_response");
	assert_refused(backoff, "retry_base is longer than retry_max");
}
END_TEST

START_TEST(test_what_counts_as_json)
{
	ck_assert(http_content_type_is_json("application/json"));
	ck_assert(http_content_type_is_json("Application/JSON; charset=utf-8"));
	ck_assert(http_content_type_is_json("application/problem+json"));
	ck_assert(http_content_type_is_json("application/vnd.api+json;v=1"));
	ck_assert(!http_content_type_is_json(NULL));
	ck_assert(!http_content_type_is_json("text/plain"));
	ck_assert(!http_content_type_is_json("application/jsonx"));
	ck_assert(!http_content_type_is_json("text/json-seq"));
	ck_assert(!http_content_type_is_json("+json"));
	ck_assert(!http_content_type_is_json("application/+json"));
}
END_TEST

START_TEST(test_invalid_utf8_and_nul_become_replacement_characters)
{
	static const struct { const char *in; size_t len; const char *out; }
	cases[] = {
		{ "plain", 5, "plain" },
		{ "caf\xc3\xa9", 5, "caf\xc3\xa9" },
		{ "caf\xe9!", 5, "caf\xef\xbf\xbd!" },
		{ "a\0b", 3, "a\xef\xbf\xbd" "b" },
		{ "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },	/* overlong */
		{ "\xed\xa0\x80", 3,				/* surrogate */
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
		{ "\xf0\x9f\x98", 3,				/* cut short */
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	};
	size_t i;
	char *out;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = http_text_to_utf8(cases[i].in, cases[i].len);
		ck_assert_ptr_nonnull(out);
		ck_assert_msg(!strcmp(out, cases[i].out), "case %zu", i);
		free(out);
	}
}
END_TEST

START_TEST(test_backoff_stays_within_full_jitter_bounds)
{
	const int64_t base = 100000000, max = 10000000000LL;
	int64_t ceiling = base, w;
	uint64_t r;
	unsigned retry;

	for (retry = 1; retry <= 40; retry++) {
		for (r = 0; r < 2000; r++) {
			w = http_backoff_ns(retry, base, max,
					    r * 0x9e3779b97f4a7c15ULL);
			ck_assert(w >= 0 && w <= ceiling);
		}
		/* The ceiling itself is reachable, and 0 is. */
		ck_assert(http_backoff_ns(retry, base, max,
					  (uint64_t)ceiling) == ceiling);
		ck_assert(http_backoff_ns(retry, base, max, 0) == 0);
		ceiling = ceiling * 2 > max ? max : ceiling * 2;
	}
	ck_assert(http_backoff_ns(1, base, max, UINT64_MAX) <= base);
	ck_assert(http_backoff_ns(UINT32_MAX, base, max, UINT64_MAX) <= max);
}
END_TEST

/* ---- a transfer against a one-shot upstream ------------------------------ */

/*
 * An upstream for one request, on a thread: it reads the request head,
 * then (before it answers) raises the instance's cancel mark the way a
 * cancel racing the transfer's end does: set while the kind's thread is
 * in curl, too late for its scan of cancels.
 */
struct one_shot {
	int listen_fd;
	struct job_instance *inst;
};

static void *
one_shot_main(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: "
		"text/plain\r\nContent-Length: 2\r\nConnection: close\r\n"
		"\r\nok";
	struct one_shot *os = arg;
	char head[4096];
	size_t len = 0;
	ssize_t n;
	int fd = accept(os->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (len < sizeof(head) - 1 &&
	       (n = read(fd, head + len, sizeof(head) - 1 - len)) > 0) {
		len += (size_t)n;
		head[len] = '\0';
		if (strstr(head, "\r\n\r\n") != NULL)
			break;
	}
	atomic_store(&os->inst->cancel_requested, true);
	if (write(fd, answer, sizeof(answer) - 1) < 0)
		perror("one_shot: write");
	close(fd);
	return NULL;
}

struct done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void
on_done(struct future *f, void *arg)
{
	struct done *d = arg;

	(void)f;
	pthread_mutex_lock(&d->lock);
	d->done = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/*
 * A cancel that lands while the transfer finishes: the job ends CANCELLED
 * and its body is freed once.  (clang's analyzer found that the body was
 * freed, then handed to the future, which frees it again: ASan's double
 * free here.)
 */
START_TEST(test_a_cancel_as_the_transfer_ends_frees_the_body_once)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct done d = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			  false };
	struct future_waiter w;
	struct config_error err;
	struct one_shot os;
	struct job_env env;
	struct timer *timer;
	struct config *cfg;
	pthread_t thread;
	char text[256], why[256];

	ck_assert_int_eq(kinds_global_init(why, sizeof(why)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	os.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(os.listen_fd, 0);
	ck_assert_int_eq(bind(os.listen_fd, (struct sockaddr *)&sin,
			      sizeof(sin)), 0);
	ck_assert_int_eq(listen(os.listen_fd, 1), 0);
	ck_assert_int_eq(getsockname(os.listen_fd, (struct sockaddr *)&sin,
				     &slen), 0);
	snprintf(text, sizeof(text), "[job up]\nkind = http\n"
		 "url = http://127.0.0.1:%u/\n", ntohs(sin.sin_port));
	cfg = config_load_buffer("up.conf", text, strlen(text), &err);
	ck_assert_msg(cfg != NULL, "line %d: %s", err.line, err.text);
	timer = timer_new();
	ck_assert_ptr_nonnull(timer);
	job_env_init(&env, "t", timer, NULL);
	atomic_store(&env.log_jobs, false);
	ck_assert_int_eq(kinds_open(&env), 0);

	os.inst = job_new(&env, cfg, config_find_job(cfg, "up"), NULL);
	ck_assert_ptr_nonnull(os.inst);
	ck_assert_int_eq(pthread_create(&thread, NULL, one_shot_main, &os), 0);
	future_on_done(os.inst->future, &w, on_done, &d);
	ck_assert_int_eq(job_run(os.inst), 0);
	pthread_mutex_lock(&d.lock);
	while (!d.done)
		pthread_cond_wait(&d.cond, &d.lock);
	pthread_mutex_unlock(&d.lock);
	ck_assert_str_eq(future_state_name(future_state(os.inst->future)),
			 future_state_name(FUTURE_CANCELLED));
	ck_assert_ptr_null(future_result(os.inst->future));

	pthread_join(thread, NULL);
	job_unref(os.inst);
	kinds_close(&env);
	timer_free(timer);
	job_env_clear(&env);
	config_unref(cfg);
	close(os.listen_fd);
}
END_TEST

static Suite *
http_kind_suite(void)
{
	Suite *s = suite_create("http_kind");
	TCase *tc = tcase_create("keys, requests, responses");

	tcase_add_test(tc, test_defaults_of_a_job_with_only_a_url);
	tcase_add_test(tc, test_url_holes_are_url_encoded_and_body_holes_json);
	tcase_add_test(tc, test_a_header_content_type_replaces_the_json_default);
	tcase_add_test(tc, test_a_header_value_with_a_newline_fails_the_job);
	tcase_add_test(tc, test_load_refuses_what_cannot_be_sent);
	tcase_add_test(tc, test_what_counts_as_json);
	tcase_add_test(tc, test_invalid_utf8_and_nul_become_replacement_characters);
	tcase_add_test(tc, test_backoff_stays_within_full_jitter_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("transfers");
	tcase_add_test(tc, test_a_cancel_as_the_transfer_ends_frees_the_body_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(http_kind_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
