/*
 * params.c - a request's parameter values, checked against the declared
 * ones: see params.h.
 *
 * Everything here is pure: it reads declarations (immutable once the config
 * is loaded) and the request's values, and builds new JSON values.  It
 * knows nothing of HTTP; api_params.c gathers the values from a request.
 *
 * A reason never quotes the value it refuses: the value may be a secret,
 * and it is the client's own anyway.  Reasons name the declaration's
 * constraint instead (its bounds, its choices, its pattern).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "params.h"

void
param_decl_clear(struct param_decl *d)
{
	size_t i;

	free(d->name);
	json_decref(d->default_value);
	if (d->pattern_text != NULL)
		regfree(&d->pattern);
	free(d->pattern_text);
	for (i = 0; i < d->nchoices; i++)
		free(d->choices[i]);
	free(d->choices);
}

bool
param_name_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PARAM_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* ---- text ------------------------------------------------------------------ */

/*
 * Whether n bytes at s are UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF).  *control tells whether they hold a control
 * character: C0 (NUL included), DEL or C1.
 */
static bool
utf8_scan(const unsigned char *s, size_t n, bool *control)
{
	size_t i = 0, len, k;
	unsigned long cp, min;

	*control = false;
	while (i < n) {
		unsigned char c = s[i];

		if (c < 0x80) {
			*control |= c < 0x20 || c == 0x7f;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (n - i < len)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		*control |= cp >= 0x80 && cp <= 0x9f;
		i += len;
	}
	return true;
}

/* A string value of n bytes at s (may hold NULs): 0, 1 (why) or -1. */
static int
check_string(const struct param_decl *d, const char *s, size_t n,
	     char *why, size_t whylen)
{
	bool control;
	char *copy;
	int rc;

	if (n > d->max_len) {
		snprintf(why, whylen, "is longer than %zu bytes", d->max_len);
		return 1;
	}
	if (!utf8_scan((const unsigned char *)s, n, &control)) {
		snprintf(why, whylen, "is not valid UTF-8");
		return 1;
	}
	if (memchr(s, '\0', n) != NULL) {
		snprintf(why, whylen, "may not hold a NUL character");
		return 1;
	}
	if (d->pattern_text == NULL) {
		if (n > 0 && s[0] == '-') {
			snprintf(why, whylen, "may not start with '-'");
			return 1;
		}
		if (control) {
			snprintf(why, whylen, "may not hold control "
				 "characters");
			return 1;
		}
		return 0;
	}
	if ((copy = strndup(s, n)) == NULL)
		return -1;
	rc = regexec(&d->pattern, copy, 0, NULL, 0);
	free(copy);
	if (rc == REG_ESPACE)
		return -1;
	if (rc != 0) {
		snprintf(why, whylen, "does not match the pattern %s",
			 d->pattern_text);
		return 1;
	}
	return 0;
}

/*
 * Decimal text (an optional '-', then digits) into *v.  Returns 0, or -1
 * with *overflow telling a number out of range from text that is none.
 */
static int
parse_decimal(const char *s, size_t n, long long *v, bool *overflow)
{
	char buf[32];
	size_t i, neg = n > 0 && s[0] == '-';

	*overflow = false;
	if (n == neg)
		return -1;
	for (i = neg; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	*overflow = true;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*v = strtoll(buf, NULL, 10);
	if (errno == ERANGE)
		return -1;
	*overflow = false;
	return 0;
}

static int
int_out_of_range(const struct param_decl *d, char *why, size_t whylen)
{
	snprintf(why, whylen, "must be an integer from %lld to %lld", d->min,
		 d->max);
	return 1;
}

static int
check_int(const struct param_decl *d, const struct param_input *in,
	  json_t **out, char *why, size_t whylen)
{
	long long v;
	bool overflow;

	if (in->json != NULL) {
		if (!json_is_integer(in->json))
			return int_out_of_range(d, why, whylen);
		v = json_integer_value(in->json);
	} else if (parse_decimal(in->text, in->text_len, &v, &overflow)) {
		if (overflow)
			return int_out_of_range(d, why, whylen);
		snprintf(why, whylen, "must be a decimal integer");
		return 1;
	}
	if (v < d->min || v > d->max)
		return int_out_of_range(d, why, whylen);
	return (*out = json_integer(v)) != NULL ? 0 : -1;
}

static int
check_enum(const struct param_decl *d, const char *s, size_t n,
	   json_t **out, char *why, size_t whylen)
{
	size_t i, used;

	for (i = 0; s != NULL && i < d->nchoices; i++)
		if (strlen(d->choices[i]) == n && !memcmp(d->choices[i], s, n))
			return (*out = json_string(d->choices[i])) ? 0 : -1;
	used = (size_t)snprintf(why, whylen, "must be one of");
	for (i = 0; i < d->nchoices && used < whylen; i++)
		used += (size_t)snprintf(why + used, whylen - used, "%s %s",
					 i ? "," : "", d->choices[i]);
	return 1;
}

static int
check_bool(const struct param_input *in, json_t **out, char *why,
	   size_t whylen)
{
	static const char *const yes[] = { "true", "1", "yes" };
	static const char *const no[] = { "false", "0", "no" };
	size_t i;

	if (in->json != NULL) {
		if (json_is_boolean(in->json))
			return (*out = json_boolean(json_is_true(in->json))) ?
			       0 : -1;
		snprintf(why, whylen, "must be true or false");
		return 1;
	}
	for (i = 0; i < 3; i++) {
		if (in->text_len == strlen(yes[i]) &&
		    !memcmp(in->text, yes[i], in->text_len))
			return (*out = json_true()) != NULL ? 0 : -1;
		if (in->text_len == strlen(no[i]) &&
		    !memcmp(in->text, no[i], in->text_len))
			return (*out = json_false()) != NULL ? 0 : -1;
	}
	snprintf(why, whylen, "must be true, false, 1, 0, yes or no");
	return 1;
}

int
param_value_check(const struct param_decl *d, const struct param_input *in,
		  json_t **out, char *why, size_t whylen)
{
	const char *s = in->text;
	size_t n = in->text_len;
	int rc;

	*out = NULL;
	if (in->json != NULL && (d->type == PARAM_STRING ||
				 d->type == PARAM_ENUM)) {
		s = json_string_value(in->json);
		n = json_string_length(in->json);
	}
	switch (d->type) {
	case PARAM_STRING:
		if (s == NULL) {
			snprintf(why, whylen, "must be a string");
			return 1;
		}
		if ((rc = check_string(d, s, n, why, whylen)) != 0)
			return rc;
		return (*out = json_stringn(s, n)) != NULL ? 0 : -1;
	case PARAM_INT:
		return check_int(d, in, out, why, whylen);
	case PARAM_ENUM:
		return check_enum(d, s, n, out, why, whylen);
	case PARAM_BOOL:
		return check_bool(in, out, why, whylen);
	}
	return 1;
}

/* ---- a request's values ---------------------------------------------------------- */

/* A name as the errors show it: printable ASCII, '?' else, cut. */
static json_t *
shown_name(const char *s, size_t n)
{
	char buf[PARAM_NAME_MAX + 4];
	size_t i, k = n > PARAM_NAME_MAX ? PARAM_NAME_MAX : n;

	for (i = 0; i < k; i++)
		buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (k < n)
		memcpy(buf + k, "...", 3), k += 3;
	return json_stringn(buf, k);
}

/*
 * Appends {"param", "reason"} to *errs, made at the first error (a
 * request without one allocates none): 0 or -1 (ENOMEM).
 */
static int
add_error(json_t **errs, const char *name, size_t n, const char *reason)
{
	json_t *e;

	if (*errs == NULL && (*errs = json_array()) == NULL)
		return -1;
	e = json_object();
	if (e == NULL || json_object_set_new(e, "param", shown_name(name, n)) ||
	    json_object_set_new(e, "reason", json_string(reason)) ||
	    json_array_append_new(*errs, e)) {
		json_decref(e);
		return -1;
	}
	return 0;
}

/* Whether errs already has an entry for the declared name. */
static bool
has_error(const json_t *errs, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(errs, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "param")),
			    name))
			return true;
	return false;
}

static const struct param_decl *
find_decl(const struct job_def *def, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < def->nparams; i++)
		if (strlen(def->params[i].name) == n &&
		    !memcmp(def->params[i].name, name, n))
			return &def->params[i];
	return NULL;
}

static const char *
source_name(enum param_source s)
{
	switch (s) {
	case PARAM_FROM_PATH:	return "path";
	case PARAM_FROM_QUERY:	return "query";
	case PARAM_FROM_BODY:	return "body";
	}
	return "?";
}

/*
 * The index of the first input before i with in[i]'s name, or i.  A value
 * given twice is refused at its second occurrence only.
 */
static size_t
first_of_name(const struct param_input *in, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (in[j].name_len == in[i].name_len &&
		    !memcmp(in[j].name, in[i].name, in[i].name_len))
			return j;
	return i;
}

/* One input: into each declaring job's object, or an error.  0 or -1. */
static int
take_input(const struct route *route, const struct param_input *in,
	   size_t i, json_t **vals, json_t **errs)
{
	const struct param_input *p = &in[i];
	size_t j = first_of_name(in, i), k;
	bool declared = false;
	char why[160];
	json_t *v;
	int rc;

	if (j != i) {
		if (first_of_name(in + j + 1, i - j - 1) != i - j - 1)
			return 0;	/* a third one: refused already */
		snprintf(why, sizeof(why), "is given more than once (%s and "
			 "%s)", source_name(in[j].source),
			 source_name(p->source));
		return add_error(errs, p->name, p->name_len, why);
	}
	for (k = 0; k < route->njobs; k++) {
		const struct param_decl *d = find_decl(route->jobs[k],
						       p->name, p->name_len);

		if (d == NULL)
			continue;
		declared = true;
		rc = param_value_check(d, p, &v, why, sizeof(why));
		if (rc < 0)
			return -1;
		if (rc > 0)
			return add_error(errs, p->name, p->name_len, why);
		if (json_object_set_new(vals[k], d->name, v))
			return -1;
	}
	if (!declared)
		return add_error(errs, p->name, p->name_len, "is not declared "
				 "by any job of this route");
	return 0;
}

/* The defaults of job k, or an error for each required one.  0 or -1. */
static int
fill_defaults(const struct job_def *def, json_t *vals, json_t **errs)
{
	size_t i;

	for (i = 0; i < def->nparams; i++) {
		const struct param_decl *d = &def->params[i];
		json_t *v;

		if (json_object_get(vals, d->name) != NULL ||
		    has_error(*errs, d->name))
			continue;
		if (d->default_value == NULL) {
			if (add_error(errs, d->name, strlen(d->name),
				      "is required"))
				return -1;
			continue;
		}
		/* A copy: a value may go to another thread with its job. */
		v = json_deep_copy(d->default_value);
		if (v == NULL || json_object_set_new(vals, d->name, v))
			return -1;
	}
	return 0;
}

int
params_resolve(const struct route *route, const struct param_input *in,
	       size_t nin, json_t **out, json_t **errors)
{
	json_t *vals[CONFIG_ROUTE_JOBS_MAX] = { NULL };
	json_t *errs = NULL;
	size_t i;
	int rc = -1;

	/* None for a job without parameters: nothing can go in it. */
	for (i = 0; i < route->njobs; i++)
		if (route->jobs[i]->nparams > 0 &&
		    (vals[i] = json_object()) == NULL)
			goto done;
	if (nin > PARAMS_INPUT_MAX) {
		/* Each is checked against the others: bound the work. */
		if (add_error(&errs, in[PARAMS_INPUT_MAX].name,
			      in[PARAMS_INPUT_MAX].name_len, "is past the "
			      "256 values a request may hold"))
			goto done;
	} else {
		for (i = 0; i < nin; i++)
			if (take_input(route, in, i, vals, &errs))
				goto done;
		for (i = 0; i < route->njobs; i++)
			if (fill_defaults(route->jobs[i], vals[i], &errs))
				goto done;
	}
	if (errs != NULL) {
		*errors = errs;
		errs = NULL;
		rc = 1;
		goto done;
	}
	for (i = 0; i < route->njobs; i++) {
		out[i] = vals[i];
		vals[i] = NULL;
	}
	rc = 0;
done:
	for (i = 0; i < route->njobs; i++)
		json_decref(vals[i]);
	json_decref(errs);
	return rc;
}

/* The segment of s that starts after the '/' at *pos: its length. */
static size_t
next_segment(const char *s, size_t *pos)
{
	size_t start = *pos + 1, end = start;

	while (s[end] != '\0' && s[end] != '/')
		end++;
	*pos = end;
	return end - start;
}

size_t
params_from_path(const struct route *route, const char *path,
		 struct param_input *in, size_t max)
{
	size_t tp = 0, pp = 0, tn, pn, n = 0;
	const char *t = route->path;

	while (t[tp] == '/' && path[pp] == '/' && n < max) {
		size_t ts = tp + 1, ps = pp + 1;

		tn = next_segment(t, &tp);
		pn = next_segment(path, &pp);
		if (tn < 2 || t[ts] != '{')
			continue;
		in[n].name = t + ts + 1;
		in[n].name_len = tn - 2;
		in[n].text = path + ps;
		in[n].text_len = pn;
		in[n].json = NULL;
		in[n].source = PARAM_FROM_PATH;
		n++;
	}
	return n;
}

bool
params_loggable(const struct route *route, const char *name, size_t n)
{
	const struct param_decl *d;
	bool declared = false;
	size_t k;

	for (k = 0; k < route->njobs; k++) {
		if ((d = find_decl(route->jobs[k], name, n)) == NULL)
			continue;
		if (d->secret)
			return false;
		declared = true;
	}
	return declared;
}

json_t *
params_redacted(const struct job_def *def, const json_t *params)
{
	json_t *copy = json_deep_copy(params);
	size_t i;

	for (i = 0; copy != NULL && i < def->nparams; i++) {
		if (!def->params[i].secret ||
		    json_object_get(copy, def->params[i].name) == NULL)
			continue;
		if (json_object_set_new(copy, def->params[i].name,
					json_string("***"))) {
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}
