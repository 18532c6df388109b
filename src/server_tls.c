/*
 * server_tls.c - TLS on the HTTP threads: the credentials the server
 * serves now, which a reload replaces, and GnuTLS's certificate retrieve
 * callback, which hands each connection the credentials it was given when
 * it was accepted.
 *
 * libmicrohttpd 0.9.75 sets a certificate once, at MHD_start_daemon();
 * MHD_OPTION_HTTPS_CERT_CALLBACK instead makes GnuTLS ask at each
 * handshake (gnutls_certificate_set_retrieve_function2()), and MHD sets
 * the session's pointer to the connection.  GnuTLS does not copy what the
 * callback returns and may use it until gnutls_deinit(), which MHD calls
 * before it notifies the connection's close (MHD_cleanup_connections();
 * only a connection that fails right after STARTED, which MHD_USE_TURBO
 * rules out, is told CLOSED first, before any handshake could ask for
 * credentials): so each connection takes a
 * reference to the current credentials when accepted
 * (server_intake_on_connection()) and drops it when closed, and a reload
 * (server_set_tls()) frees nothing that a handshake or a session uses.
 * The priority string, by contrast, is the daemon's for its life: it
 * changes only on restart.
 */
#include "log.h"
#include "server_private.h"

void
server_tls_init(struct server *s)
{
	pthread_mutex_init(&s->tls_lock, NULL);
	s->tls = s->opts.tls != NULL ? tls_creds_ref(s->opts.tls) : NULL;
	s->tls_on = s->tls != NULL;
	s->opts.tls = NULL;	/* borrowed for server_new() only */
}

void
server_tls_clear(struct server *s)
{
	tls_creds_unref(s->tls);
	pthread_mutex_destroy(&s->tls_lock);
}

struct tls_creds *
server_tls_current(struct server *s)
{
	struct tls_creds *c = NULL;

	if (!s->tls_on)		/* s->tls itself is read under the lock */
		return NULL;
	pthread_mutex_lock(&s->tls_lock);
	c = tls_creds_ref(s->tls);
	pthread_mutex_unlock(&s->tls_lock);
	return c;
}

int
server_set_tls(struct server *s, struct tls_creds *creds)
{
	struct tls_creds *old;

	if (!s->tls_on || creds == NULL)
		return -1;
	tls_creds_ref(creds);
	pthread_mutex_lock(&s->tls_lock);
	old = s->tls;
	s->tls = creds;
	pthread_mutex_unlock(&s->tls_lock);
	tls_creds_unref(old);	/* outside the lock: it may free */
	return 0;
}

/*
 * gnutls_certificate_retrieve_function2, on the connection's HTTP thread
 * (inside MHD_run()): the chain and key the connection holds, borrowed
 * until it closes.  Returns 0, or -1 (the handshake fails) when the
 * connection holds none (its context could not be allocated).
 */
int
server_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
		    int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		    int pk_algos_length, gnutls_pcert_st **chain,
		    unsigned int *length, gnutls_privkey_t *key)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(session);
	const struct server_conn *sc;
	const struct tls_creds *c;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	sc = conn != NULL ? server_conn_of(conn) : NULL;
	c = sc != NULL ? sc->tls : NULL;
	if (c == NULL) {
		log_debug("TLS: no credentials for a handshake");
		return -1;
	}
	tls_creds_get(c, chain, length, key);
	return 0;
}
