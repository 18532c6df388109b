/*
 * check_api_answer.c - a run's answers, rendered without a tree, are byte
 * for byte the documents the jansson trees made before: every shape (all,
 * first, any, none, the deadline's problem, the failures' problems), every
 * state of its jobs, results plain, JSON and absent, and thousands of
 * random runs; and what the trees could not build (a result that is not
 * UTF-8) is refused too, so that the caller answers its fixed 500.
 * Problem documents alone (http_problem_body()) likewise.
 *
 * The reference is the tree builder as it was (reference_build(), from
 * the library's own api_job_link(), api_json_result() and
 * http_problem_new()), dumped with json_dumps() and flags 0 as
 * http_json_dump() dumped it.  The runs are bare calls whose jobs are bare
 * instances: the answer reads only their ids and job names.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_answer.h"
#include "api_call.h"
#include "api_json.h"
#include "http.h"

/* ---- the reference: the tree builder as it was ---------------------- */

static unsigned
reference_failure_status(const struct call *c,
			 const struct future_snapshot *snaps, size_t *bad)
{
	bool failed = false, timed_out = false, cancelled = false;
	size_t i;

	*bad = 0;
	for (i = 0; i < c->njobs; i++) {
		if (snaps[i].state == FUTURE_SUCCEEDED)
			continue;
		failed |= snaps[i].state == FUTURE_FAILED;
		timed_out |= snaps[i].state == FUTURE_TIMED_OUT;
		cancelled |= snaps[i].state == FUTURE_CANCELLED;
		(*bad)++;
	}
	return failed ? 502 : timed_out ? 504 : cancelled ? 503 : 200;
}

static json_t *
reference_jobs_problem(const struct call *c,
		       const struct future_snapshot *snaps, unsigned status,
		       const char *detail)
{
	json_t *jobs = json_array(), *pending = json_array(), *j;
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		j = api_object_set(api_job_link(c->jobs[i]), "state",
				   json_string(future_state_name(snaps[i].state)));
		if (snaps[i].state == FUTURE_SUCCEEDED)
			j = api_object_set(j, "result",
					   api_json_result(&snaps[i]));
		else
			j = api_object_set(j, "error", api_json_string_or_null(
						   snaps[i].error));
		jobs = api_array_append(jobs, j);
		if (!future_state_is_done(snaps[i].state))
			pending = api_array_append(pending,
						   api_job_link(c->jobs[i]));
	}
	j = api_object_set(http_problem_new(status, detail), "jobs", jobs);
	if (json_array_size(pending) == 0) {
		json_decref(pending);
		return j;
	}
	return api_object_set(j, "pending", pending);
}

static json_t *
reference_tree(const struct call *c, const struct future_snapshot *snaps,
	       bool expired, int winner, unsigned *status)
{
	json_t *a;
	size_t i, bad, w = winner < 0 ? 0 : (size_t)winner;
	char detail[128];

	if (expired) {
		*status = 504;
		snprintf(detail, sizeof(detail), "the deadline of %.3f s "
			 "passed; unfinished jobs %s", (double)c->timeout_ns /
			 1e9, c->losers == ROUTE_LOSERS_CANCEL ?
			 "are cancelled" : "go on");
		return reference_jobs_problem(c, snaps, 504, detail);
	}
	if (c->wait == RUN_WAIT_NONE) {
		*status = 202;
		a = json_array();
		for (i = 0; i < c->njobs; i++)
			a = api_array_append(a, api_job_link(c->jobs[i]));
		return api_object_set(json_object(), "jobs", a);
	}
	if (c->wait == RUN_WAIT_ALL) {
		*status = reference_failure_status(c, snaps, &bad);
		if (*status != 200)
			return reference_jobs_problem(c, snaps, *status,
				bad == 1 ? "a job did not succeed" :
				"jobs did not succeed");
		a = json_array();
		for (i = 0; i < c->njobs; i++)
			a = api_array_append(a, api_json_result(&snaps[i]));
		return api_object_set(json_object(), "results", a);
	}
	if (snaps[w].state != FUTURE_SUCCEEDED) {
		*status = reference_failure_status(c, snaps, &bad);
		if (*status == 200)
			*status = 502;
		return reference_jobs_problem(c, snaps, *status,
			"the awaited job did not succeed");
	}
	*status = 200;
	a = json_array();
	for (i = 0; i < c->njobs; i++)
		if (i != w)
			a = api_array_append(a, api_job_link(c->jobs[i]));
	return api_object_set(api_object_set(api_object_set(json_object(),
		"result", api_json_result(&snaps[w])), "job",
		json_string(c->jobs[w]->def->name)), "pending", a);
}

/* The reference's text, new; NULL where the tree could not be built. */
static char *
reference_build(const struct call *c, const struct future_snapshot *snaps,
		bool expired, int winner, unsigned *status)
{
	json_t *tree = reference_tree(c, snaps, expired, winner, status);
	char *text = tree != NULL ? json_dumps(tree, 0) : NULL;

	json_decref(tree);
	return text;
}

/* ---- bare runs -------------------------------------------------------- */

struct bare_run {
	struct job_def defs[CONFIG_ROUTE_JOBS_MAX];
	struct job_instance insts[CONFIG_ROUTE_JOBS_MAX];
	struct future_snapshot snaps[CONFIG_ROUTE_JOBS_MAX];
	struct call *c;
};

/* A run of n jobs named after names[] (borrowed), all running. */
static struct bare_run *
bare_run(enum run_policy wait, size_t n, const char *const *names)
{
	struct bare_run *r = calloc(1, sizeof(*r));
	size_t i;

	ck_assert_ptr_nonnull(r);
	r->c = calloc(1, sizeof(*r->c) + n * sizeof(r->c->jobs[0]));
	ck_assert_ptr_nonnull(r->c);
	r->c->wait = wait;
	r->c->timeout_ns = 2500000000;
	r->c->njobs = n;
	for (i = 0; i < n; i++) {
		r->defs[i].name = (char *)names[i % 3];
		r->insts[i].def = &r->defs[i];
		snprintf(r->insts[i].id, sizeof(r->insts[i].id),
			 "%s-0000abcd-%zu", names[i % 3], i + 1);
		r->c->jobs[i] = &r->insts[i];
		r->snaps[i].state = FUTURE_RUNNING;
	}
	return r;
}

static void
bare_run_free(struct bare_run *r)
{
	free(r->c);
	free(r);
}

static const char *const names[] = { "task1", "task2", "first" };

/*
 * The answer of r rendered is the reference's, with its status; or both
 * are refused.  Returns whether there was an answer.
 */
static bool
expect_reference(struct bare_run *r, bool expired, int winner)
{
	unsigned want_status = 0, got_status = 0;
	size_t len = 0;
	char *want = reference_build(r->c, r->snaps, expired, winner,
				     &want_status);
	char *got = api_answer_render(r->c, r->snaps, expired, winner,
				      &got_status, &len);

	if (want == NULL) {
		ck_assert_msg(got == NULL, "the tree fails, rendered %s", got);
		return false;
	}
	ck_assert_msg(got != NULL, "the tree is %s, rendering fails", want);
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_uint_eq(got_status, want_status);
	free(want);
	free(got);
	return true;
}

static void
succeed(struct bare_run *r, size_t i, const char *result, unsigned flags)
{
	r->snaps[i].state = FUTURE_SUCCEEDED;
	r->snaps[i].result = result;
	r->snaps[i].result_flags = flags;
}

/* ---- the shapes ------------------------------------------------------- */

START_TEST(test_all_succeeded_is_the_results)
{
	struct bare_run *r = bare_run(RUN_WAIT_ALL, 2, names);

	succeed(r, 0, "Task 1 done", 0);
	succeed(r, 1, "Task 2 done", 0);
	ck_assert(expect_reference(r, false, 1));
	/* And the text itself, once, as taskpoold(8) shows it. */
	{
		unsigned status;
		size_t len;
		char *got = api_answer_render(r->c, r->snaps, false, 1,
					      &status, &len);

		ck_assert_str_eq(got, "{\"results\": [\"Task 1 done\", "
				 "\"Task 2 done\"]}");
		ck_assert_uint_eq(status, 200);
		free(got);
	}
	bare_run_free(r);
}
END_TEST

START_TEST(test_first_and_any_are_the_winner_and_pending_links)
{
	enum run_policy p;
	size_t n;
	int w;

	for (p = RUN_WAIT_FIRST; p <= RUN_WAIT_ANY; p++)
		for (n = 1; n <= 4; n++)
			for (w = -1; w < (int)n; w++) {
				struct bare_run *r = bare_run(p, n, names);

				succeed(r, w < 0 ? 0 : (size_t)w, "won", 0);
				ck_assert(expect_reference(r, false, w));
				bare_run_free(r);
			}
}
END_TEST

START_TEST(test_none_is_the_links)
{
	size_t n;

	for (n = 0; n <= 3; n++) {
		struct bare_run *r = bare_run(RUN_WAIT_NONE, n, names);

		ck_assert(expect_reference(r, false, -1));
		bare_run_free(r);
	}
}
END_TEST

/* Every pair of states of two jobs, under each policy and the deadline. */
START_TEST(test_every_state_under_every_policy)
{
	enum future_state a, b;
	enum run_policy p;
	int expired, w;

	for (p = RUN_WAIT_ALL; p <= RUN_WAIT_NONE; p++)
	for (a = FUTURE_QUEUED; a <= FUTURE_TIMED_OUT; a++)
	for (b = FUTURE_QUEUED; b <= FUTURE_TIMED_OUT; b++)
	for (expired = 0; expired <= 1; expired++)
	for (w = -1; w <= 1; w++) {
		struct bare_run *r = bare_run(p, 2, names);

		r->snaps[0].state = a;
		r->snaps[1].state = b;
		r->snaps[0].error = a == FUTURE_FAILED ? "exit 1:\n\"boom\"" :
				    NULL;
		r->snaps[1].error = b == FUTURE_TIMED_OUT ? "timed out" : NULL;
		if (a == FUTURE_SUCCEEDED)
			r->snaps[0].result = "one";
		if (b == FUTURE_SUCCEEDED)
			r->snaps[1].result = NULL;	/* none: null */
		r->c->losers = (enum route_losers)(w & 1);
		ck_assert(expect_reference(r, expired, w));
		bare_run_free(r);
	}
}
END_TEST

/*
 * JSON results are loaded and dumped as before (reformatted); one that
 * does not parse is shown as its text.
 */
START_TEST(test_json_results_come_out_as_before)
{
	static const char *results[] = {
		"{\"a\":1,\"b\":[1,2.5,\"x\",null,true,false],\"c\":{}}",
		"[ ]", "  42 ", "-0.5", "\"str\\u00e9\\n\"", "null", "1e5",
		"{\"z\": {\"y\": [{\"x\": \"\\u0001\"}]}}", "not json {",
		"{\"dup\": 1, \"dup\": 2}", "",
	};
	enum run_policy p;
	size_t i;

	for (p = RUN_WAIT_ALL; p <= RUN_WAIT_ANY; p++)
		for (i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
			struct bare_run *r = bare_run(p, 2, names);

			succeed(r, 0, results[i], FUTURE_RESULT_JSON);
			succeed(r, 1, results[i], FUTURE_RESULT_JSON |
				FUTURE_RESULT_TRUNCATED);
			ck_assert(expect_reference(r, false, 0));
			r->snaps[1].state = FUTURE_FAILED;
			ck_assert(expect_reference(r, false, 0));
			bare_run_free(r);
		}
}
END_TEST

/* Results and errors with every escape, and names that need one. */
START_TEST(test_strings_are_escaped_as_before)
{
	static const char *const odd[] = { "a\"b", "c\\d", "e/f" };
	struct bare_run *r = bare_run(RUN_WAIT_ALL, 3, odd);

	succeed(r, 0, "\"\\/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80", 0);
	succeed(r, 1, "", 0);
	succeed(r, 2, "plain", 0);
	ck_assert(expect_reference(r, false, -1));
	r->snaps[2].state = FUTURE_FAILED;
	r->snaps[2].error = "\x02 failed: \"quoted\"\n";
	ck_assert(expect_reference(r, false, -1));
	r->c->wait = RUN_WAIT_FIRST;
	ck_assert(expect_reference(r, false, 1));
	r->c->wait = RUN_WAIT_NONE;
	ck_assert(expect_reference(r, false, -1));
	bare_run_free(r);
}
END_TEST

/*
 * A result or error that is not UTF-8 made json_string() fail, and the
 * whole answer with it: the renderer refuses it too, never a shorter
 * answer.
 */
START_TEST(test_invalid_utf8_is_refused_as_before)
{
	enum run_policy p;

	for (p = RUN_WAIT_ALL; p <= RUN_WAIT_ANY; p++) {
		struct bare_run *r = bare_run(p, 2, names);

		succeed(r, 0, "bad \xc3", 0);
		succeed(r, 1, "fine", 0);
		ck_assert(!expect_reference(r, false, 0));
		succeed(r, 0, "bad \xed\xa0\x80", FUTURE_RESULT_JSON);
		ck_assert(!expect_reference(r, false, 0));
		r->snaps[0].state = FUTURE_FAILED;
		r->snaps[0].error = "\xff error";
		ck_assert(!expect_reference(r, false, 0));
		ck_assert(!expect_reference(r, true, 0));
		bare_run_free(r);
	}
}
END_TEST

/* The most jobs a route has, with long results: past the stack part. */
START_TEST(test_big_answers_grow_the_buffer)
{
	struct bare_run *r = bare_run(RUN_WAIT_ALL, CONFIG_ROUTE_JOBS_MAX,
				      names);
	char *big = malloc(3 * JSON_OUT_STACK);
	size_t i;

	ck_assert_ptr_nonnull(big);
	memset(big, '\n', 3 * JSON_OUT_STACK - 1);
	big[3 * JSON_OUT_STACK - 1] = '\0';
	for (i = 0; i < CONFIG_ROUTE_JOBS_MAX; i++)
		succeed(r, i, i % 2 ? big : "[1, 2, {\"k\": \"v\"}]",
			i % 2 ? 0 : FUTURE_RESULT_JSON);
	ck_assert(expect_reference(r, false, -1));
	r->snaps[5].state = FUTURE_CANCELLED;
	ck_assert(expect_reference(r, false, -1));
	ck_assert(expect_reference(r, true, -1));
	free(big);
	bare_run_free(r);
}
END_TEST

static uint64_t
next_random(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Thousands of random runs: policy, size, states, results, deadline. */
START_TEST(test_random_runs_match_the_reference)
{
	static const char *results[] = { "Task 1 done", NULL, "", "\t\"x\"",
					 "{\"a\": [1,2]}", "caf\xc3\xa9",
					 "bad \xc3", "3.25" };
	static const char *errors[] = { NULL, "exit 2", "cancelled \"now\"",
					"\xe2\x82" };
	uint64_t state = 31, x;
	unsigned answered = 0, refused = 0;
	size_t n, i;
	int k;

	for (k = 0; k < 5000; k++) {
		struct bare_run *r;

		x = next_random(&state);
		n = 1 + x % 6;
		r = bare_run((enum run_policy)((x >> 8) % 4), n, names);
		r->c->losers = (enum route_losers)((x >> 12) & 1);
		r->c->timeout_ns = (int64_t)((x >> 16) % 100000) * 1000000;
		for (i = 0; i < n; i++) {
			x = next_random(&state);
			r->snaps[i].state = (enum future_state)(x % 6);
			r->snaps[i].result = results[(x >> 8) % 8];
			r->snaps[i].result_flags = (x >> 16) & 1 ?
						   FUTURE_RESULT_JSON : 0;
			r->snaps[i].error = errors[(x >> 24) % 4];
		}
		x = next_random(&state);
		if (expect_reference(r, (x & 7) == 0,
				     (int)((x >> 8) % (n + 1)) - 1))
			answered++;
		else
			refused++;
		bare_run_free(r);
	}
	ck_assert_uint_gt(answered, 1000);
	ck_assert_uint_gt(refused, 100);
}
END_TEST

/* The problem's head, left open, is http_problem_new()'s. */
START_TEST(test_problem_open_is_the_problem)
{
	static const unsigned statuses[] = { 400, 404, 500, 502, 503, 504,
					     299 };
	struct json_out o;
	json_t *p;
	size_t i, len;
	char *want, *got;

	for (i = 0; i < 2 * sizeof(statuses) / sizeof(statuses[0]); i++) {
		const char *detail = i % 2 ? NULL : "why \"not\"\n";
		unsigned s = statuses[i / 2];

		p = http_problem_new(s, detail);
		want = json_dumps(p, 0);
		json_decref(p);
		json_out_init(&o);
		http_problem_open(&o, s, detail);
		json_out_literal(&o, "}");
		got = json_out_finish(&o, &len);
		ck_assert_str_eq(got, want);
		free(got);
		got = http_problem_body(&s, detail, &len);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(len, strlen(want));
		ck_assert_uint_eq(s, statuses[i / 2]);
		free(want);
		free(got);
	}
}
END_TEST

/* A detail that is not UTF-8 answers the fixed 500, as the tree did. */
START_TEST(test_problem_body_falls_back_as_before)
{
	unsigned s1 = 400, s2 = 400;
	size_t l1, l2;
	char *want = http_answer_body(http_problem_new(400, "bad \xc0\xaf"),
				      &s1, &l1);
	char *got = http_problem_body(&s2, "bad \xc0\xaf", &l2);

	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(s2, 500);
	ck_assert_uint_eq(s1, 500);
	ck_assert_uint_eq(l2, l1);
	free(want);
	free(got);
}
END_TEST

static Suite *
api_answer_suite(void)
{
	Suite *s = suite_create("api_answer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_all_succeeded_is_the_results);
	tcase_add_test(tc, test_first_and_any_are_the_winner_and_pending_links);
	tcase_add_test(tc, test_none_is_the_links);
	tcase_add_test(tc, test_every_state_under_every_policy);
	tcase_add_test(tc, test_json_results_come_out_as_before);
	tcase_add_test(tc, test_strings_are_escaped_as_before);
	tcase_add_test(tc, test_invalid_utf8_is_refused_as_before);
	tcase_add_test(tc, test_big_answers_grow_the_buffer);
	tcase_add_test(tc, test_random_runs_match_the_reference);
	tcase_add_test(tc, test_problem_open_is_the_problem);
	tcase_add_test(tc, test_problem_body_falls_back_as_before);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(api_answer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
