/*
 * json_out.h - JSON text written straight into one buffer, for answers of
 * fixed shapes: the parts that never change are appended as they are,
 * the strings that vary are escaped on the way in.  No tree is built, and
 * nothing is serialized twice.
 *
 * The output is byte for byte what jansson 2.14's json_dumps() writes
 * with flags 0 for the same document (", " and ": " separators): strings
 * escape `"` and `\` and \b \f \n \r \t in their short forms, other bytes
 * below 0x20 as \u00XX (upper-case hex), and pass '/', DEL and UTF-8
 * through.  A string that is not valid UTF-8 (by json_string()'s rules:
 * no overlong forms, no surrogates, nothing past U+10FFFF) is refused,
 * as json_string() refuses it.
 *
 * Errors are sticky: once an append fails (out of memory, a string that
 * is not UTF-8, a value jansson cannot dump) every later append does
 * nothing and json_out_finish() returns NULL, so that a caller can write
 * a whole document and check once, at the end: a failed document is never
 * answered shorter, only not at all.
 *
 * Usage:
 *	struct json_out o;
 *
 *	json_out_init(&o);
 *	json_out_raw(&o, "{\"id\": ", 7);
 *	json_out_string(&o, id);
 *	json_out_raw(&o, "}", 1);
 *	text = json_out_finish(&o, &len);	(new, or NULL)
 */
#ifndef TASKPOOLD_JSON_OUT_H
#define TASKPOOLD_JSON_OUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Most answers fit the stack part, which spares the allocations of a
 * growing buffer (bench/callgrind): then one malloc of the exact size,
 * by json_out_finish().  Past it the buffer is on the heap and doubles.
 */
#define JSON_OUT_STACK 4096

struct json_out {
	char *data;		/* stack, or owned heap memory */
	size_t len, cap;
	bool failed;		/* sticky; see the top of this file */
	char stack[JSON_OUT_STACK];
};

/* An empty buffer.  Can't fail. */
void json_out_init(struct json_out *o);

/*
 * Appends n bytes of s (borrowed), as they are: JSON text of our own.
 * Inline, so that the literals of a fixed shape compile to a few stores;
 * json_out_raw_slow() grows the buffer (or finds it failed).
 */
void json_out_raw_slow(struct json_out *o, const char *s, size_t n);

static inline void
json_out_raw(struct json_out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len || o->failed) {
		json_out_raw_slow(o, s, n);
		return;
	}
	memcpy(o->data + o->len, s, n);
	o->len += n;
}

/* json_out_raw() of a string literal. */
#define json_out_literal(o, s) json_out_raw((o), (s), sizeof(s) - 1)

/*
 * Appends s (borrowed, NUL-terminated) as a quoted JSON string; NULL
 * appends null, as api_json_string_or_null() shows it.  Not valid UTF-8:
 * the buffer fails.
 */
void json_out_string(struct json_out *o, const char *s);

/*
 * Appends n bytes at s escaped, without quotes (a NUL byte as \u0000):
 * to write a string in pieces, between json_out_literal()s of `"`.  Not
 * valid UTF-8: the buffer fails.
 */
void json_out_escaped(struct json_out *o, const char *s, size_t n);

/* Appends v in decimal, as jansson writes a json_integer(). */
void json_out_integer(struct json_out *o, int64_t v);

/*
 * Appends v (borrowed; any type, any depth) as json_dumps() with flags 0
 * would write it inside a document.  NULL fails the buffer.
 */
void json_out_value(struct json_out *o, const json_t *v);

/* Whether every append so far succeeded. */
bool json_out_ok(const struct json_out *o);

/*
 * Ends o: returns its text, new (malloc'd, NUL-terminated; the caller
 * frees it), and its length in *len; or NULL when any append failed or
 * there is no memory for it (*len is then untouched).  Either way o's
 * memory is released; o must be initialized again before it is reused.
 */
char *json_out_finish(struct json_out *o, size_t *len);

/* Releases o without a result (a document abandoned). */
void json_out_discard(struct json_out *o);

#endif
