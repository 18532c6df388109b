/*
 * check_json_out.c - JSON text written straight into a buffer is, byte for
 * byte, what jansson's json_dumps() writes with flags 0: every byte alone
 * and in context, every pair of bytes, the edges of UTF-8 (overlong forms,
 * surrogates, past U+10FFFF, cut short), thousands of random strings valid
 * and not, integers, whole values; and what is refused, jansson refuses
 * too.  Long strings make the buffer leave its stack part and grow.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"

/* splitmix64: the same cases on every run. */
static uint64_t
next_random(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* json_dumps() of the n bytes at s as a string; NULL when refused. */
static char *
jansson_text(const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	char *text;

	if (v == NULL)
		return NULL;
	text = json_dumps(v, JSON_ENCODE_ANY);
	json_decref(v);
	ck_assert_ptr_nonnull(text);
	return text;
}

/* The same by json_out: quotes, the escaped bytes, quotes. */
static char *
our_text(const char *s, size_t n, size_t *len)
{
	struct json_out o;

	json_out_init(&o);
	json_out_literal(&o, "\"");
	json_out_escaped(&o, s, n);
	json_out_literal(&o, "\"");
	return json_out_finish(&o, len);
}

/* Hex of the bytes at s, for a failure's message. */
static const char *
hex(const char *s, size_t n)
{
	static char buf[3 * 64 + 4];
	size_t i, at = 0;

	for (i = 0; i < n && i < 64; i++)
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%02x ",
				       (unsigned char)s[i]);
	snprintf(buf + at, sizeof(buf) - at, "%s", i < n ? "..." : "");
	return buf;
}

/*
 * Both write the same text for the n bytes at s, or both refuse them.
 * Returns whether they were written (valid UTF-8).
 */
static bool
expect_same(const char *s, size_t n)
{
	char *want = jansson_text(s, n), *got;
	size_t len = SIZE_MAX;

	got = our_text(s, n, &len);
	if (want == NULL) {
		ck_assert_msg(got == NULL, "jansson refuses [%s], json_out "
			      "wrote %.200s", hex(s, n), got);
		ck_assert_uint_eq(len, SIZE_MAX);	/* untouched */
		return false;
	}
	ck_assert_msg(got != NULL, "json_out refuses [%s], jansson wrote "
		      "%.200s", hex(s, n), want);
	ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0 &&
		      got[len] == '\0', "[%s]: json_out %.200s, jansson %.200s",
		      hex(s, n), got, want);
	free(want);
	free(got);
	return true;
}

START_TEST(test_every_byte_alone)
{
	unsigned b;
	char s[1];

	for (b = 0; b < 256; b++) {
		s[0] = (char)b;
		/* ASCII is written (NUL as \u0000), no byte >= 0x80 is. */
		ck_assert_int_eq(expect_same(s, 1), b < 0x80);
	}
}
END_TEST

START_TEST(test_every_byte_in_context)
{
	static const char *around[] = { "", "a", "\"", "\\", "\n", "/",
					"\x7f", "\xc3\xa9", "\xe2\x82\xac",
					"\xf0\x9f\x98\x80", "\x01\x1f" };
	size_t i, j, n;
	unsigned b;
	char s[32];

	for (b = 0; b < 256; b++)
		for (i = 0; i < sizeof(around) / sizeof(around[0]); i++)
			for (j = 0; j < sizeof(around) / sizeof(around[0]);
			     j++) {
				n = (size_t)snprintf(s, sizeof(s), "%s", around[i]);
				s[n++] = (char)b;
				n += (size_t)snprintf(s + n, sizeof(s) - n,
						      "%s", around[j]);
				expect_same(s, n);
				s[n] = (char)b;	/* twice, at the end */
				expect_same(s, n + 1);
			}
}
END_TEST

START_TEST(test_every_pair_of_bytes)
{
	unsigned a, b, written = 0;
	char s[2];

	for (a = 0; a < 256; a++)
		for (b = 0; b < 256; b++) {
			s[0] = (char)a;
			s[1] = (char)b;
			written += expect_same(s, 2);
		}
	/* 128 * 128 ASCII pairs and the 30 * 64 two-byte sequences. */
	ck_assert_uint_eq(written, 128 * 128 + 30 * 64);
}
END_TEST

/*
 * Leads of three and four bytes with continuation bytes at the edges of
 * what each lead allows (E0 and F0 against overlong forms, ED against
 * surrogates, F4 against U+10FFFF), whole and cut short.
 */
START_TEST(test_utf8_edges)
{
	static const unsigned char cont[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f,
					      0x90, 0x9f, 0xa0, 0xbf, 0xc0,
					      0xff };
	size_t nc = sizeof(cont), i, j, k, n;
	unsigned lead;
	char s[4];

	for (lead = 0xc0; lead < 0x100; lead++)
		for (i = 0; i < nc; i++)
			for (j = 0; j < nc; j++)
				for (k = 0; k < nc; k++) {
					s[0] = (char)lead;
					s[1] = (char)cont[i];
					s[2] = (char)cont[j];
					s[3] = (char)cont[k];
					for (n = 1; n <= 4; n++)
						expect_same(s, n);
				}
}
END_TEST

/* A random code point, more often at the edges of the encoding. */
static uint32_t
random_code_point(uint64_t *state)
{
	static const uint32_t edges[] = { 0x0, 0x1f, 0x20, 0x22, 0x2f, 0x5c,
					  0x7f, 0x80, 0x7ff, 0x800, 0xd7ff,
					  0xe000, 0xfeff, 0xfffd, 0xffff,
					  0x10000, 0x10ffff };
	uint64_t r = next_random(state);

	switch (r % 4) {
	case 0:
		return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return (uint32_t)(r >> 8) % 0x80;
	default:
		for (;;) {
			uint32_t c = (uint32_t)(r >> 8) % 0x110000;

			if (c < 0xd800 || c > 0xdfff)
				return c;
			r = next_random(state);
		}
	}
}

/* Appends c encoded in UTF-8 at s; returns its length. */
static size_t
encode(char *s, uint32_t c)
{
	if (c < 0x80) {
		s[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		s[0] = (char)(0xc0 | c >> 6);
		s[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		s[0] = (char)(0xe0 | c >> 12);
		s[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		s[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	s[0] = (char)(0xf0 | c >> 18);
	s[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	s[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	s[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

START_TEST(test_random_valid_utf8)
{
	uint64_t state = 11;
	char s[40 * 4];
	size_t n, k, count;
	int i;

	for (i = 0; i < 20000; i++) {
		count = next_random(&state) % 40;
		for (n = 0, k = 0; k < count; k++)
			n += encode(s + n, random_code_point(&state));
		ck_assert(expect_same(s, n));
	}
}
END_TEST

/*
 * Valid strings broken one way (a byte replaced by a random one, a
 * sequence cut short, a byte dropped) and random bytes: each must be
 * written the same or refused by both.  Both outcomes must occur often.
 */
START_TEST(test_random_invalid_utf8)
{
	uint64_t state = 19, r;
	unsigned written = 0, refused = 0;
	char s[40 * 4];
	size_t n, k, count, at;
	int i;

	for (i = 0; i < 20000; i++) {
		count = 1 + next_random(&state) % 30;
		for (n = 0, k = 0; k < count; k++)
			n += encode(s + n, random_code_point(&state));
		r = next_random(&state);
		at = (size_t)(r >> 8) % n;
		switch (r % 4) {
		case 0:
			s[at] = (char)(r >> 40);
			break;
		case 1:
			n = at;
			break;
		case 2:
			memmove(s + at, s + at + 1, n - at - 1);
			n--;
			break;
		default:
			for (k = 0; k < n; k++)
				s[k] = (char)next_random(&state);
		}
		if (expect_same(s, n))
			written++;
		else
			refused++;
	}
	ck_assert_uint_gt(written, 2000);
	ck_assert_uint_gt(refused, 2000);
}
END_TEST

START_TEST(test_empty_and_null_strings)
{
	struct json_out o;
	size_t len;
	char *text;

	expect_same("", 0);
	json_out_init(&o);
	json_out_literal(&o, "[");
	json_out_string(&o, "");
	json_out_literal(&o, ", ");
	json_out_string(&o, NULL);
	json_out_literal(&o, "]");
	text = json_out_finish(&o, &len);
	ck_assert_str_eq(text, "[\"\", null]");
	ck_assert_uint_eq(len, 10);
	free(text);
}
END_TEST

/* json_out_string() stops at the NUL and refuses as json_string() does. */
START_TEST(test_string_of_c_string)
{
	static const char *cases[] = { "Task 1 done", "a\"b\\c/d\x7f",
				       "\xc3\xa9t\xc3\xa9", "\x01\x1f\t",
				       "bad \xc3", "bad \xed\xa0\x80" };
	struct json_out o;
	json_t *v;
	size_t i, len;
	char *want, *got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = json_string(cases[i]);
		want = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
		json_decref(v);
		json_out_init(&o);
		json_out_string(&o, cases[i]);
		got = json_out_finish(&o, &len);
		if (want == NULL)
			ck_assert_ptr_null(got);
		else
			ck_assert_str_eq(got, want);
		free(want);
		free(got);
	}
}
END_TEST

/* Long strings, escaped and not, move the text to the heap and grow it. */
START_TEST(test_long_strings_grow_the_buffer)
{
	static const size_t sizes[] = { JSON_OUT_STACK - 3, JSON_OUT_STACK - 2,
					JSON_OUT_STACK - 1, JSON_OUT_STACK,
					JSON_OUT_STACK + 1, 3 * JSON_OUT_STACK,
					100000, 1 << 20 };
	uint64_t state = 23;
	size_t i, k, n;
	char *s;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		s = malloc(n);
		ck_assert_ptr_nonnull(s);
		memset(s, 'x', n);
		expect_same(s, n);
		memset(s, '\x01', n);		/* six bytes each */
		expect_same(s, n);
		for (k = 0; k < n; k++)		/* ASCII, some escaped */
			s[k] = (char)(next_random(&state) % 0x80);
		expect_same(s, n);
		s[n - 1] = (char)0xc3;		/* cut short at the end */
		expect_same(s, n);
		free(s);
	}
}
END_TEST

START_TEST(test_integers)
{
	static const int64_t cases[] = { 0, 1, -1, 9, 10, -10, 200, 504,
					 INT64_MAX, INT64_MIN, INT64_MIN + 1,
					 INT64_C(1000000000000) };
	uint64_t state = 29;
	struct json_out o;
	json_t *v;
	size_t i, len;
	int64_t x;
	char *want, *got;

	for (i = 0; i < 1000 + sizeof(cases) / sizeof(cases[0]); i++) {
		x = i < sizeof(cases) / sizeof(cases[0]) ? cases[i] :
		    (int64_t)next_random(&state) >> (i % 64);
		v = json_integer(x);
		want = json_dumps(v, JSON_ENCODE_ANY);
		json_decref(v);
		json_out_init(&o);
		json_out_integer(&o, x);
		got = json_out_finish(&o, &len);
		ck_assert_str_eq(got, want);
		ck_assert_uint_eq(len, strlen(want));
		free(want);
		free(got);
	}
}
END_TEST

/* Whole values, inside a document, as jansson dumps the document. */
START_TEST(test_values_as_jansson_dumps_them)
{
	static const char *cases[] = {
		"{\"a\":1,\"b\":[1,2.5,\"x\",null,true,false],\"c\":{}}",
		"[]", "{}", "[[[]]]", "1e400", "-0.0", "0.1", "1E5", "3",
		"\"\\u0000\\u001f\\\"/\\u00e9\"", "null", "true",
		"{\"z\":1,\"a\":2,\"m\":{\"q\":[{}]}}",
	};
	struct json_out o;
	json_t *v, *wrap;
	size_t i, len;
	char *want, *got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = json_loads(cases[i], JSON_DECODE_ANY | JSON_ALLOW_NUL,
			       NULL);
		if (v == NULL)
			continue;	/* 1e400: jansson refuses it */
		wrap = json_pack("{s:O, s:[O]}", "v", v, "w", v);
		want = json_dumps(wrap, 0);
		json_out_init(&o);
		json_out_literal(&o, "{\"v\": ");
		json_out_value(&o, v);
		json_out_literal(&o, ", \"w\": [");
		json_out_value(&o, v);
		json_out_literal(&o, "]}");
		got = json_out_finish(&o, &len);
		ck_assert_str_eq(got, want);
		free(want);
		free(got);
		json_decref(wrap);
		json_decref(v);
	}
}
END_TEST

/* Once failed, a buffer stays failed, and finishing it gives nothing. */
START_TEST(test_a_failure_is_sticky)
{
	struct json_out o;
	size_t len = 7;

	json_out_init(&o);
	json_out_literal(&o, "{\"a\": ");
	ck_assert(json_out_ok(&o));
	json_out_string(&o, "\xff");
	ck_assert(!json_out_ok(&o));
	json_out_literal(&o, "}");
	json_out_string(&o, "fine");
	json_out_integer(&o, 1);
	ck_assert(!json_out_ok(&o));
	ck_assert_ptr_null(json_out_finish(&o, &len));
	ck_assert_uint_eq(len, 7);

	json_out_init(&o);
	json_out_value(&o, NULL);
	ck_assert_ptr_null(json_out_finish(&o, &len));

	json_out_init(&o);			/* discarded from the heap */
	json_out_escaped(&o, "\x01\x01\x01\x01", 4);
	while (json_out_ok(&o) && o.len < 3 * JSON_OUT_STACK)
		json_out_literal(&o, "0123456789");
	json_out_discard(&o);
}
END_TEST

static Suite *
json_out_suite(void)
{
	Suite *s = suite_create("json_out");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_every_byte_alone);
	tcase_add_test(tc, test_every_byte_in_context);
	tcase_add_test(tc, test_every_pair_of_bytes);
	tcase_add_test(tc, test_utf8_edges);
	tcase_add_test(tc, test_random_valid_utf8);
	tcase_add_test(tc, test_random_invalid_utf8);
	tcase_add_test(tc, test_empty_and_null_strings);
	tcase_add_test(tc, test_string_of_c_string);
	tcase_add_test(tc, test_long_strings_grow_the_buffer);
	tcase_add_test(tc, test_integers);
	tcase_add_test(tc, test_values_as_jansson_dumps_them);
	tcase_add_test(tc, test_a_failure_is_sticky);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(json_out_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
