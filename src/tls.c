/*
 * tls.c - see tls.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "tls.h"

#define PEM_FILE_MAX (1024 * 1024)	/* a chain of 16 is ~30 KiB */

struct tls_creds {
	atomic_uint refs;
	unsigned length;		/* certificates in chain */
	gnutls_pcert_st chain[TLS_CHAIN_MAX];
	gnutls_privkey_t key;		/* owned */
	char serial[2 * 20 + 1];	/* RFC 5280: at most 20 octets */
};

/*
 * The whole file at path into *out (gnutls_free() it), at most
 * PEM_FILE_MAX bytes.  With `secret`, refused if others may access it.
 * Returns 0, or -1 with the reason in why.
 */
static int
read_pem(const char *path, bool secret, gnutls_datum_t *out, char *why,
	 size_t size)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(why, size, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > PEM_FILE_MAX) {
		snprintf(why, size, "%s is not a regular file of at most 1M",
			 path);
		goto fail;
	}
	if (secret && (st.st_mode & S_IRWXO)) {
		snprintf(why, size, "%s is accessible to others (mode %03o): "
			 "chmod o-rwx it", path, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	out->data = gnutls_malloc((size_t)st.st_size + 1);
	if (out->data == NULL) {
		snprintf(why, size, "out of memory");
		goto fail;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, out->data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	out->data[got] = '\0';
	out->size = (unsigned)got;
	return 0;
fail:
	close(fd);
	return -1;
}

/* Whether key is the private key of cert's public key. */
static bool
key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert)
{
	unsigned char a[64], b[64];
	size_t alen = sizeof(a), blen = sizeof(b);
	gnutls_pubkey_t pub;
	bool same = false;

	if (gnutls_pubkey_init(&pub) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a,
				     &alen) == 0 &&
	    gnutls_pubkey_get_key_id(cert, GNUTLS_KEYID_USE_SHA256, b,
				     &blen) == 0)
		same = alen == blen && memcmp(a, b, alen) == 0;
	gnutls_pubkey_deinit(pub);
	return same;
}

/* c->serial from the first certificate; "?" if unreadable. */
static void
read_serial(struct tls_creds *c)
{
	unsigned char raw[64];
	size_t len = sizeof(raw), i;
	gnutls_x509_crt_t crt;

	strcpy(c->serial, "?");
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &c->chain[0].cert,
				   GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_serial(crt, raw, &len) == 0 && len <= 20)
		for (i = 0; i < len; i++)
			snprintf(c->serial + 2 * i, 3, "%02x", raw[i]);
	gnutls_x509_crt_deinit(crt);
}

static void
creds_free(struct tls_creds *c)
{
	unsigned i;

	for (i = 0; i < c->length; i++)
		gnutls_pcert_deinit(&c->chain[i]);
	if (c->key != NULL)
		gnutls_privkey_deinit(c->key);
	free(c);
}

/* The chain of cert_path into c.  0, or -1 with the reason. */
static int
load_chain(struct tls_creds *c, const char *path, char *why, size_t size)
{
	gnutls_datum_t pem = { NULL, 0 };
	int err;

	if (read_pem(path, false, &pem, why, size) != 0)
		return -1;
	c->length = TLS_CHAIN_MAX;
	err = gnutls_pcert_list_import_x509_raw(c->chain, &c->length, &pem,
						GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(pem.data);
	if (err < 0 || c->length == 0) {
		c->length = 0;
		snprintf(why, size, "%s: no PEM certificate chain of at most "
			 "%d: %s", path, TLS_CHAIN_MAX,
			 err < 0 ? gnutls_strerror(err) : "empty");
		return -1;
	}
	return 0;
}

/* The key of key_path into c.  0, or -1 with the reason. */
static int
load_key(struct tls_creds *c, const char *path, char *why, size_t size)
{
	gnutls_datum_t pem = { NULL, 0 };
	int err;

	if (read_pem(path, true, &pem, why, size) != 0)
		return -1;
	err = gnutls_privkey_init(&c->key);
	if (err == 0)
		err = gnutls_privkey_import_x509_raw(c->key, &pem,
						     GNUTLS_X509_FMT_PEM,
						     NULL, 0);
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	if (err < 0) {
		snprintf(why, size, "%s: no unencrypted PEM private key: %s",
			 path, gnutls_strerror(err));
		return -1;
	}
	return 0;
}

struct tls_creds *
tls_creds_load(const char *cert_path, const char *key_path, char *why,
	       size_t size, char *which)
{
	struct tls_creds *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(why, size, "out of memory");
		*which = 'c';
		return NULL;
	}
	atomic_init(&c->refs, 1);
	*which = 'c';
	if (load_chain(c, cert_path, why, size) != 0)
		goto fail;
	*which = 'k';
	if (load_key(c, key_path, why, size) != 0)
		goto fail;
	if (!key_matches(c->key, c->chain[0].pubkey)) {
		snprintf(why, size, "%s is not the key of the certificate in "
			 "%s", key_path, cert_path);
		goto fail;
	}
	read_serial(c);
	return c;
fail:
	creds_free(c);
	return NULL;
}

struct tls_creds *
tls_creds_ref(struct tls_creds *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void
tls_creds_unref(struct tls_creds *c)
{
	if (c != NULL &&
	    atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		creds_free(c);
}

void
tls_creds_get(const struct tls_creds *c, gnutls_pcert_st **chain,
	      unsigned *length, gnutls_privkey_t *key)
{
	/* GnuTLS only reads them: the cast drops a const it does not take. */
	*chain = (gnutls_pcert_st *)c->chain;
	*length = c->length;
	*key = c->key;
}

void
tls_creds_serial(const struct tls_creds *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s", c->serial);
}

int
tls_priorities_check(const char *priorities, char *why, size_t size)
{
	gnutls_priority_t cache;
	const char *where = NULL;
	int err = gnutls_priority_init(&cache, priorities, &where);

	if (err < 0) {
		snprintf(why, size, "%s%s%s", gnutls_strerror(err),
			 where != NULL ? " at: " : "",
			 where != NULL ? where : "");
		return -1;
	}
	gnutls_priority_deinit(cache);
	return 0;
}
