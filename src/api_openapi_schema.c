/*
 * api_openapi_schema.c - a declared parameter (params.h) as the JSON
 * Schema of what the daemon takes for it: see api_openapi.h.
 *
 * The schema says as much as JSON Schema can of what params.c checks, and
 * never more than it checks: a string's `maxLength` counts characters
 * where the daemon counts bytes (so it is a bound, and the description
 * gives the limit in bytes), and a pattern goes into `pattern` only where
 * ECMA-262 reads it as the daemon does.
 */
#include <limits.h>
#include <string.h>

#include "api_json.h"
#include "api_openapi.h"
#include "params.h"

/*
 * What the daemon takes for a string without a pattern (params.c), as an
 * ECMA-262 regular expression: no control character (C0, DEL, C1), and
 * not '-' first.  Not NUL either: U+0000 is a C0 control.
 */
#define PLAIN_STRING_PATTERN "^(?!-)[^\\u0000-\\u001F\\u007F-\\u009F]*$"

/*
 * Whether the POSIX extended regular expression ere means the same as
 * ECMA-262 (JSON Schema's `pattern`, with the u flag) for every string of
 * valid UTF-8: ASCII only, of literals, bracket expressions of ASCII
 * characters and ranges, groups, alternatives, and the quantifiers *, +, ?,
 * {m}, {m,} and {m,n} each after something to repeat.  Outside that subset
 * the two differ (the daemon matches bytes, in the C locale: `.` and
 * `[^...]` take one byte of a multibyte character, a quantifier after a
 * non-ASCII character repeats its last byte; `[[:alpha:]]` and backslashes
 * mean other things; ECMA refuses a quantifier with nothing to repeat, or a
 * lone `]` or `}`), and then only the description carries the pattern.
 * regcomp() has accepted ere, so brackets and parentheses are balanced.
 */
static bool
pattern_portable(const char *ere)
{
	const unsigned char *s = (const unsigned char *)ere;
	bool repeatable = false;	/* a quantifier may come next */

	while (*s != '\0') {
		unsigned char c = *s++;

		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '.' ||
		    c == ']' || c == '}')
			return false;
		if (c == '[') {
			if (*s == '^' || *s == ']')
				return false;
			for (; *s != ']'; s++)
				if (*s < 0x20 || *s >= 0x7f || *s == '\\' ||
				    *s == '[')
					return false;
			s++;
			repeatable = true;
		} else if (c == '*' || c == '+' || c == '?' || c == '{') {
			if (!repeatable)
				return false;
			if (c == '{') {
				if (*s < '0' || *s > '9')
					return false;
				s += strspn((const char *)s, "0123456789,");
				if (*s++ != '}')
					return false;
			}
			repeatable = false;	/* no quantifier on another */
		} else {
			/* ( | ^ $ start something; a literal or ) ends one. */
			repeatable = strchr("(|^$", c) == NULL;
		}
	}
	return true;
}

/* The keywords of a string declaration into s (stolen); s, or NULL. */
static json_t *
string_schema(json_t *s, const struct param_decl *d)
{
	s = api_object_set(s, "type", json_string("string"));
	/* Characters, where the daemon counts bytes: a bound, not the limit. */
	s = api_object_set(s, "maxLength", json_integer((json_int_t)d->max_len));
	if (d->secret)
		s = api_object_set(s, "format", json_string("password"));
	if (d->pattern_text == NULL) {
		s = api_object_set(s, "pattern",
				   json_string(PLAIN_STRING_PATTERN));
		return api_object_set(s, "description", json_sprintf(
			"At most %zu bytes of UTF-8, without control "
			"characters, not starting with '-'.", d->max_len));
	}
	if (pattern_portable(d->pattern_text))
		s = api_object_set(s, "pattern", json_sprintf("^(%s)$",
							      d->pattern_text));
	return api_object_set(s, "description", json_sprintf(
		"At most %zu bytes of UTF-8, without NUL, matching the POSIX "
		"extended regular expression `%s` as a whole: the daemon "
		"anchors it as `^(%s)$` and matches bytes.", d->max_len,
		d->pattern_text, d->pattern_text));
}

json_t *
api_openapi_decl_schema(const struct param_decl *d)
{
	json_t *s = json_object();
	size_t i;

	switch (d->type) {
	case PARAM_STRING:
		s = string_schema(s, d);
		break;
	case PARAM_INT:
		s = api_object_set(s, "type", json_string("integer"));
		s = api_object_set(s, "format", json_string("int64"));
		if (d->min != LLONG_MIN)
			s = api_object_set(s, "minimum", json_integer(d->min));
		if (d->max != LLONG_MAX)
			s = api_object_set(s, "maximum", json_integer(d->max));
		break;
	case PARAM_ENUM: {
		json_t *choices = json_array();

		for (i = 0; i < d->nchoices; i++)
			choices = api_array_append(choices,
						   json_string(d->choices[i]));
		s = api_object_set(s, "type", json_string("string"));
		s = api_object_set(s, "enum", choices);
		break;
	}
	case PARAM_BOOL:
		s = api_object_set(s, "type", json_string("boolean"));
		break;
	}
	if (d->secret)
		s = api_object_set(s, "writeOnly", json_true());
	else if (d->default_value != NULL)	/* a secret's is a secret */
		s = api_object_set(s, "default",
				   json_deep_copy(d->default_value));
	return s;
}
