/*
 * check_server_stream_many.c - many streamed answers at once: written from
 * two threads in turn, and a server stopped while writers race it.
 * Part of check_server_stream (its main is in check_server_stream.c).
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "stream_fixture.h"

#define MANY 50
#define LINES 20

void stream_many_add_tests(TCase *stop, TCase *many);

/* The stream number of a request for "/s/N". */
static int
stream_number(struct server_request *req)
{
	return atoi(server_request_path(req) + 3);
}

/* Opens n clients, "/s/0" to "/s/n-1", and waits for their streams. */
static struct client *
open_clients(struct fx *fx, int n)
{
	struct client *cl = calloc((size_t)n, sizeof(*cl));
	char request[64];
	int i;

	ck_assert_ptr_nonnull(cl);
	for (i = 0; i < n; i++) {
		snprintf(request, sizeof(request), "GET /s/%d HTTP/1.1\r\n"
			 "Host: x\r\n\r\n", i);
		client_open(&cl[i], server_port(fx->server), request, 0);
	}
	WAIT_UNTIL(fx, fx->nreqs == (size_t)n);
	return cl;
}

/* ---- two writers in turn ------------------------------------------------- */

struct turns {
	struct fx *fx;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned next[MAX_STREAMS];	/* the line each stream is due */
	int failed_writes;
};

struct turn_writer {
	struct turns *t;
	unsigned first;		/* 0 or 1: writes lines first, first + 2, ... */
};

/*
 * Writes its lines of every stream, each when the stream is due for it,
 * so that the two writers alternate on every stream.  The last line's
 * writer ends the stream.
 */
static void *
write_turns(void *arg)
{
	struct turn_writer *w = arg;
	struct turns *t = w->t;
	struct timespec until;
	unsigned k;
	size_t j;
	char line[32];

	for (k = w->first; k < LINES; k += 2)
		for (j = 0; j < t->fx->nreqs; j++) {
			struct server_request *req = t->fx->reqs[j];

			pthread_mutex_lock(&t->lock);
			until = fx_in_ms(DEADLINE_MS);
			while (t->next[j] != k)
				if (pthread_cond_timedwait(&t->cond, &t->lock,
							   &until) != 0) {
					t->failed_writes++;
					pthread_mutex_unlock(&t->lock);
					return NULL;
				}
			snprintf(line, sizeof(line), "{\"s\": %d, \"k\": %u}\n",
				 stream_number(req), k);
			if (server_stream_write(req, line, strlen(line)) != 0)
				t->failed_writes++;
			if (++t->next[j] == LINES)
				server_stream_end(req);
			pthread_cond_broadcast(&t->cond);
			pthread_mutex_unlock(&t->lock);
		}
	return NULL;
}

/* Reads every client until each has had its last chunk. */
static void
read_all_to_the_end(struct client *cl, int n)
{
	struct pollfd p[MAX_STREAMS];
	int i, left = n, k;

	while (left > 0) {
		for (i = k = 0; i < n; i++)
			if (!client_ends_with_last_chunk(&cl[i]))
				p[k++] = (struct pollfd){ .fd = cl[i].fd,
							  .events = POLLIN };
		ck_assert_msg(poll(p, (nfds_t)k, DEADLINE_MS) > 0,
			      "%d streams sent nothing for %d ms", k,
			      DEADLINE_MS);
		for (i = 0; i < n; i++) {
			struct pollfd *q = p;

			while (q < p + k && q->fd != cl[i].fd)
				q++;
			if (q == p + k || q->revents == 0)
				continue;
			ck_assert_msg(client_read(&cl[i]), "stream %d: EOF "
				      "before its end", i);
			if (client_ends_with_last_chunk(&cl[i]))
				left--;
		}
	}
}

START_TEST(test_many_streams_from_two_writers_arrive_whole)
{
	struct fx fx = { 0 };
	struct turns t = { .fx = &fx };
	struct turn_writer w[2] = { { &t, 0 }, { &t, 1 } };
	static char body[8192], want[8192];
	struct client *cl;
	pthread_t writer[2];
	const char *head;
	int i;
	unsigned k;

	fx_start(&fx, 2, 0);
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	cl = open_clients(&fx, MANY);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&writer[i], NULL, write_turns,
						&w[i]), 0);
	read_all_to_the_end(cl, MANY);
	for (i = 0; i < 2; i++)
		pthread_join(writer[i], NULL);
	ck_assert_int_eq(t.failed_writes, 0);
	for (i = 0; i < MANY; i++) {
		size_t n = 0;

		head = client_head(&cl[i]);
		ck_assert_msg(strncmp(head, "HTTP/1.1 200 ", 13) == 0, "%s",
			      head);
		ck_assert_msg(dechunk(cl[i].buf, cl[i].len, body,
				      sizeof(body)), "stream %d: bad end", i);
		for (k = 0; k < LINES; k++)
			n += (size_t)snprintf(want + n, sizeof(want) - n,
					      "{\"s\": %d, \"k\": %u}\n", i, k);
		ck_assert_str_eq(body, want);
		close(cl[i].fd);
	}
	WAIT_UNTIL(&fx, fx.gone_false + fx.gone_true == MANY);
	ck_assert_uint_eq(fx.gone_true, 0);
	server_free(fx.server);
	free(cl);
	pthread_cond_destroy(&t.cond);
	pthread_mutex_destroy(&t.lock);
	fx_end(&fx);
}
END_TEST

/* ---- a stop while writers race --------------------------------------------- */

#define RACING 20

struct racer {
	struct fx *fx;
	unsigned long written;	/* fx->lock */
};

/* Writes to every stream, round after round, until all say -1. */
static void *
race(void *arg)
{
	struct racer *r = arg;
	bool done[MAX_STREAMS] = { false };
	char line[100];
	size_t j, left = r->fx->nreqs;

	memset(line, 'r', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	while (left > 0)
		for (j = 0; j < r->fx->nreqs; j++) {
			if (done[j])
				continue;
			if (server_stream_write(r->fx->reqs[j], line,
						sizeof(line)) != 0) {
				done[j] = true;
				left--;
				continue;
			}
			pthread_mutex_lock(&r->fx->lock);
			r->written++;
			pthread_cond_broadcast(&r->fx->cond);
			pthread_mutex_unlock(&r->fx->lock);
		}
	return NULL;
}

/* Reads every client, dropping what comes, until each is closed. */
static void *
drain_clients(void *arg)
{
	struct client *cl = arg;
	struct pollfd p[RACING];
	int i, k;

	for (;;) {
		for (i = k = 0; i < RACING; i++)
			if (!cl[i].eof)
				p[k++] = (struct pollfd){ .fd = cl[i].fd,
							  .events = POLLIN };
		if (k == 0)
			return NULL;
		ck_assert_int_gt(poll(p, (nfds_t)k, DEADLINE_MS), 0);
		for (i = 0; i < RACING; i++) {
			struct pollfd *q = p;

			while (q < p + k && q->fd != cl[i].fd)
				q++;
			if (q == p + k || q->revents == 0)
				continue;
			cl[i].len = 0;
			client_read(&cl[i]);
		}
	}
}

START_TEST(test_free_while_writers_race)
{
	struct fx fx = { 0 };
	struct racer r[2] = { { &fx, 0 }, { &fx, 0 } };
	struct client *cl;
	pthread_t writer[2], reader;
	int i;

	fx_start(&fx, 2, 65536);
	cl = open_clients(&fx, RACING);
	ck_assert_int_eq(pthread_create(&reader, NULL, drain_clients, cl), 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&writer[i], NULL, race, &r[i]),
				 0);
	/* Well under way, or every stream cut off already. */
	WAIT_UNTIL(&fx, r[0].written + r[1].written >= 10 * RACING ||
		   fx.gone_false + fx.gone_true == RACING);
	server_free(fx.server);
	for (i = 0; i < 2; i++)
		pthread_join(writer[i], NULL);
	pthread_join(reader, NULL);
	/* Every stream is over, and told its gone function once. */
	ck_assert_uint_eq(fx.gone_false + fx.gone_true, RACING);
	for (i = 0; i < RACING; i++) {
		ck_assert_int_eq(server_stream_write(fx.reqs[i], "x", 1), -1);
		close(cl[i].fd);
	}
	free(cl);
	fx_end(&fx);
}
END_TEST

void
stream_many_add_tests(TCase *stop, TCase *many)
{
	tcase_add_test(stop, test_free_while_writers_race);
	tcase_add_test(many, test_many_streams_from_two_writers_arrive_whole);
}
