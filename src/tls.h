/*
 * tls.h - a TLS server certificate chain and its private key, loaded from
 * PEM files into a shared, immutable value, for the HTTP server to hand to
 * GnuTLS at each handshake.  A leaf: it knows GnuTLS, nothing of ours.
 *
 * Why a value of our own and not libmicrohttpd's MHD_OPTION_HTTPS_MEM_CERT:
 * a daemon started with those keeps them for its life.  A SIGHUP must
 * replace the certificate without a restart, so the config loads it (a
 * bad file is a config error, reported with file and line by `-t` and by
 * a refused reload) and the server serves whichever value is current
 * through a GnuTLS retrieve callback (server_tls.c).  A connection holds a
 * reference to the value it was given until it closes, so a reload never
 * frees credentials under a handshake or a session.
 */
#ifndef TASKPOOLD_TLS_H
#define TASKPOOLD_TLS_H

#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

/*
 * The default [server] tls_priorities: GnuTLS's SECURE128 (nothing under
 * 128-bit security, which drops SHA-1 signatures), TLS 1.3 and 1.2 only
 * (1.0 and 1.1 are deprecated by RFC 8996), and of TLS 1.2 only suites with
 * forward secrecy and AEAD ciphers (no static RSA key exchange, no CBC, no
 * SHA-1 MAC): Mozilla's "intermediate" profile.  Every client of the last
 * ten years speaks one of these.
 */
#define TLS_PRIORITIES_DEFAULT \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-AES-256-CBC:" \
	"-AES-128-CBC:-SHA1"

#define TLS_CHAIN_MAX 16	/* certificates in the cert file */

struct tls_creds;

/*
 * Reads the PEM certificate chain at cert_path (the server's certificate
 * first, then its intermediates) and the PEM private key at key_path
 * (unencrypted: PKCS#8, PKCS#1 or SEC1), and checks that the key is the
 * certificate's.  The key file must grant no access to others (mode
 * o-rwx): a key that any local user can read is no secret, and it is
 * refused rather than served.  Returns a new value (refcount 1), or NULL
 * with the reason in why (NUL-terminated, at most size bytes) and
 * *which set to 'c' (the certificate is at fault) or 'k' (the key).
 */
struct tls_creds *tls_creds_load(const char *cert_path, const char *key_path,
				 char *why, size_t size, char *which);

/* A new reference to c; c non-NULL.  Any thread. */
struct tls_creds *tls_creds_ref(struct tls_creds *c);

/* Drops a reference; the last frees.  NULL is ok.  Any thread. */
void tls_creds_unref(struct tls_creds *c);

/*
 * What a gnutls_certificate_retrieve_function2 hands back: the chain
 * and the key, borrowed for as long as the caller holds c.
 */
void tls_creds_get(const struct tls_creds *c, gnutls_pcert_st **chain,
		   unsigned *length, gnutls_privkey_t *key);

/*
 * The serial number of the first certificate, as lowercase hex, for the
 * log ("serial 1a2b"); "?" if it cannot be read.
 */
void tls_creds_serial(const struct tls_creds *c, char *buf, size_t size);

/*
 * Checks a GnuTLS priority string.  Returns 0, or -1 with the reason
 * (GnuTLS's, and where in the string) in why.
 */
int tls_priorities_check(const char *priorities, char *why, size_t size);

#endif
