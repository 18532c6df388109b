/*
 * http_transfer.c - the transfer thread of kind `http`: every transfer of
 * every http job runs here, on one libcurl multi handle, for the daemon's
 * life (open to close).  See http_kind.h.
 *
 * DESIGN.  A job holds no worker while its upstream answers: the thread
 * waits in curl_multi_poll() on every transfer's socket at once, and the
 * waits between retries are its poll timeout, not sleeps.  Only this
 * thread touches the multi handle and the easy handles in it.  Other
 * threads hand it work through `lock`: start() appends a transfer to
 * `incoming`, cancel() sets `scan_cancels`, close() sets `stopping`; each
 * then calls curl_multi_wakeup(), the one multi call libcurl allows from
 * another thread.  `lock` is a leaf: nothing is called while it is held.
 *
 * Cancellation follows sleep.c: job_cancel() marks the instance first,
 * then calls cancel(), which only wakes the thread to look at the marks of
 * the transfers it holds.  A cancel that comes before the transfer reached
 * the thread finds nothing; start() reads the mark after it queued the
 * transfer (the queue's lock orders the two), and the thread reads it when
 * it takes the transfer in and before it completes one as anything but
 * CANCELLED.  So cancel() never completes a future itself: it returns
 * false, and this thread completes it, CANCELLED, at its next turn.
 *
 * The job's timeout (def->timeout_ns) bounds the whole job, retries and
 * their waits included: each attempt gets what is left of it as its
 * CURLOPT_TIMEOUT_MS (or attempt_timeout if shorter), and a retry whose
 * wait would not leave time for it is not made.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "job.h"
#include "kinds/http_kind.h"
#include "kinds/kinds.h"
#include "log.h"

#define NS_PER_MS 1000000LL
#define IDLE_POLL_MS 1000	/* no retry waiting: poll this long at most */

struct http_transfer {
	struct job_instance *inst;	/* a reference */
	const struct http_def *hd;	/* borrowed: inst holds its config */
	CURL *easy;
	struct http_request req;
	char errbuf[CURL_ERROR_SIZE];
	char *data;			/* the response body so far */
	size_t len, cap;
	bool too_big;			/* past max_response: aborted */
	bool in_multi;
	unsigned attempts;		/* made so far */
	int64_t deadline_ns;		/* CLOCK_MONOTONIC: the job's timeout */
	int64_t retry_at_ns;		/* when not in_multi: the next attempt */
	struct http_transfer *prev, *next;	/* queue, then the thread's */
};

struct http_state {
	pthread_t thread;
	CURLM *multi;
	pthread_mutex_t lock;
	/* Guarded by lock. */
	struct http_transfer *incoming;	/* newest first */
	bool scan_cancels;
	bool stopping;
	/* The thread's own. */
	struct http_transfer *live;	/* in the multi handle or waiting */
	uint64_t random;		/* xorshift64 state: retry jitter */
};

int
http_transfer_global_init(char *why, size_t whylen)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK) {
		snprintf(why, whylen, "libcurl: %s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- one transfer ------------------------------------------------------- */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_transfer *t = arg;
	size_t n = size * nmemb, cap;
	char *data;

	if (n > t->hd->max_response - t->len) {
		t->too_big = true;
		return 0;	/* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (t->len + n + 1 > t->cap) {
		cap = t->cap > 0 ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		if ((data = realloc(t->data, cap)) == NULL)
			return 0;
		t->data = data;
		t->cap = cap;
	}
	memcpy(t->data + t->len, ptr, n);
	t->len += n;
	return n;
}

static void
transfer_free(struct http_transfer *t)
{
	if (t->easy != NULL)
		curl_easy_cleanup(t->easy);
	http_request_clear(&t->req);
	free(t->data);
	job_unref(t->inst);
	free(t);
}

/* The options that stay the same across attempts.  0, or -1. */
static int
transfer_setup(struct http_transfer *t)
{
	const struct http_def *hd = t->hd;
	CURL *e = t->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	bad |= curl_easy_setopt(e, CURLOPT_URL, t->req.url);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION,
				hd->follow_redirects ? 1L : 0L);
	bad |= curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	/* Never a proxy from the environment (http_proxy and the like). */
	bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
	bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
				(curl_off_t)hd->max_response);
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->req.headers);
	bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "taskpoold");
	if (!strcmp(hd->method, "HEAD"))
		bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (strcmp(hd->method, "GET"))
		bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, hd->method);
	if (t->req.body != NULL) {
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
					(curl_off_t)t->req.body_len);
		bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body);
	}
	return bad ? -1 : 0;
}

/*
 * A transfer for inst with its request rendered: new, or NULL with the
 * reason in why (and errno).
 */
static struct http_transfer *
transfer_new(struct job_instance *inst, char *why, size_t whylen)
{
	struct http_transfer *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	t->inst = job_ref(inst);
	t->hd = inst->def->kind_data;
	t->deadline_ns = clock_now_ns(CLOCK_MONOTONIC) + inst->def->timeout_ns;
	if (http_request_render(t->hd, inst->params, &t->req, why, whylen))
		goto fail;
	if ((t->easy = curl_easy_init()) == NULL || transfer_setup(t)) {
		snprintf(why, whylen, "libcurl could not set up the transfer");
		goto fail;
	}
	return t;
fail:
	transfer_free(t);
	return NULL;
}

/* ---- the thread's list -------------------------------------------------- */

static void
live_link(struct http_state *st, struct http_transfer *t)
{
	t->prev = NULL;
	t->next = st->live;
	if (st->live != NULL)
		st->live->prev = t;
	st->live = t;
}

/*
 * Ends t: out of the multi handle and the list, its future completed as
 * state with result (stolen, flags) or error (a copy is made), unless a
 * cancel came first, then freed.
 */
static void
transfer_end(struct http_state *st, struct http_transfer *t,
	     enum future_state state, char *result, unsigned flags,
	     const char *error)
{
	if (t->in_multi)
		curl_multi_remove_handle(st->multi, t->easy);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else if (st->live == t)
		st->live = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	if (state != FUTURE_CANCELLED && job_cancel_requested(t->inst)) {
		free(result);
		result = NULL;	/* future_complete_as() steals what it gets */
		state = FUTURE_CANCELLED;
		error = NULL;
	}
	future_complete_as(t->inst->future, state, result, flags,
			   error != NULL ? strdup(error) : NULL);
	transfer_free(t);
}

static uint64_t
next_random(struct http_state *st)
{
	uint64_t x = st->random;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return st->random = x;
}

/* ms for curl, rounded up so that a timeout never fires early. */
static long
ns_to_ms(int64_t ns)
{
	return (long)((ns + NS_PER_MS - 1) / NS_PER_MS);
}

/* Starts t's next attempt now, or ends it if that cannot be. */
static void
attempt_begin(struct http_state *st, struct http_transfer *t, int64_t now)
{
	int64_t left = t->deadline_ns - now, limit = left;
	const struct http_def *hd = t->hd;

	if (left <= 0) {
		transfer_end(st, t, FUTURE_TIMED_OUT, NULL, 0, "timed out");
		return;
	}
	if (hd->attempt_timeout_ns > 0 && hd->attempt_timeout_ns < limit)
		limit = hd->attempt_timeout_ns;
	curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, ns_to_ms(limit));
	curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 ns_to_ms(hd->connect_timeout_ns < limit ?
				  hd->connect_timeout_ns : limit));
	t->len = 0;
	t->too_big = false;
	t->errbuf[0] = '\0';
	t->attempts++;
	if (curl_multi_add_handle(st->multi, t->easy) != CURLM_OK) {
		transfer_end(st, t, FUTURE_FAILED, NULL, 0,
			     "libcurl could not start the transfer");
		return;
	}
	t->in_multi = true;
}

/* ---- what an attempt came to -------------------------------------------- */

/* Completes t SUCCEEDED with its body: JSON if it says so, else text. */
static void
transfer_succeed(struct http_state *st, struct http_transfer *t)
{
	const char *ct = NULL;
	json_error_t err;
	char why[256], *text;
	json_t *v;

	curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (t->len == 0 || !http_content_type_is_json(ct)) {
		text = http_text_to_utf8(t->data != NULL ? t->data : "", t->len);
		transfer_end(st, t, text != NULL ? FUTURE_SUCCEEDED :
			     FUTURE_FAILED, text, 0,
			     text != NULL ? NULL : "out of memory");
		return;
	}
	v = json_loadb(t->data, t->len, JSON_DECODE_ANY, &err);
	if (v == NULL) {
		snprintf(why, sizeof(why), "the response says it is JSON but "
			 "is not (%s at line %d)", err.text, err.line);
		transfer_end(st, t, FUTURE_FAILED, NULL, 0, why);
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	transfer_end(st, t, text != NULL ? FUTURE_SUCCEEDED : FUTURE_FAILED,
		     text, FUTURE_RESULT_JSON,
		     text != NULL ? NULL : "out of memory");
}

/* Errors worth another attempt: the upstream could not be reached. */
static bool
curl_code_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/*
 * "HTTP 500: <the first 512 bytes of the body>" into error.  Returns true
 * if the status is one to retry (502, 503, 504).
 */
static bool
status_error(const struct http_transfer *t, long status, char *error,
	     size_t errlen)
{
	size_t n = t->len < HTTP_ERROR_BODY_MAX ? t->len : HTTP_ERROR_BODY_MAX;
	char *body = http_text_to_utf8(t->data != NULL ? t->data : "", n);

	snprintf(error, errlen, "HTTP %ld%s%s", status,
		 body != NULL && *body != '\0' ? ": " : "",
		 body != NULL ? body : "");
	free(body);
	return status == 502 || status == 503 || status == 504;
}

/*
 * The wait the upstream's Retry-After asks of easy's last response, in
 * ns (a week or more: "never", INT64_MAX / 2); 0 when it has none, or
 * names the past.  Seconds come from libcurl; a date is read here,
 * against the clock to the nanosecond: libcurl counts it from time(NULL),
 * in whole seconds, which retried up to a second after the date.
 */
static int64_t
retry_after_ns(CURL *easy)
{
	const int64_t never = INT64_MAX / 2;
	struct curl_header *h;
	curl_off_t after = 0;
	struct timespec now;
	int64_t wait;
	time_t date;

	if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1,
			     &h) == CURLHE_OK &&
	    (h->value[0] < '0' || h->value[0] > '9') &&
	    (date = curl_getdate(h->value, NULL)) != -1) {
		clock_gettime(CLOCK_REALTIME, &now);
		if ((int64_t)date - now.tv_sec > 7 * 86400)
			return never;
		wait = ((int64_t)date - now.tv_sec) * 1000000000LL -
		       now.tv_nsec;
		return wait > 0 ? wait : 0;
	}
	curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &after);
	if (after <= 0)
		return 0;
	return after < 7 * 86400 ? (int64_t)after * 1000000000LL : never;
}

/*
 * Arms t's next attempt after the backoff, or the upstream's Retry-After
 * (seconds or a date).  A wait that would use up the job's time is not
 * made: t fails now with error.
 */
static void
retry_later(struct http_state *st, struct http_transfer *t, int64_t now,
	    const char *error)
{
	int64_t wait = retry_after_ns(t->easy);
	char why[HTTP_ERROR_BODY_MAX + 256];

	if (wait == 0)
		wait = http_backoff_ns(t->attempts, t->hd->retry_base_ns,
				       t->hd->retry_max_ns, next_random(st));
	if (now + wait >= t->deadline_ns) {
		snprintf(why, sizeof(why), "%s (no time left for a retry)",
			 error);
		transfer_end(st, t, FUTURE_FAILED, NULL, 0, why);
		return;
	}
	t->retry_at_ns = now + wait;
}

/* What becomes of t, whose attempt libcurl ended with rc. */
static void
attempt_done(struct http_state *st, struct http_transfer *t, CURLcode rc,
	     int64_t now)
{
	char error[HTTP_ERROR_BODY_MAX + 128];
	long status = 0;
	bool retry;

	curl_multi_remove_handle(st->multi, t->easy);
	t->in_multi = false;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 200 && status <= 299) {
		transfer_succeed(st, t);
		return;
	}
	if (rc == CURLE_OK) {
		retry = status_error(t, status, error, sizeof(error));
	} else if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(error, sizeof(error), "HTTP %ld: the response is "
			 "larger than max_response (%zu bytes)", status,
			 t->hd->max_response);
		retry = false;
	} else if (rc == CURLE_OPERATION_TIMEDOUT &&
		   now >= t->deadline_ns - NS_PER_MS) {
		transfer_end(st, t, FUTURE_TIMED_OUT, NULL, 0, "timed out");
		return;
	} else {
		snprintf(error, sizeof(error), "%s", t->errbuf[0] != '\0' ?
			 t->errbuf : curl_easy_strerror(rc));
		retry = curl_code_retryable(rc);
	}
	if (!retry || t->attempts > t->hd->retries)
		transfer_end(st, t, FUTURE_FAILED, NULL, 0, error);
	else
		retry_later(st, t, now, error);
}

/* ---- the thread --------------------------------------------------------- */

/* Takes in what start() queued, oldest first; stop: ends them all. */
static void
take_incoming(struct http_state *st, struct http_transfer *in, bool stop)
{
	struct http_transfer *t, *oldest = NULL;

	while (in != NULL) {		/* newest first: reverse */
		t = in;
		in = in->next;
		t->next = oldest;
		oldest = t;
	}
	while ((t = oldest) != NULL) {
		oldest = t->next;
		live_link(st, t);
		if (stop)
			transfer_end(st, t, FUTURE_CANCELLED, NULL, 0,
				     "daemon stopped");
		else if (job_cancel_requested(t->inst))
			transfer_end(st, t, FUTURE_CANCELLED, NULL, 0, NULL);
		else
			attempt_begin(st, t, clock_now_ns(CLOCK_MONOTONIC));
	}
}

/*
 * Walks the thread's transfers: ends the cancelled ones (every one when
 * stop, saying why), starts the retries that are due, and returns how long
 * to poll until the next one is (ms).
 */
static int
walk_live(struct http_state *st, bool scan, bool stop)
{
	struct http_transfer *t, *next;
	int64_t now = clock_now_ns(CLOCK_MONOTONIC), soonest = -1;

	for (t = st->live; t != NULL; t = next) {
		next = t->next;
		if (stop) {
			transfer_end(st, t, FUTURE_CANCELLED, NULL, 0,
				     "daemon stopped");
		} else if (scan && job_cancel_requested(t->inst)) {
			transfer_end(st, t, FUTURE_CANCELLED, NULL, 0, NULL);
		} else if (!t->in_multi) {
			if (t->retry_at_ns <= now)
				attempt_begin(st, t, now);
			else if (soonest < 0 || t->retry_at_ns < soonest)
				soonest = t->retry_at_ns;
		}
	}
	if (soonest < 0 || soonest - now > IDLE_POLL_MS * NS_PER_MS)
		return IDLE_POLL_MS;
	return (int)ns_to_ms(soonest - now);
}

/* Hands each finished attempt to attempt_done(). */
static void
read_finished(struct http_state *st)
{
	struct http_transfer *t;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(st->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		t = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
		attempt_done(st, t, msg->data.result,
			     clock_now_ns(CLOCK_MONOTONIC));
	}
}

static void *
http_thread_main(void *arg)
{
	struct http_state *st = arg;
	struct http_transfer *in;
	bool scan, stop;
	int running, wait_ms;

	for (;;) {
		pthread_mutex_lock(&st->lock);
		in = st->incoming;
		st->incoming = NULL;
		scan = st->scan_cancels;
		st->scan_cancels = false;
		stop = st->stopping;
		pthread_mutex_unlock(&st->lock);
		take_incoming(st, in, stop);
		wait_ms = walk_live(st, scan, stop);
		if (stop)
			return NULL;
		curl_multi_perform(st->multi, &running);
		read_finished(st);
		/* A retry armed just now may be due before wait_ms. */
		if (st->live != NULL)
			wait_ms = walk_live(st, false, false);
		curl_multi_poll(st->multi, NULL, 0, wait_ms, NULL);
	}
}

/* ---- the kind's operations ---------------------------------------------- */

int
http_transfer_open(struct job_env *env, void **state)
{
	struct http_state *st = calloc(1, sizeof(*st));
	sigset_t all, old;
	int err;

	if (st == NULL)
		return -1;
	if ((st->multi = curl_multi_init()) == NULL) {
		free(st);
		errno = ENOMEM;
		return -1;
	}
	/* Jitter only: any seed that differs between runs will do. */
	if (getrandom(&st->random, sizeof(st->random), GRND_NONBLOCK) !=
	    sizeof(st->random))
		st->random = (uint64_t)clock_now_ns(CLOCK_REALTIME);
	st->random |= 1;	/* xorshift's one bad state is 0 */
	pthread_mutex_init(&st->lock, NULL);
	/* Like every thread but main: all signals blocked (THREADS.md). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&st->thread, NULL, http_thread_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		pthread_mutex_destroy(&st->lock);
		curl_multi_cleanup(st->multi);
		free(st);
		errno = err;
		return -1;
	}
	*state = st;
	return 0;
}

/*
 * Every transfer still held ends CANCELLED ("daemon stopped") on the
 * thread, which then returns; a start() after this completes its own job.
 */
void
http_transfer_close(struct job_env *env, void *state)
{
	struct http_state *st = state;

	if (st == NULL)
		return;
	pthread_mutex_lock(&st->lock);
	st->stopping = true;
	pthread_mutex_unlock(&st->lock);
	curl_multi_wakeup(st->multi);
	pthread_join(st->thread, NULL);
	curl_multi_cleanup(st->multi);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/*
 * Renders the request on the calling thread (a bad header value fails the
 * job here) and queues the transfer for the thread.  inst's caller holds
 * a reference; the transfer takes its own.
 */
int
http_transfer_start(struct job_instance *inst, struct job_env *env)
{
	struct http_state *st = kinds_state(env, &job_kind_http);
	struct http_transfer *t;
	char why[256];
	bool stopping;

	if (st == NULL) {
		errno = ENOTCONN;
		return -1;
	}
	if (!future_start(inst->future))
		return 0;	/* cancelled before it started */
	if (env->test_after_start != NULL)
		env->test_after_start(inst);
	job_note_started(inst);
	if ((t = transfer_new(inst, why, sizeof(why))) == NULL) {
		future_complete(inst->future, job_cancel_requested(inst) ?
				FUTURE_CANCELLED : FUTURE_FAILED, NULL,
				strdup(why));
		return 0;
	}
	/*
	 * The wake-up under the lock: once the transfer is on the queue, a
	 * close may take it, join the thread and free st as soon as the lock
	 * is let go.  curl_multi_wakeup() only writes to a socket.
	 */
	pthread_mutex_lock(&st->lock);
	stopping = st->stopping;
	if (!stopping) {
		t->next = st->incoming;
		st->incoming = t;
		curl_multi_wakeup(st->multi);
	}
	pthread_mutex_unlock(&st->lock);
	if (stopping) {
		future_complete(inst->future, FUTURE_CANCELLED, NULL,
				strdup("daemon stopped"));
		transfer_free(t);
		return 0;
	}
	/*
	 * A cancel since future_start() found nothing queued and stopped
	 * nothing: it left its mark, which the queue's lock orders before
	 * this read.  Waking the thread to scan makes it end the transfer.
	 */
	if (job_cancel_requested(inst))
		http_transfer_cancel(inst, env);
	return 0;
}

/*
 * Wakes the thread to end the transfers whose instance is marked (the
 * mark is set: job_cancel() sets it before calling this).  It completes
 * the future, never this call: returns false.
 */
bool
http_transfer_cancel(struct job_instance *inst, struct job_env *env)
{
	struct http_state *st = kinds_state(env, &job_kind_http);

	if (st == NULL)
		return false;
	pthread_mutex_lock(&st->lock);
	st->scan_cancels = true;
	curl_multi_wakeup(st->multi);	/* under the lock: see start() */
	pthread_mutex_unlock(&st->lock);
	return false;
}
