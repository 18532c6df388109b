/*
 * config_params.c - `param.NAME = TYPE OPTIONS` keys of a [job] section:
 * a job's declared parameters (params.h; the syntax is in
 * taskpoold.conf(5), "PARAMETERS").
 *
 * The value is words separated by blanks: the type, for `enum` its
 * choices, then options.  `pattern=` is the last option and takes the
 * rest of the line, blanks included, since a regex may hold them; a
 * `default=` may be double-quoted to hold blanks.  A default is checked
 * by the very code that checks a request's value (params.c), once every
 * option is read, so that it is known to be valid for its declaration.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_private.h"
#include "params.h"

/* The option words of one declaration, as found in the value. */
struct decl_text {
	const char *dflt;
	size_t dflt_len;
	bool seen_max, seen_min, seen_default;
};

/* Refuses at the key's line with a reason about param.NAME: -1. */
static int __attribute__((format(printf, 4, 5)))
decl_error(struct parser *p, int line, const char *name, const char *fmt,
	   ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	parser_error(p, line, "param.%s: %s", name, reason);
	return -1;
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static size_t
word_len(const char *s)
{
	return strcspn(s, " \t");
}

/* A whole decimal long long: 0 or -1. */
static int
parse_ll(const char *s, size_t n, long long *v)
{
	char buf[32], *end;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9'))
		return -1;
	errno = 0;
	*v = strtoll(buf, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* `enum a|b|c`: the choices, each non-empty and once.  0 or -1. */
static int
parse_choices(struct parser *p, int line, struct param_decl *d,
	      const char *s, size_t n)
{
	size_t start = 0, end, i, len;

	if (n == 0)
		return decl_error(p, line, d->name, "an enum needs its "
				  "choices, as in enum a|b|c");
	while (start <= n) {
		for (end = start; end < n && s[end] != '|'; end++)
			;
		len = end - start;
		if (len == 0)
			return decl_error(p, line, d->name, "empty enum "
					  "choice");
		for (i = 0; i < d->nchoices; i++)
			if (strlen(d->choices[i]) == len &&
			    !memcmp(d->choices[i], s + start, len))
				return decl_error(p, line, d->name, "enum "
						  "choice '%s' is listed "
						  "twice", d->choices[i]);
		if (RESERVE(d->choices, d->nchoices) ||
		    (d->choices[d->nchoices] = strndup(s + start, len)) == NULL)
			return decl_error(p, line, d->name, "out of memory");
		d->nchoices++;
		start = end + 1;
	}
	return 0;
}

/* The type word (and an enum's choices): the rest of the value after. */
static const char *
parse_type(struct parser *p, int line, struct param_decl *d, const char *s)
{
	size_t n = word_len(s);

	d->max_len = PARAM_STRING_MAX_DEFAULT;
	d->min = LLONG_MIN;
	d->max = LLONG_MAX;
	if (n == 6 && !memcmp(s, "string", 6)) {
		d->type = PARAM_STRING;
	} else if (n == 3 && !memcmp(s, "int", 3)) {
		d->type = PARAM_INT;
	} else if (n == 4 && !memcmp(s, "bool", 4)) {
		d->type = PARAM_BOOL;
	} else if (n == 4 && !memcmp(s, "enum", 4)) {
		d->type = PARAM_ENUM;
		s = skip_blanks(s + n);
		n = word_len(s);
		if (parse_choices(p, line, d, s, n))
			return NULL;
	} else {
		decl_error(p, line, d->name, "unknown type '%.*s' (expected "
			   "string, int, enum or bool)", (int)n, s);
		return NULL;
	}
	return skip_blanks(s + n);
}

/* `pattern=REGEX`, to the end of the line: compiled as ^(REGEX)$. */
static int
parse_pattern(struct parser *p, int line, struct param_decl *d,
	      const char *regex)
{
	char why[128], *whole;
	size_t n = strlen(regex);
	int rc;

	if (d->type != PARAM_STRING)
		return decl_error(p, line, d->name, "pattern= is for strings "
				  "only");
	if (n == 0)
		return decl_error(p, line, d->name, "empty pattern");
	if ((d->pattern_text = strdup(regex)) == NULL ||
	    (whole = malloc(n + 5)) == NULL)
		return decl_error(p, line, d->name, "out of memory");
	snprintf(whole, n + 5, "^(%s)$", regex);
	rc = regcomp(&d->pattern, whole, REG_EXTENDED | REG_NOSUB);
	free(whole);
	if (rc != 0) {
		regerror(rc, &d->pattern, why, sizeof(why));
		/* A failed regcomp() leaves nothing to regfree(). */
		free(d->pattern_text);
		d->pattern_text = NULL;
		return decl_error(p, line, d->name, "bad pattern: %s", why);
	}
	return 0;
}

/* `max=N`: bytes of a string, or an int's upper bound.  0 or -1. */
static int
parse_max(struct parser *p, int line, struct param_decl *d, const char *v,
	  size_t n)
{
	long long x;

	if (d->type == PARAM_STRING && !parse_ll(v, n, &x) && x >= 1 &&
	    x <= PARAM_STRING_MAX_LIMIT) {
		d->max_len = (size_t)x;
		return 0;
	}
	if (d->type == PARAM_INT && !parse_ll(v, n, &d->max))
		return 0;
	if (d->type == PARAM_STRING)
		return decl_error(p, line, d->name, "bad max= (expected 1 to "
				  "%d bytes)", PARAM_STRING_MAX_LIMIT);
	if (d->type == PARAM_INT)
		return decl_error(p, line, d->name, "bad max= (expected a "
				  "64-bit decimal integer)");
	return decl_error(p, line, d->name, "max= is for strings and ints "
			  "only");
}

/* `default=V` or `default="V V"`: the rest after it, or NULL. */
static const char *
parse_default(struct parser *p, int line, struct param_decl *d,
	      const char *v, struct decl_text *t)
{
	const char *close;

	if (*v == '"') {
		if ((close = strchr(v + 1, '"')) == NULL) {
			decl_error(p, line, d->name, "default= has no closing "
				   "'\"'");
			return NULL;
		}
		t->dflt = v + 1;
		t->dflt_len = (size_t)(close - v - 1);
		return close + 1;
	}
	t->dflt = v;
	t->dflt_len = word_len(v);
	return v + t->dflt_len;
}

/* One option word at s: the rest of the value after it, or NULL. */
static const char *
parse_option(struct parser *p, int line, struct param_decl *d,
	     const char *s, struct decl_text *t)
{
	size_t n = word_len(s);
	bool *seen = NULL;

	if (n == 6 && !memcmp(s, "secret", 6)) {
		if (d->secret)
			seen = &d->secret;
		d->secret = true;
	} else if (!strncmp(s, "pattern=", 8)) {
		if (d->pattern_text != NULL)
			return decl_error(p, line, d->name, "pattern= is "
					  "given twice"), NULL;
		return parse_pattern(p, line, d, s + 8) ? NULL : s + strlen(s);
	} else if (!strncmp(s, "default=", 8)) {
		seen = t->seen_default ? &t->seen_default : NULL;
		t->seen_default = true;
		if (seen == NULL)
			return parse_default(p, line, d, s + 8, t);
	} else if (!strncmp(s, "max=", 4)) {
		seen = t->seen_max ? &t->seen_max : NULL;
		t->seen_max = true;
		if (seen == NULL && parse_max(p, line, d, s + 4, n - 4))
			return NULL;
	} else if (!strncmp(s, "min=", 4) && d->type == PARAM_INT) {
		seen = t->seen_min ? &t->seen_min : NULL;
		t->seen_min = true;
		if (seen == NULL && parse_ll(s + 4, n - 4, &d->min))
			return decl_error(p, line, d->name, "bad min= "
					  "(expected a 64-bit decimal "
					  "integer)"), NULL;
	} else {
		return decl_error(p, line, d->name, "unknown option '%.*s' "
				  "(expected max=, min=, pattern=, default= "
				  "or secret, as the type allows)", (int)n,
				  s), NULL;
	}
	if (seen != NULL)
		return decl_error(p, line, d->name, "option '%.*s' is given "
				  "twice", (int)strcspn(s, "="), s), NULL;
	return s + n;
}

/* Once all options are read: bounds that agree, a valid default. */
static int
finish_decl(struct parser *p, int line, struct param_decl *d,
	    const struct decl_text *t)
{
	struct param_input in = { 0 };
	char why[160];
	int rc;

	if (d->type == PARAM_INT && d->min > d->max)
		return decl_error(p, line, d->name, "min= %lld is above max= "
				  "%lld", d->min, d->max);
	if (!t->seen_default)
		return 0;
	in.name = d->name;
	in.name_len = strlen(d->name);
	in.text = t->dflt;
	in.text_len = t->dflt_len;
	rc = param_value_check(d, &in, &d->default_value, why, sizeof(why));
	if (rc < 0)
		return decl_error(p, line, d->name, "out of memory");
	if (rc > 0)
		return decl_error(p, line, d->name, "bad default: it %s", why);
	return 0;
}

int
config_params_key(struct parser *p, struct job_def *def,
		  const struct raw_kv *kv)
{
	const char *name = kv->key + strlen("param."), *s;
	struct decl_text t = { 0 };
	struct param_decl *d;

	if (!param_name_valid(name, strlen(name))) {
		parser_error(p, kv->line, "bad parameter name '%s' (use 1 to "
			     "%d of A-Z a-z 0-9 _)", name, PARAM_NAME_MAX);
		return -1;
	}
	if (def->nparams == PARAM_PER_JOB_MAX) {
		parser_error(p, kv->line, "job '%s' declares more than %d "
			     "parameters", def->name, PARAM_PER_JOB_MAX);
		return -1;
	}
	if (RESERVE(def->params, def->nparams)) {
		parser_error(p, kv->line, "out of memory");
		return -1;
	}
	/* Counted at once, so that the config frees what it holds. */
	d = &def->params[def->nparams++];
	memset(d, 0, sizeof(*d));
	if ((d->name = strdup(name)) == NULL)
		return decl_error(p, kv->line, name, "out of memory");
	s = parse_type(p, kv->line, d, skip_blanks(kv->value));
	while (s != NULL && *s != '\0')
		if ((s = parse_option(p, kv->line, d, s, &t)) != NULL)
			s = skip_blanks(s);
	if (s == NULL)
		return -1;
	return finish_decl(p, kv->line, d, &t);
}
