/*
 * fuzz_tokens.c - the tokens file that `[auth] tokens` names, read by
 * auth_parse() (auth_load() reads the file, then parses it): untrusted
 * text, one "NAME TOKEN [routes=PATH,...] [jobs=JOB,...]" a line.
 *
 * An input is the whole file.
 *
 * Properties besides "no crash, no leak, no hang":
 * - an error names a line of the file (0: the file as a whole) and has a
 *   reason in printable ASCII that never holds the text of a field of its
 *   line that could be a token (an RFC 6750 b64token of AUTH_TOKEN_MIN
 *   characters or more);
 * - the error does not depend on the tokens' text at all: the same file
 *   with each line's first two fields rewritten by a bijection of letters
 *   and digits (a->b, Z->A, 9->0: the same classes, lengths, distinct
 *   counts, '=' padding and repeats) gets the same verdict, line and
 *   reason; a table it accepts has the same names, rewritten alike;
 * - a table holds one token for each line that is not blank or a
 *   comment, and each line's token satisfies the documented rules (a
 *   b64token of AUTH_TOKEN_MIN to AUTH_TOKEN_MAX characters with at least
 *   AUTH_TOKEN_DISTINCT_MIN distinct ones); auth_check() finds it, with
 *   its line's name and number; its routes= and jobs= entries are not
 *   empty and hold no ','.
 */
#include <stdio.h>

#include "auth.h"
#include "fuzz.h"

#define SEP " \t\r"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The bijection of letters and digits that rewrites a field. */
static char
rotate(char c)
{
	if (c >= 'a' && c <= 'z')
		return c == 'z' ? 'a' : (char)(c + 1);
	if (c >= 'A' && c <= 'Z')
		return c == 'Z' ? 'A' : (char)(c + 1);
	if (c >= '0' && c <= '9')
		return c == '9' ? '0' : (char)(c + 1);
	return c;
}

/* Field i (0, 1, ...) of the n bytes at s, as auth.c cuts a line. */
static const char *
field(const char *s, size_t n, unsigned i, size_t *len)
{
	size_t at = 0, k;

	for (;;) {
		while (at < n && strchr(SEP, s[at]) != NULL && s[at] != '\0')
			at++;
		for (k = at; k < n && (strchr(SEP, s[k]) == NULL ||
				       s[k] == '\0'); k++)
			;
		if (at == k)
			return NULL;
		if (i-- == 0) {
			*len = k - at;
			return s + at;
		}
		at = k;
	}
}

/* Line number `line` (1, 2, ...) of text: its start, and *n its length. */
static const char *
line_at(const char *text, size_t len, int line, size_t *n)
{
	const char *s = text, *end = text + len, *nl;

	for (;;) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (--line == 0) {
			*n = (size_t)((nl != NULL ? nl : end) - s);
			return s;
		}
		if (nl == NULL)
			return NULL;
		s = nl + 1;
	}
}

/* A copy of text with the first two fields of each line rotated. */
static char *
rewritten(const char *text, size_t len)
{
	char *copy = malloc(len + 1), *s = copy;
	const char *f;
	size_t n, flen, i;
	unsigned k;

	FUZZ_ASSERT(copy != NULL);
	memcpy(copy, text, len);
	while (s < copy + len) {
		char *nl = memchr(s, '\n', (size_t)(copy + len - s));

		n = (size_t)((nl != NULL ? nl : copy + len) - s);
		for (k = 0; k < 2; k++)
			if ((f = field(s, n, k, &flen)) != NULL)
				for (i = 0; i < flen; i++)
					s[f - s + i] = rotate(f[i]);
		s += n + 1;
	}
	return copy;
}

/* An error: its line, its reason, and nothing of a token in it. */
static void
check_error(const char *text, size_t len, const struct auth_error *err)
{
	const char *s, *f;
	size_t n, flen;
	unsigned k;
	char *p;

	FUZZ_ASSERT(err->line >= 0 && err->text[0] != '\0');
	for (p = (char *)err->text; *p != '\0'; p++)
		FUZZ_ASSERT(*p >= 0x20 && *p <= 0x7e);
	if (err->line == 0)
		return;
	s = line_at(text, len, err->line, &n);
	FUZZ_ASSERT(s != NULL);
	for (k = 0; (f = field(s, n, k, &flen)) != NULL; k++) {
		char *quoted;

		if (flen < AUTH_TOKEN_MIN || !auth_b64token(f, flen))
			continue;
		quoted = strndup(f, flen);
		FUZZ_ASSERT(quoted != NULL);
		FUZZ_ASSERT(strstr(err->text, quoted) == NULL);
		free(quoted);
	}
}

/* The entries of a routes= or jobs= list. */
static void
check_list(char *const *list, size_t n)
{
	size_t i;

	FUZZ_ASSERT(n == 0 || list != NULL);
	for (i = 0; i < n; i++)
		FUZZ_ASSERT(list[i][0] != '\0' && strchr(list[i], ',') == NULL);
}

/* Distinct bytes in s. */
static unsigned
distinct(const char *s, size_t len)
{
	bool seen[256] = { false };
	unsigned n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (!seen[(unsigned char)s[i]]) {
			seen[(unsigned char)s[i]] = true;
			n++;
		}
	return n;
}

/* A table: a token for each line that is not blank or a comment. */
static void
check_table(const struct auth_table *t, const char *text, size_t len)
{
	const struct auth_token *tok;
	const char *s = text, *end = text + len, *name, *secret;
	size_t n, nlen, slen, count = 0;
	int line = 0;

	for (; s < end; s += n + 1) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		n = (size_t)((nl != NULL ? nl : end) - s);
		line++;
		name = field(s, n, 0, &nlen);
		if (name == NULL || name[0] == '#')
			continue;
		secret = field(s, n, 1, &slen);
		FUZZ_ASSERT(secret != NULL);
		FUZZ_ASSERT(auth_b64token(secret, slen));
		FUZZ_ASSERT(slen >= AUTH_TOKEN_MIN && slen <= AUTH_TOKEN_MAX);
		FUZZ_ASSERT(distinct(secret, slen) >= AUTH_TOKEN_DISTINCT_MIN);
		tok = auth_check(t, secret, slen);
		FUZZ_ASSERT(tok != NULL && tok->line == line);
		FUZZ_ASSERT(strlen(tok->name) == nlen &&
			    !memcmp(tok->name, name, nlen));
		check_list(tok->routes, tok->nroutes);
		check_list(tok->jobs, tok->njobs);
		count++;
	}
	FUZZ_ASSERT(auth_count(t) == count && count > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct auth_error err, err2;
	struct auth_table *t, *t2;
	char *other = rewritten(text, size);
	size_t i;

	t = auth_parse(text, size, &err);
	t2 = auth_parse(other, size, &err2);
	FUZZ_ASSERT((t == NULL) == (t2 == NULL));
	if (t == NULL) {
		check_error(text, size, &err);
		FUZZ_ASSERT(err.line == err2.line);
		FUZZ_ASSERT(!strcmp(err.text, err2.text));
	} else {
		check_table(t, text, size);
		FUZZ_ASSERT(auth_count(t) == auth_count(t2));
		for (i = 0; i < auth_count(t); i++) {
			const char *a = auth_token_at(t, i)->name;
			const char *b = auth_token_at(t2, i)->name;

			FUZZ_ASSERT(strlen(a) == strlen(b));
			while (*a != '\0')
				FUZZ_ASSERT(rotate(*a++) == *b++);
		}
	}
	auth_table_free(t);
	auth_table_free(t2);
	free(other);
	return 0;
}
