/*
 * json_out.c - see json_out.h.
 */
#include <stdlib.h>
#include <string.h>

#include "json_out.h"

void
json_out_init(struct json_out *o)
{
	o->data = o->stack;
	o->len = 0;
	o->cap = sizeof(o->stack);
	o->failed = false;
}

/*
 * Room for n more bytes: false (and o failed) when there is no memory.
 * The first time past the stack part the text moves to the heap.
 */
static bool
reserve(struct json_out *o, size_t n)
{
	size_t cap = o->cap;
	char *bigger;

	if (n <= o->cap - o->len)
		return true;
	while (n > cap - o->len) {
		if (cap > SIZE_MAX / 2) {
			o->failed = true;
			return false;
		}
		cap *= 2;
	}
	if (o->data == o->stack) {
		bigger = malloc(cap);
		if (bigger != NULL)
			memcpy(bigger, o->stack, o->len);
	} else {
		bigger = realloc(o->data, cap);
	}
	if (bigger == NULL) {
		o->failed = true;
		return false;
	}
	o->data = bigger;
	o->cap = cap;
	return true;
}

void
json_out_raw_slow(struct json_out *o, const char *s, size_t n)
{
	if (o->failed || !reserve(o, n))
		return;
	memcpy(o->data + o->len, s, n);
	o->len += n;
}

/*
 * The bytes a string shows as they are: printable ASCII but for `"` and
 * `\`, and DEL.  The others are escaped (below 0x20) or start a UTF-8
 * sequence to check (0x80 and up).
 */
static inline bool
is_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * Length of the UTF-8 sequence at s (n > 0 bytes left, s[0] >= 0x80) as
 * jansson's utf8_check_first()/utf8_check_full() accept it, or 0 when it
 * is not one: a stray continuation byte, an overlong form (C0, C1, or a
 * value that fits a shorter form), a surrogate, past U+10FFFF (F5 and
 * up), or cut short.
 */
static size_t
utf8_length(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	uint32_t v;
	size_t k, i;

	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (c < 0xe0) {
		k = 2;
		v = c & 0x1f;
	} else if (c < 0xf0) {
		k = 3;
		v = c & 0x0f;
	} else {
		k = 4;
		v = c & 0x07;
	}
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ||
	    (k == 3 && v < 0x800) || (k == 4 && v < 0x10000))
		return 0;
	return k;
}

/* Appends the escape of c, a byte below 0x20 or `"` or `\`. */
static void
escape_byte(struct json_out *o, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char seq[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

	switch (c) {
	case '"':	json_out_literal(o, "\\\""); return;
	case '\\':	json_out_literal(o, "\\\\"); return;
	case '\b':	json_out_literal(o, "\\b"); return;
	case '\f':	json_out_literal(o, "\\f"); return;
	case '\n':	json_out_literal(o, "\\n"); return;
	case '\r':	json_out_literal(o, "\\r"); return;
	case '\t':	json_out_literal(o, "\\t"); return;
	}
	json_out_raw(o, seq, sizeof(seq));
}

/*
 * Runs of bytes that need nothing are copied whole; the loop stops only
 * at a byte to escape or to check as UTF-8.
 */
void
json_out_escaped(struct json_out *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	const unsigned char *run = p;
	size_t k;

	if (o->failed)
		return;
	while (p < end) {
		if (is_plain(*p)) {
			p++;
			continue;
		}
		if (*p >= 0x80) {
			if ((k = utf8_length(p, (size_t)(end - p))) == 0) {
				o->failed = true;	/* as json_string() */
				return;
			}
			p += k;
			continue;
		}
		json_out_raw(o, (const char *)run, (size_t)(p - run));
		escape_byte(o, *p);
		run = ++p;
	}
	json_out_raw(o, (const char *)run, (size_t)(p - run));
}

void
json_out_string(struct json_out *o, const char *s)
{
	if (s == NULL) {
		json_out_literal(o, "null");
		return;
	}
	json_out_literal(o, "\"");
	json_out_escaped(o, s, strlen(s));
	json_out_literal(o, "\"");
}

void
json_out_integer(struct json_out *o, int64_t v)
{
	char digits[24], *p = digits + sizeof(digits);
	/* In unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	json_out_raw(o, p, (size_t)(digits + sizeof(digits) - p));
}

/* json_dump_callback()'s writer: 0, or -1 to make jansson stop. */
static int
dump_piece(const char *piece, size_t size, void *arg)
{
	struct json_out *o = arg;

	json_out_raw(o, piece, size);
	return o->failed ? -1 : 0;
}

void
json_out_value(struct json_out *o, const json_t *v)
{
	if (o->failed)
		return;
	/*
	 * JSON_ENCODE_ANY only lets a scalar be dumped at the top; inside
	 * the document a value is written the same with flags 0.
	 */
	if (v == NULL ||
	    json_dump_callback(v, dump_piece, o, JSON_ENCODE_ANY) != 0)
		o->failed = true;
}

bool
json_out_ok(const struct json_out *o)
{
	return !o->failed;
}

char *
json_out_finish(struct json_out *o, size_t *len)
{
	char *text = NULL;

	if (!o->failed && reserve(o, 1)) {
		o->data[o->len] = '\0';
		if (o->data != o->stack) {
			text = o->data;		/* the caller's now */
			o->data = o->stack;
		} else if ((text = malloc(o->len + 1)) != NULL) {
			memcpy(text, o->stack, o->len + 1);
		}
		if (text != NULL)
			*len = o->len;
	}
	json_out_discard(o);
	return text;
}

void
json_out_discard(struct json_out *o)
{
	if (o->data != o->stack)
		free(o->data);
	o->data = o->stack;
	o->len = 0;
	o->cap = sizeof(o->stack);
	o->failed = true;	/* initialize again to reuse */
}
