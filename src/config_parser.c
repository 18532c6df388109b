/*
 * config_parser.c - the state of one load, shared by the reader and the
 * sections: see config_private.h.  Every error of a load goes through
 * parser_error(), which keeps the first one with its file and line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_private.h"

void
parser_error(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	snprintf(p->err->file, sizeof(p->err->file), "%s", p->path);
	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
	va_end(ap);
	config_text_sanitize(p->err->text);
}

/*
 * Makes room for element n of a growable array whose length is n, doubling
 * at powers of two (so appends are amortized O(1) with no capacity field).
 * arrayp points to the array pointer.  Returns 0, or -1 with the array
 * untouched when out of memory.
 */
int
parser_reserve(void *arrayp, size_t n, size_t size)
{
	void **array = arrayp;
	void *bigger;

	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	bigger = realloc(*array, (n ? n * 2 : 1) * size);
	if (bigger == NULL)
		return -1;
	*array = bigger;
	return 0;
}

int
parser_bad_value(struct parser *p, const char *key, const char *value,
		 const char *expected)
{
	parser_error(p, p->line, "bad value '%s' for %s (expected %s)", value,
		     key, expected);
	return -1;
}

int
parser_unknown_key(struct parser *p, const char *section, const char *key)
{
	parser_error(p, p->line, "unknown key '%s' in [%s]", key, section);
	return -1;
}

int
parser_set_string(struct parser *p, char **dst, const char *value)
{
	char *s = strdup(value);

	if (s == NULL) {
		parser_error(p, p->line, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = s;
	return 0;
}
