/*
 * template.c - see template.h.
 *
 * A template is its text cut into pieces: literal runs and holes, in
 * order.  Rendering appends each piece to a growing buffer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kinds/template.h"

struct piece {
	bool hole;
	size_t len;
	char *text;		/* the literal, or the parameter's name */
};

struct template {
	size_t npieces;
	struct piece pieces[];
};

/* Length of a hole's name at s (just after its '{'), or 0 if none. */
static size_t
hole_name_len(const char *s)
{
	size_t n = 0;

	while (isalnum((unsigned char)s[n]) || s[n] == '_')
		n++;
	return n > 0 && s[n] == '}' ? n : 0;
}

/* Upper bound on the pieces of text: each hole makes at most two. */
static size_t
count_pieces(const char *text)
{
	size_t n = 1;

	for (; *text != '\0'; text++)
		if (*text == '{' && hole_name_len(text + 1) > 0)
			n += 2;
	return n;
}

static int
add_piece(struct template *t, bool hole, const char *s, size_t len)
{
	struct piece *p = &t->pieces[t->npieces];

	if (len == 0 && !hole)
		return 0;
	if ((p->text = strndup(s, len)) == NULL)
		return -1;
	p->hole = hole;
	p->len = len;
	t->npieces++;
	return 0;
}

struct template *
template_parse(const char *text, const struct job_def *def, char *why,
	       size_t whylen)
{
	struct template *t = calloc(1, sizeof(*t) + count_pieces(text) *
				    sizeof(t->pieces[0]));
	const char *lit = text, *s;
	size_t n;

	if (t == NULL)
		goto nomem;
	for (s = text; *s != '\0'; s++) {
		if (*s != '{' || (n = hole_name_len(s + 1)) == 0)
			continue;
		if (add_piece(t, false, lit, (size_t)(s - lit)) ||
		    add_piece(t, true, s + 1, n))
			goto nomem;
		if (config_job_param(def, t->pieces[t->npieces - 1].text) ==
		    NULL) {
			snprintf(why, whylen, "{%.*s} names no declared "
				 "parameter (declare it with param.%.*s)",
				 (int)n, s + 1, (int)n, s + 1);
			template_free(t);
			return NULL;
		}
		s += n + 1;
		lit = s + 1;
	}
	if (add_piece(t, false, lit, strlen(lit)))
		goto nomem;
	return t;
nomem:
	snprintf(why, whylen, "out of memory");
	template_free(t);
	return NULL;
}

bool
template_has_holes(const struct template *t)
{
	size_t i;

	for (i = 0; i < t->npieces; i++)
		if (t->pieces[i].hole)
			return true;
	return false;
}

/* A growing string; on failure buf is freed and set to NULL. */
struct buf {
	char *data;
	size_t len, cap;
};

static int
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap > 0 ? b->cap : 64;
		char *data;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((data = realloc(b->data, cap)) == NULL)
			return -1;
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* RFC 3986 section 2.3: what a URL carries as is. */
static bool
url_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int
buf_add_url(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = { '%', 0, 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (url_unreserved(c)) {
			if (buf_add(b, (const char *)&s[i], 1))
				return -1;
			continue;
		}
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		if (buf_add(b, esc, 3))
			return -1;
	}
	return 0;
}

/* One value into b as esc says.  0, or -1 with errno. */
static int
add_value(struct buf *b, const json_t *v, enum template_escape esc)
{
	char num[32], *json;
	const char *s;
	size_t n;
	int rc;

	if (esc == TEMPLATE_JSON) {
		if ((json = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
			return -1;
		rc = buf_add(b, json, strlen(json));
		free(json);
		return rc;
	}
	if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (json_is_integer(v)) {
		n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v));
		s = num;
	} else if (json_is_boolean(v)) {
		s = json_is_true(v) ? "true" : "false";
		n = strlen(s);
	} else {
		errno = EINVAL;
		return -1;
	}
	return esc == TEMPLATE_URL ? buf_add_url(b, s, n) : buf_add(b, s, n);
}

char *
template_render(const struct template *t, const json_t *params,
		enum template_escape esc, size_t *len)
{
	struct buf b = { NULL, 0, 0 };
	const json_t *v;
	size_t i;

	if (buf_add(&b, "", 0))
		return NULL;
	for (i = 0; i < t->npieces; i++) {
		const struct piece *p = &t->pieces[i];

		if (!p->hole) {
			if (buf_add(&b, p->text, p->len))
				goto fail;
			continue;
		}
		v = json_object_get(params, p->text);
		if (v == NULL) {
			errno = EINVAL;
			goto fail;
		}
		if (add_value(&b, v, esc))
			goto fail;
	}
	if (len != NULL)
		*len = b.len;
	return b.data;
fail:
	free(b.data);
	return NULL;
}

void
template_free(struct template *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->npieces; i++)
		free(t->pieces[i].text);
	free(t);
}
