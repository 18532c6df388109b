/*
 * check_server_limits.c - unit tests for the table and the clock of
 * src/server_limits.c: limits in all and per address, a refused
 * connection not counted, IPv4-mapped IPv6 counted as IPv4, entries
 * freed when their last connection goes, threads counting at once; the
 * margin; deadlines in order per phase, a phase off, and the next wait.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server_limits.h"

#define MS 1000000LL

static struct sockaddr_in
v4(const char *a)
{
	struct sockaddr_in in = { .sin_family = AF_INET };

	ck_assert_int_eq(inet_pton(AF_INET, a, &in.sin_addr), 1);
	return in;
}

static struct sockaddr_in6
v6(const char *a)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	ck_assert_int_eq(inet_pton(AF_INET6, a, &in6.sin6_addr), 1);
	return in6;
}

static enum server_limits_verdict
enter(struct server_limits *l, struct server_limits_conn *c, const void *sa)
{
	memset(c, 0, sizeof(*c));
	return server_limits_enter(l, c, sa);
}

START_TEST(per_ip_limit)
{
	struct server_limits *l = server_limits_new(0, 2);
	struct server_limits_conn c[5];
	struct sockaddr_in a = v4("127.0.0.1"), b = v4("127.0.0.2");

	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(enter(l, &c[0], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[1], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[2], &a), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_int_eq(c[2].verdict, SERVER_LIMITS_OVER_PER_IP);
	ck_assert(!c[2].counted);
	/* Another address is not limited by the first one's count. */
	ck_assert_int_eq(enter(l, &c[3], &b), SERVER_LIMITS_OK);
	ck_assert_uint_eq(server_limits_open(l), 3);
	ck_assert_uint_eq(server_limits_addresses(l), 2);
	/* The refused one going changes nothing; a served one makes room. */
	server_limits_leave(l, &c[2]);
	ck_assert_uint_eq(server_limits_open(l), 3);
	server_limits_leave(l, &c[0]);
	ck_assert_int_eq(enter(l, &c[4], &a), SERVER_LIMITS_OK);
	server_limits_leave(l, &c[1]);
	server_limits_leave(l, &c[4]);
	server_limits_leave(l, &c[3]);
	ck_assert_uint_eq(server_limits_open(l), 0);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	server_limits_free(l);
}
END_TEST

START_TEST(global_limit)
{
	struct server_limits *l = server_limits_new(3, 0);
	struct server_limits_conn c[5];
	struct sockaddr_in a = v4("10.0.0.1"), b = v4("10.0.0.2");

	ck_assert_int_eq(enter(l, &c[0], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[1], &b), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[2], NULL), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[3], &b), SERVER_LIMITS_OVER);
	ck_assert_str_eq(server_limits_reason(c[3].verdict),
			 "connection_limit");
	/* No per-IP limit: no table of addresses either. */
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	server_limits_leave(l, &c[1]);
	ck_assert_int_eq(enter(l, &c[4], &b), SERVER_LIMITS_OK);
	server_limits_leave(l, &c[0]);
	server_limits_leave(l, &c[2]);
	server_limits_leave(l, &c[3]);
	server_limits_leave(l, &c[4]);
	ck_assert_uint_eq(server_limits_open(l), 0);
	server_limits_free(l);
}
END_TEST

START_TEST(both_limits)
{
	struct server_limits *l = server_limits_new(2, 1);
	struct server_limits_conn c[3];
	struct sockaddr_in a = v4("10.0.0.1"), b = v4("10.0.0.2"),
			   x = v4("10.0.0.3");

	ck_assert_int_eq(enter(l, &c[0], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[1], &a), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_str_eq(server_limits_reason(c[1].verdict),
			 "connection_limit_per_ip");
	server_limits_leave(l, &c[1]);
	ck_assert_int_eq(enter(l, &c[1], &b), SERVER_LIMITS_OK);
	/* The global limit is checked first: it names the real shortage. */
	ck_assert_int_eq(enter(l, &c[2], &x), SERVER_LIMITS_OVER);
	ck_assert_uint_eq(server_limits_addresses(l), 2);
	server_limits_leave(l, &c[0]);
	server_limits_leave(l, &c[1]);
	server_limits_leave(l, &c[2]);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	ck_assert_ptr_null(server_limits_reason(SERVER_LIMITS_OK));
	server_limits_free(l);
}
END_TEST

/*
 * An address over its limit has as many connections waiting for their
 * 503 as it may have served; past that, each is dropped, so that one
 * address cannot fill libmicrohttpd's own limit with idle connections.
 */
START_TEST(per_ip_over_bounded)
{
	struct server_limits *l = server_limits_new(100, 2);
	struct server_limits_conn c[7];
	struct sockaddr_in a = v4("10.0.0.1");

	ck_assert_int_eq(enter(l, &c[0], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[1], &a), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[2], &a), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_int_eq(enter(l, &c[3], &a), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_int_eq(enter(l, &c[4], &a), SERVER_LIMITS_DROP_PER_IP);
	ck_assert_int_eq(enter(l, &c[5], &a), SERVER_LIMITS_DROP_PER_IP);
	ck_assert_str_eq(server_limits_reason(c[4].verdict),
			 "connection_limit_per_ip");
	ck_assert_uint_eq(server_limits_open(l), 2);
	/* A dropped one going frees nothing; a waiting one makes room. */
	server_limits_leave(l, &c[4]);
	server_limits_leave(l, &c[5]);
	ck_assert_int_eq(enter(l, &c[4], &a), SERVER_LIMITS_DROP_PER_IP);
	server_limits_leave(l, &c[2]);
	ck_assert_int_eq(enter(l, &c[5], &a), SERVER_LIMITS_OVER_PER_IP);
	/* The served ones go first: the entry stays for those waiting. */
	server_limits_leave(l, &c[0]);
	server_limits_leave(l, &c[1]);
	ck_assert_uint_eq(server_limits_addresses(l), 1);
	server_limits_leave(l, &c[3]);
	server_limits_leave(l, &c[4]);
	server_limits_leave(l, &c[5]);
	ck_assert_uint_eq(server_limits_open(l), 0);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	ck_assert_int_eq(enter(l, &c[6], &a), SERVER_LIMITS_OK);
	server_limits_leave(l, &c[6]);
	server_limits_free(l);
}
END_TEST

START_TEST(ipv6_and_mapped)
{
	struct server_limits *l = server_limits_new(0, 1);
	struct server_limits_conn c[5];
	struct sockaddr_in a = v4("192.0.2.7");
	struct sockaddr_in6 m = v6("::ffff:192.0.2.7"), p = v6("2001:db8::1"),
			    q = v6("2001:db8::2");

	ck_assert_int_eq(enter(l, &c[0], &a), SERVER_LIMITS_OK);
	/* The same client through an IPv6 socket: the same address. */
	ck_assert_int_eq(enter(l, &c[1], &m), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_int_eq(enter(l, &c[2], &p), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[3], &q), SERVER_LIMITS_OK);
	ck_assert_int_eq(enter(l, &c[4], &p), SERVER_LIMITS_OVER_PER_IP);
	ck_assert_uint_eq(server_limits_addresses(l), 3);
	for (int i = 0; i < 5; i++)
		server_limits_leave(l, &c[i]);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	ck_assert_uint_eq(server_limits_open(l), 0);
	server_limits_free(l);
}
END_TEST

/* Many addresses: the chains hold them all, and all go. */
START_TEST(many_addresses)
{
	enum { N = 20000 };
	struct server_limits *l = server_limits_new(0, 1);
	struct server_limits_conn *c = calloc(N, sizeof(*c));
	struct sockaddr_in a = { .sin_family = AF_INET };

	for (unsigned i = 0; i < N; i++) {
		a.sin_addr.s_addr = htonl(0x0a000000u + i);
		ck_assert_int_eq(server_limits_enter(l, &c[i], (void *)&a),
				 SERVER_LIMITS_OK);
	}
	ck_assert_uint_eq(server_limits_addresses(l), N);
	for (unsigned i = 0; i < N; i++)
		server_limits_leave(l, &c[i]);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	free(c);
	server_limits_free(l);
}
END_TEST

struct racer {
	struct server_limits *l;
	unsigned ok;
	size_t most;	/* the most connections counted, seen while in */
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct sockaddr_in a = v4("127.0.0.9");
	struct server_limits_conn c;

	for (int i = 0; i < 20000; i++) {
		memset(&c, 0, sizeof(c));
		if (server_limits_enter(r->l, &c, (void *)&a) ==
		    SERVER_LIMITS_OK) {
			size_t open = server_limits_open(r->l);

			r->ok++;
			if (open > r->most)
				r->most = open;
		}
		server_limits_leave(r->l, &c);
	}
	return NULL;
}

/*
 * Threads counting at once from one address never have more than its
 * limit in (a thread may get none at all: two others preempted while in),
 * and leave the table empty.
 */
START_TEST(threads)
{
	struct racer r[4];
	pthread_t tid[4];
	struct server_limits *l = server_limits_new(3, 2);
	unsigned ok = 0;

	for (int i = 0; i < 4; i++) {
		r[i].l = l;
		r[i].ok = 0;
		r[i].most = 0;
		ck_assert_int_eq(pthread_create(&tid[i], NULL, race, &r[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_uint_le(r[i].most, 2);
		ok += r[i].ok;
	}
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_eq(server_limits_open(l), 0);
	ck_assert_uint_eq(server_limits_addresses(l), 0);
	server_limits_free(l);
}
END_TEST

START_TEST(margin)
{
	ck_assert_uint_eq(server_limits_hard(0), 0);
	ck_assert_uint_eq(server_limits_hard(1), 17);
	ck_assert_uint_eq(server_limits_hard(1000), 1116);
	for (unsigned h = 17; h < 200000; h += 97) {
		unsigned s = server_limits_soft(h);

		ck_assert_uint_ge(s, 1);
		ck_assert_uint_le(server_limits_hard(s), h);
		ck_assert_uint_gt(server_limits_hard(s + 1), h);
	}
	ck_assert_uint_eq(server_limits_soft(5), 1);	/* never 0 */
}
END_TEST

START_TEST(clock_order)
{
	struct server_limits_clock k;
	struct server_limits_conn c[4];

	memset(c, 0, sizeof(c));
	server_limits_clock_init(&k, 1000 * MS, 3000 * MS);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), -1);
	server_limits_clock_set(&k, &c[0], SERVER_LIMITS_HEADERS, 0, 0);
	server_limits_clock_set(&k, &c[1], SERVER_LIMITS_HEADERS, 100 * MS, 0);
	server_limits_clock_set(&k, &c[2], SERVER_LIMITS_HEADERS, 200 * MS, 0);
	/* Its headers came: now it waits for its body, due at 3.05 s. */
	server_limits_clock_set(&k, &c[1], SERVER_LIMITS_BODY, 50 * MS, 7);
	ck_assert_int_eq(c[1].bytes_in, 7);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), 1000);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, MS / 2), 1000);
	ck_assert_ptr_null(server_limits_clock_due(&k, 999 * MS));
	ck_assert_ptr_eq(server_limits_clock_due(&k, 1000 * MS), &c[0]);
	ck_assert_int_eq(c[0].phase, SERVER_LIMITS_HEADERS);	/* kept */
	ck_assert_ptr_null(server_limits_clock_due(&k, 1000 * MS));
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 1000 * MS), 200);
	/* Answered before its deadline: on no list. */
	server_limits_clock_set(&k, &c[2], SERVER_LIMITS_IDLE, 300 * MS, 0);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 1000 * MS), 2050);
	ck_assert_ptr_null(server_limits_clock_due(&k, 3000 * MS));
	ck_assert_ptr_eq(server_limits_clock_due(&k, 4000 * MS), &c[1]);
	ck_assert_int_eq(c[1].phase, SERVER_LIMITS_BODY);
	ck_assert_ptr_null(server_limits_clock_due(&k, 9000 * MS));
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), -1);
	/* Past the deadline already: 0, not a negative wait. */
	server_limits_clock_set(&k, &c[3], SERVER_LIMITS_HEADERS, 0, 0);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 5000 * MS), 0);
	server_limits_clock_set(&k, &c[3], SERVER_LIMITS_IDLE, 0, 0);
}
END_TEST

START_TEST(clock_off)
{
	struct server_limits_clock k;
	struct server_limits_conn c;

	memset(&c, 0, sizeof(c));
	server_limits_clock_init(&k, 0, 2000 * MS);
	server_limits_clock_set(&k, &c, SERVER_LIMITS_HEADERS, 0, 0);
	ck_assert_int_eq(c.phase, SERVER_LIMITS_HEADERS);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), -1);
	ck_assert_ptr_null(server_limits_clock_due(&k, INT64_MAX / 2));
	server_limits_clock_set(&k, &c, SERVER_LIMITS_BODY, 0, 0);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), 2000);
	server_limits_clock_set(&k, &c, SERVER_LIMITS_IDLE, 0, 0);
	ck_assert_int_eq(server_limits_clock_next_ms(&k, 0), -1);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("server_limits");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, per_ip_limit);
	tcase_add_test(tc, global_limit);
	tcase_add_test(tc, both_limits);
	tcase_add_test(tc, per_ip_over_bounded);
	tcase_add_test(tc, ipv6_and_mapped);
	tcase_add_test(tc, many_addresses);
	tcase_add_test(tc, threads);
	tcase_add_test(tc, margin);
	tcase_add_test(tc, clock_order);
	tcase_add_test(tc, clock_off);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
