/*
 * check_metrics.c - unit tests for src/metrics.c and src/metrics_text.c.
 *
 * The contract is metrics.h's: families render in the text format 0.0.4
 * exactly (HELP and TYPE lines, label values and help escaped, histogram
 * buckets cumulative with +Inf, _sum and _count); a family holds at most
 * max_series series, and the rest count in the all-"other" one; counts
 * from many threads at once add up exactly, while new series are made.
 * Also the daemon's request observer (api_metrics.c), whose series found
 * by label pointers must count exactly what a lookup by value would.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_metrics.h"
#include "metrics.h"

/* Renders m and checks the whole text. */
static void
check_render(struct metrics *m, const char *expected)
{
	size_t len;
	char *text = metrics_render(m, &len);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, expected);
	ck_assert_uint_eq(len, strlen(expected));
	free(text);
}

static struct metrics_family *
counter(struct metrics *m, const char *name, const char *help,
	const char *label, size_t max_series)
{
	struct metrics_desc d = {
		.type = METRICS_COUNTER, .name = name, .help = help,
		.labels = { label }, .nlabels = label != NULL,
		.max_series = max_series,
	};
	struct metrics_family *f = metrics_family_new(m, &d);

	ck_assert_ptr_nonnull(f);
	return f;
}

START_TEST(test_an_empty_set_renders_as_an_empty_text)
{
	struct metrics *m = metrics_new(4);

	check_render(m, "");
	metrics_free(m);
}
END_TEST

START_TEST(test_counter_gauge_and_histogram_render_exactly)
{
	static const double bounds[] = { 0.125, 1, 2.5 };
	struct metrics_desc requests = {
		.type = METRICS_COUNTER, .name = "t_requests_total",
		.help = "Requests, a \\ and a \"quote\"\non two lines.",
		.labels = { "route", "code" }, .nlabels = 2, .max_series = 8,
	};
	struct metrics_desc depth = {
		.type = METRICS_GAUGE, .name = "t_depth", .help = "Depth.",
	};
	struct metrics_desc seconds = {
		.type = METRICS_HISTOGRAM, .name = "t_seconds",
		.help = "Durations.", .labels = { "job" }, .nlabels = 1,
		.max_series = 8, .bounds = bounds, .nbounds = 3,
	};
	struct metrics *m = metrics_new(4);
	struct metrics_family *f;
	struct metrics_series *s;

	f = metrics_family_new(m, &requests);
	metrics_add(metrics_series(f, (const char *[]){ "/a\"b\\c\nd", "200" }),
		    3);
	metrics_add(metrics_series(f, (const char *[]){ "/x", "404" }), 1);
	metrics_add(metrics_series(f, (const char *[]){ "/a\"b\\c\nd", "200" }),
		    1);
	f = metrics_family_new(m, &depth);
	metrics_set(metrics_series(f, NULL), 2.5);
	f = metrics_family_new(m, &seconds);
	s = metrics_series(f, (const char *[]){ "x" });
	metrics_observe(s, 0.0625);
	metrics_observe(s, 0.125);	/* on a bound: in that bucket */
	metrics_observe(s, 0.5);
	metrics_observe(s, 3);
	metrics_observe(metrics_series(f, (const char *[]){ "y" }), 1);
	ck_assert(metrics_value(s) == 4);
	check_render(m,
		"# HELP t_requests_total Requests, a \\\\ and a \"quote\"\\non two lines.\n"
		"# TYPE t_requests_total counter\n"
		"t_requests_total{route=\"/a\\\"b\\\\c\\nd\",code=\"200\"} 4\n"
		"t_requests_total{route=\"/x\",code=\"404\"} 1\n"
		"# HELP t_depth Depth.\n"
		"# TYPE t_depth gauge\n"
		"t_depth 2.5\n"
		"# HELP t_seconds Durations.\n"
		"# TYPE t_seconds histogram\n"
		"t_seconds_bucket{job=\"x\",le=\"0.125\"} 2\n"
		"t_seconds_bucket{job=\"x\",le=\"1\"} 3\n"
		"t_seconds_bucket{job=\"x\",le=\"2.5\"} 3\n"
		"t_seconds_bucket{job=\"x\",le=\"+Inf\"} 4\n"
		"t_seconds_sum{job=\"x\"} 3.6875\n"
		"t_seconds_count{job=\"x\"} 4\n"
		"t_seconds_bucket{job=\"y\",le=\"0.125\"} 0\n"
		"t_seconds_bucket{job=\"y\",le=\"1\"} 1\n"
		"t_seconds_bucket{job=\"y\",le=\"2.5\"} 1\n"
		"t_seconds_bucket{job=\"y\",le=\"+Inf\"} 1\n"
		"t_seconds_sum{job=\"y\"} 1\n"
		"t_seconds_count{job=\"y\"} 1\n");
	metrics_free(m);
}
END_TEST

START_TEST(test_a_family_without_series_renders_its_help_and_type)
{
	struct metrics *m = metrics_new(4);

	counter(m, "t_gone_total", "Clients gone.", "route", 4);
	check_render(m, "# HELP t_gone_total Clients gone.\n"
			"# TYPE t_gone_total counter\n");
	metrics_free(m);
}
END_TEST

START_TEST(test_a_family_without_labels_has_one_series_from_the_start)
{
	struct metrics *m = metrics_new(4);
	struct metrics_family *f = counter(m, "t_total", "T.", NULL, 0);

	ck_assert_ptr_eq(metrics_series(f, NULL), metrics_series(f, NULL));
	check_render(m, "# HELP t_total T.\n# TYPE t_total counter\n"
			"t_total 0\n");
	metrics_free(m);
}
END_TEST

START_TEST(test_values_take_the_fewest_digits_and_the_format_s_words)
{
	static const struct { double v; const char *text; } cases[] = {
		{ 0.1, "0.1" }, { 3, "3" }, { -2, "-2" }, { 1e-3, "0.001" },
		{ 1.5e300, "1.5e+300" }, { 1.0 / 3, "0.3333333333333333" },
		{ INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
	};
	struct metrics_desc d = {
		.type = METRICS_GAUGE, .name = "t_g", .help = "G.",
		.labels = { "case" }, .nlabels = 1, .max_series = 16,
	};
	struct metrics *m = metrics_new(4);
	struct metrics_family *f = metrics_family_new(m, &d);
	char expected[1024] = "# HELP t_g G.\n# TYPE t_g gauge\n", line[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[8];

		snprintf(name, sizeof(name), "%zu", i);
		metrics_set(metrics_series(f, (const char *[]){ name }),
			    cases[i].v);
		snprintf(line, sizeof(line), "t_g{case=\"%zu\"} %s\n", i,
			 cases[i].text);
		strcat(expected, line);
	}
	check_render(m, expected);
	metrics_free(m);
}
END_TEST

START_TEST(test_past_max_series_new_label_sets_count_in_other)
{
	struct metrics *m = metrics_new(4);
	struct metrics_family *f = counter(m, "t_total", "T.", "route", 2);
	struct metrics_series *a = metrics_series(f, (const char *[]){ "/a" });
	struct metrics_series *b = metrics_series(f, (const char *[]){ "/b" });
	struct metrics_series *c = metrics_series(f, (const char *[]){ "/c" });

	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_ne(c, a);
	ck_assert_ptr_ne(c, b);
	ck_assert_ptr_eq(metrics_series(f, (const char *[]){ "/d" }), c);
	ck_assert_ptr_eq(metrics_series(f, (const char *[]){ "other" }), c);
	ck_assert_ptr_eq(metrics_series(f, (const char *[]){ "/a" }), a);
	metrics_add(a, 1);
	metrics_add(c, 2);
	metrics_add(metrics_series(f, (const char *[]){ "/e" }), 5);
	check_render(m, "# HELP t_total T.\n# TYPE t_total counter\n"
			"t_total{route=\"/a\"} 1\n"
			"t_total{route=\"/b\"} 0\n"
			"t_total{route=\"other\"} 7\n");
	metrics_free(m);
}
END_TEST

START_TEST(test_a_real_other_label_set_within_the_bound_is_the_overflow_too)
{
	struct metrics *m = metrics_new(4);
	struct metrics_family *f = counter(m, "t_total", "T.", "job", 2);
	struct metrics_series *o = metrics_series(f, (const char *[]){ "other" });

	metrics_series(f, (const char *[]){ "a" });
	ck_assert_ptr_eq(metrics_series(f, (const char *[]){ "b" }), o);
	check_render(m, "# HELP t_total T.\n# TYPE t_total counter\n"
			"t_total{job=\"other\"} 0\n"
			"t_total{job=\"a\"} 0\n");
	metrics_free(m);
}
END_TEST

START_TEST(test_intern_returns_one_lasting_copy_per_string_up_to_its_bound)
{
	struct metrics *m = metrics_new(2);
	char path[] = "/greet/{name}";
	const char *a = metrics_intern(m, path);

	ck_assert_ptr_ne(a, path);
	ck_assert_str_eq(a, "/greet/{name}");
	path[1] = 'x';		/* the source may change or go */
	ck_assert_str_eq(a, "/greet/{name}");
	ck_assert_ptr_eq(metrics_intern(m, "/greet/{name}"), a);
	ck_assert_str_eq(metrics_intern(m, "/b"), "/b");
	ck_assert_str_eq(metrics_intern(m, "/c"), METRICS_OTHER);
	ck_assert_ptr_eq(metrics_intern(m, "/greet/{name}"), a);
	check_render(m, "");	/* interned strings are no family */
	metrics_free(m);
}
END_TEST

START_TEST(test_bad_families_are_refused_with_einval)
{
	static const double up[] = { 1, 2 }, down[] = { 2, 1 };
	static const double inf[] = { 1, INFINITY };
	struct metrics_desc bad[] = {
		{ .type = METRICS_COUNTER, .name = "1abc", .help = "" },
		{ .type = METRICS_COUNTER, .name = "a-b", .help = "" },
		{ .type = METRICS_COUNTER, .name = "", .help = "" },
		{ .type = METRICS_COUNTER, .name = "t", .help = NULL },
		{ .type = METRICS_COUNTER, .name = "t", .help = "",
		  .labels = { "a:b" }, .nlabels = 1, .max_series = 1 },
		{ .type = METRICS_COUNTER, .name = "t", .help = "",
		  .labels = { "__x" }, .nlabels = 1, .max_series = 1 },
		{ .type = METRICS_COUNTER, .name = "t", .help = "",
		  .labels = { "a" }, .nlabels = 1, .max_series = 0 },
		{ .type = METRICS_HISTOGRAM, .name = "t", .help = "",
		  .labels = { "le" }, .nlabels = 1, .max_series = 1,
		  .bounds = up, .nbounds = 2 },
		{ .type = METRICS_HISTOGRAM, .name = "t", .help = "",
		  .bounds = down, .nbounds = 2 },
		{ .type = METRICS_HISTOGRAM, .name = "t", .help = "",
		  .bounds = inf, .nbounds = 2 },
		{ .type = METRICS_HISTOGRAM, .name = "t", .help = "",
		  .bounds = up, .nbounds = 0 },
	};
	struct metrics_desc ok = { .type = METRICS_GAUGE, .name = "a:b_c",
				   .help = "" };
	struct metrics *m = metrics_new(4);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(metrics_family_new(m, &bad[i]) == NULL,
			      "desc %zu taken", i);
		ck_assert_int_eq(errno, EINVAL);
	}
	ck_assert_ptr_nonnull(metrics_family_new(m, &ok));
	errno = 0;
	ck_assert_ptr_null(metrics_family_new(m, &ok));	/* twice */
	ck_assert_int_eq(errno, EINVAL);
	metrics_free(m);
}
END_TEST

START_TEST(test_null_series_are_ignored)
{
	metrics_add(NULL, 1);
	metrics_set(NULL, 1);
	metrics_observe(NULL, 1);
	ck_assert(metrics_value(NULL) == 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 20000
#define NEW_SERIES 64	/* per thread, made while the others count */

struct counting {
	struct metrics *m;
	struct metrics_family *requests, *seconds;
	int index;
};

/*
 * Counts ROUNDS times in a shared series and a shared histogram, and makes
 * NEW_SERIES series of its own (and one shared with every thread) on the
 * way, so that lookups race the making of series.
 */
static void *
count_main(void *arg)
{
	struct counting *c = arg;
	char name[32];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		metrics_add(metrics_series(c->requests,
					   (const char *[]){ "/shared" }), 1);
		metrics_observe(metrics_series(c->seconds,
					       (const char *[]){ "job" }),
				(i % 2) ? 0.5 : 2);
		if (i % (ROUNDS / NEW_SERIES) == 0) {
			snprintf(name, sizeof(name), "/t%d/%d", c->index, i);
			metrics_add(metrics_series(c->requests,
				(const char *[]){ name }), 1);
			snprintf(name, sizeof(name), "/all/%d", i);
			metrics_add(metrics_series(c->requests,
				(const char *[]){ name }), 1);
			metrics_intern(c->m, name);
		}
	}
	return NULL;
}

START_TEST(test_counts_from_many_threads_add_up_exactly)
{
	static const double bounds[] = { 1 };
	struct metrics_desc seconds = {
		.type = METRICS_HISTOGRAM, .name = "t_seconds", .help = "S.",
		.labels = { "job" }, .nlabels = 1, .max_series = 4,
		.bounds = bounds, .nbounds = 1,
	};
	struct metrics *m = metrics_new(1024);
	struct counting c[THREADS];
	pthread_t tids[THREADS];
	struct metrics_series *h;
	char name[32], *text;
	size_t len;
	int i, j;

	c[0].m = m;
	c[0].requests = counter(m, "t_requests_total", "R.", "route", 4096);
	c[0].seconds = metrics_family_new(m, &seconds);
	for (i = 0; i < THREADS; i++) {
		c[i] = c[0];
		c[i].index = i;
		ck_assert_int_eq(pthread_create(&tids[i], NULL, count_main,
						&c[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(tids[i], NULL);
	ck_assert(metrics_value(metrics_series(c[0].requests,
		(const char *[]){ "/shared" })) == THREADS * ROUNDS);
	for (i = 0; i < THREADS; i++)
		for (j = 0; j < ROUNDS; j += ROUNDS / NEW_SERIES) {
			snprintf(name, sizeof(name), "/t%d/%d", i, j);
			ck_assert(metrics_value(metrics_series(c[0].requests,
				(const char *[]){ name })) == 1);
			snprintf(name, sizeof(name), "/all/%d", j);
			ck_assert(metrics_value(metrics_series(c[0].requests,
				(const char *[]){ name })) == THREADS);
		}
	h = metrics_series(c[0].seconds, (const char *[]){ "job" });
	ck_assert(metrics_value(h) == THREADS * ROUNDS);
	text = metrics_render(m, &len);
	ck_assert_ptr_nonnull(text);
	/* Half the observations are 0.5, half 2: sums exact in binary. */
	snprintf(name, sizeof(name), "le=\"1\"} %d\n", THREADS * ROUNDS / 2);
	ck_assert_ptr_nonnull(strstr(text, name));
	snprintf(name, sizeof(name), "_sum{job=\"job\"} %d\n",
		 THREADS * ROUNDS / 2 * 5 / 2);
	ck_assert_ptr_nonnull(strstr(text, name));
	ck_assert_ptr_null(strstr(text, "other"));
	free(text);
	metrics_free(m);
}
END_TEST

/*
 * The observer from several threads over more (route, method, status)
 * keys than api_metrics has slots: every key's series counts exactly its
 * observations, whether it was found in a slot or by value.
 */
#define OBS_ROUTES 40
#define OBS_ROUNDS 50
static const char *obs_routes[OBS_ROUTES];
static const char *const obs_methods[] = { "GET", "POST", "BREW" };
static const unsigned obs_statuses[] = { 200, 404, 1000 };

static void *
observe_main(void *arg)
{
	struct api_metrics *am = arg;
	int round, r, m, st;

	for (round = 0; round < OBS_ROUNDS; round++)
		for (r = 0; r < OBS_ROUTES; r++)
			for (m = 0; m < 3; m++)
				for (st = 0; st < 3; st++) {
					struct server_report rep = {
						.method = obs_methods[m],
						.label = obs_routes[r],
						.status = obs_statuses[st],
					};

					api_metrics_observe(am, &rep);
				}
	return NULL;
}

START_TEST(test_the_observer_counts_each_route_method_and_code_exactly)
{
	static const char *const codes[] = { "200", "404", "xxx" };
	static const char *const methods[] = { "GET", "POST", "other" };
	struct api_metrics am;
	pthread_t tids[4];
	char names[OBS_ROUTES][16];
	int i, m, st;

	ck_assert_int_eq(api_metrics_init(&am, 1), 0);
	for (i = 0; i < OBS_ROUTES; i++) {
		snprintf(names[i], sizeof(names[i]), "/r%d", i);
		obs_routes[i] = api_metrics_route_label(&am, names[i]);
	}
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&tids[i], NULL, observe_main,
						&am), 0);
	for (i = 0; i < 4; i++)
		pthread_join(tids[i], NULL);
	for (i = 0; i < OBS_ROUTES; i++)
		for (m = 0; m < 3; m++)
			for (st = 0; st < 3; st++)
				ck_assert(metrics_value(metrics_series(
					am.requests, (const char *[]){
					names[i], methods[m], codes[st] }))
					== 4 * OBS_ROUNDS);
	api_metrics_clear(&am);
}
END_TEST

/*
 * A route's label is one lasting copy per path, whatever the pointer it
 * is asked with; a pointer reused for another path (a reload) gets that
 * path's label, not the one kept for its old content.
 */
START_TEST(test_route_labels_follow_the_path_not_its_pointer)
{
	struct api_metrics am;
	char path[32] = "/greet/{name}", other[32] = "/greet/{name}";
	const char *first, *label;

	ck_assert_int_eq(api_metrics_init(&am, 1), 0);
	first = api_metrics_route_label(&am, path);
	ck_assert_str_eq(first, "/greet/{name}");
	ck_assert_ptr_ne(first, path);
	ck_assert_ptr_eq(api_metrics_route_label(&am, path), first);
	ck_assert_ptr_eq(api_metrics_route_label(&am, other), first);
	strcpy(path, "/tasks");
	label = api_metrics_route_label(&am, path);
	ck_assert_str_eq(label, "/tasks");
	ck_assert_ptr_eq(api_metrics_route_label(&am, path), label);
	strcpy(path, "/greet/{name}");
	ck_assert_ptr_eq(api_metrics_route_label(&am, path), first);
	api_metrics_clear(&am);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("text");
	tcase_add_test(tc, test_an_empty_set_renders_as_an_empty_text);
	tcase_add_test(tc, test_counter_gauge_and_histogram_render_exactly);
	tcase_add_test(tc, test_a_family_without_series_renders_its_help_and_type);
	tcase_add_test(tc, test_a_family_without_labels_has_one_series_from_the_start);
	tcase_add_test(tc, test_values_take_the_fewest_digits_and_the_format_s_words);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_add_test(tc, test_past_max_series_new_label_sets_count_in_other);
	tcase_add_test(tc, test_a_real_other_label_set_within_the_bound_is_the_overflow_too);
	tcase_add_test(tc, test_intern_returns_one_lasting_copy_per_string_up_to_its_bound);
	tcase_add_test(tc, test_bad_families_are_refused_with_einval);
	tcase_add_test(tc, test_null_series_are_ignored);
	tcase_add_test(tc, test_route_labels_follow_the_path_not_its_pointer);
	suite_add_tcase(s, tc);

	/* Slow under TSan. */
	tc = tcase_create("threads");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_counts_from_many_threads_add_up_exactly);
	tcase_add_test(tc,
		test_the_observer_counts_each_route_method_and_code_exactly);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
