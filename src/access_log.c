/*
 * access_log.c - see access_log.h.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "access_log.h"

#define CUT_MARK "#cut"
#define CUT_MARK_LEN (sizeof(CUT_MARK) - 1)

/*
 * The bytes each part keeps as they are, besides letters and digits: what
 * RFC 3986 lets a path segment, or a query's name or value, hold unescaped
 * (less '*'), and a token's characters (RFC 9110) for the method (less
 * '#', '%' and '*').  Everything else, space, quote, backslash, control
 * and non-ASCII bytes among it, is escaped.
 */
static const char path_keeps[] = "-._~!$&'()+,;=:@/";
static const char query_keeps[] = "-._~!$'(),;:@/?";
static const char method_keeps[] = "-._~!$&'+^`|";

static const char hex[] = "0123456789ABCDEF";

/* One field being written: buf[0..*len), at most max bytes. */
struct field {
	char *buf;
	size_t len, max;
	bool cut;
};

static bool
keeps(unsigned char c, const char *set)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != '\0' && strchr(set, c) != NULL);
}

/*
 * Ends a field that did not fit: drops whole pieces (a byte, or a "%XX",
 * told apart by its '%', which is never kept) until the mark fits, and
 * writes it.
 */
static void
cut(struct field *f)
{
	while (f->len > f->max - CUT_MARK_LEN)
		f->len -= f->len >= 3 && f->buf[f->len - 3] == '%' ? 3 : 1;
	memcpy(f->buf + f->len, CUT_MARK, CUT_MARK_LEN);
	f->len += CUT_MARK_LEN;
	f->cut = true;
}

/* Appends n bytes of s, each as it is when keep holds it, else as %XX. */
static void
put(struct field *f, const char *s, size_t n, const char *keep)
{
	size_t i;

	for (i = 0; i < n && !f->cut; i++) {
		unsigned char c = (unsigned char)s[i];

		if (keep != NULL && !keeps(c, keep)) {
			if (f->len + 3 > f->max) {
				cut(f);
				break;
			}
			f->buf[f->len++] = '%';
			f->buf[f->len++] = hex[c >> 4];
			f->buf[f->len++] = hex[c & 15];
		} else if (f->len + 1 > f->max) {
			cut(f);
		} else {
			f->buf[f->len++] = (char)c;
		}
	}
}

/* The target as a field; target_done() puts back what changed. */
static struct field
target_field(struct access_log_target *t)
{
	struct field f = { t->text, t->len, ACCESS_LOG_TARGET_MAX, t->cut };

	return f;
}

static void
target_done(struct access_log_target *t, const struct field *f)
{
	t->len = f->len;
	t->cut = f->cut;
	t->text[t->len] = '\0';
}

void
access_log_target_init(struct access_log_target *t)
{
	t->len = 0;
	t->nargs = 0;
	t->cut = false;
	t->text[0] = '\0';
}

void
access_log_target_path(struct access_log_target *t, const char *path,
		       size_t len)
{
	struct field f = target_field(t);

	put(&f, path, len, path_keeps);
	target_done(t, &f);
}

void
access_log_target_arg(struct access_log_target *t, const char *key,
		      size_t key_len, const char *value, size_t value_len,
		      bool shown)
{
	struct field f = target_field(t);

	put(&f, t->nargs++ == 0 ? "?" : "&", 1, NULL);
	put(&f, key, key_len, query_keeps);
	if (value != NULL) {
		put(&f, "=", 1, NULL);
		if (shown)
			put(&f, value, value_len, query_keeps);
		else
			put(&f, "***", 3, NULL);
	}
	target_done(t, &f);
}

size_t
access_log_format(char *buf, size_t size, const struct access_log_entry *e)
{
	char method[ACCESS_LOG_METHOD_MAX + 1];
	struct field f = { method, 0, ACCESS_LOG_METHOD_MAX, false };
	long long ms = (long long)(e->duration_ns / 1000000);
	long long us = (long long)(e->duration_ns / 1000 % 1000);
	int n;

	put(&f, e->method, strlen(e->method), method_keeps);
	method[f.len] = '\0';
	n = snprintf(buf, size, "access: %s %u %" PRIu64 " %lld.%03lldms %s %s",
		     e->client != NULL ? e->client : "-", e->status, e->bytes,
		     ms, us, method, e->target->text);
	if (n < 0)
		n = 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

const char *
access_log_client(char buf[ACCESS_LOG_CLIENT_MAX], const struct sockaddr *sa)
{
	char addr[INET6_ADDRSTRLEN];

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		snprintf(buf, ACCESS_LOG_CLIENT_MAX, "%s:%u", addr,
			 (unsigned)ntohs(in->sin_port));
		return buf;
	}
	if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		snprintf(buf, ACCESS_LOG_CLIENT_MAX, "[%s]:%u", addr,
			 (unsigned)ntohs(in6->sin6_port));
		return buf;
	}
	return NULL;
}
