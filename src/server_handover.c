/*
 * server_handover.c - the hand-over of a request between the thread that
 * answers it and its HTTP thread (server_private.h has the state machine):
 * an answer published, a suspended connection resumed and its HTTP thread
 * woken, and a publisher's last touch of the server.  Any thread.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "log.h"
#include "server_private.h"

/*
 * Makes thread t run its daemon again.  MHD drops its own wake-up channel
 * when it has no thread of its own, so a resumed connection would wait for
 * the next network event.  One write per wake-up, however many resumes
 * come in before the thread runs.
 */
void
server_handover_wake(struct server_thread *t)
{
	uint64_t one = 1;

	if (atomic_exchange(&t->wake_pending, true))
		return;
	/* Can only fail once the counter is near 2^64: it is read on
	 * every wake-up.  If it did, let the next resume try again. */
	if (write(t->wake_fd, &one, sizeof(one)) != sizeof(one)) {
		log_warn("cannot wake an HTTP thread");
		atomic_store(&t->wake_pending, false);
	}
}

/* Any thread: hands a suspended connection back to its daemon. */
void
server_handover_resume(struct server_request *req)
{
	MHD_resume_connection(req->conn);
	server_handover_wake(req->thread);
}

/*
 * Makes the claimed answer visible; resumes if the connection waits.  The
 * caller has claimed the request.  Any thread.
 *
 * Resuming hands the connection back to its HTTP thread, which may then
 * send the answer and finish with the connection at once: from there on
 * only `publishers` keeps server_free() from freeing the thread (and its
 * eventfd) that server_handover_wake() still writes.  So the count goes up
 * before the state changes and down after the last touch of the server.
 * `counted` tells server_free() that a claimer got this far: until then
 * the connection cannot have resumed, so the request is still listed.
 */
void
server_handover_publish(struct server_request *req)
{
	struct server *s = req->server;

	/*
	 * Once resumed, the connection may be answered and finished on its
	 * HTTP thread at once, dropping the server's reference: hold one of
	 * our own until the wake-up is written.
	 */
	server_request_ref(req);
	atomic_fetch_add(&s->publishers, 1);
	atomic_store(&req->counted, true);
	if (atomic_exchange(&req->state, REQ_RESPONDED) == REQ_SUSPENDED) {
		atomic_fetch_sub(&s->waiting, 1);
		server_handover_resume(req);
	}
	server_request_unref(req);
	server_handover_leave(s);
}

/*
 * A publisher's last touch of the server: it leaves `publishers`.  Any
 * thread; nothing of the server may be read after.
 */
void
server_handover_leave(struct server *s)
{
	if (s->opts.test_after_resume != NULL)
		s->opts.test_after_resume(s->opts.test_arg);
	/*
	 * The decrement is the last touch of the server: once the count is
	 * 0, server_free() may free it, so nothing may be read after.  If a
	 * stop has begun, the decrement and the wake-up are done under the
	 * lock that server_free() waits with, so it cannot see 0 and free
	 * the server before this has let go of the lock.  A stop that begins
	 * just after `freeing` was read here gets no wake-up: server_free()
	 * waits in short slices and sees the count for itself.
	 */
	if (!atomic_load(&s->freeing)) {
		atomic_fetch_sub(&s->publishers, 1);
		return;
	}
	pthread_mutex_lock(&s->lock);
	if (atomic_fetch_sub(&s->publishers, 1) == 1)
		pthread_cond_broadcast(&s->publishers_done);
	pthread_mutex_unlock(&s->lock);
}
