/*
 * auth.c - see auth.h.
 *
 * The tokens' text is kept apart from what the rest of the daemon sees
 * (struct auth_token has none), each zero-padded to AUTH_TOKEN_MAX bytes
 * so that auth_check() compares every token over the same length.  Every
 * buffer that held a token's text is wiped before it is freed or goes out
 * of scope, so that a later heap or stack dump holds none of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

struct auth_secret {
	unsigned char text[AUTH_TOKEN_MAX];	/* zero-padded */
	size_t len;
};

struct auth_table {
	size_t n;
	struct auth_token *tokens;
	struct auth_secret *secrets;	/* parallel to tokens */
};

/* memset() that the compiler may not drop as a dead store. */
static void
wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

static int
refuse(struct auth_error *err, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records why, at line; returns -1.  Bytes that are not printable ASCII
 * become '?', as the text ends up in a log line. */
static int
refuse(struct auth_error *err, int line, const char *fmt, ...)
{
	va_list ap;
	char *p;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	for (p = err->text; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return -1;
}

bool
auth_b64token(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && ((s[i] >= 'A' && s[i] <= 'Z') ||
			   (s[i] >= 'a' && s[i] <= 'z') ||
			   (s[i] >= '0' && s[i] <= '9') ||
			   strchr("-._~+/", s[i]) != NULL) && s[i] != '\0')
		i++;
	if (i == 0)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

static bool
name_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > AUTH_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i])))
			return false;
	return true;
}

/* How many distinct bytes s has. */
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

static void
free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void
auth_table_free(struct auth_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free_list(t->tokens[i].routes, t->tokens[i].nroutes);
		free_list(t->tokens[i].jobs, t->tokens[i].njobs);
	}
	free(t->tokens);
	if (t->secrets != NULL)
		wipe(t->secrets, t->n * sizeof(*t->secrets));
	free(t->secrets);
	free(t);
}

/*
 * "a,b,c" (the text after `routes=` or `jobs=`) into a new list in *out.
 * Returns 0, or -1 with err at line.  Entries are not secret: a token has
 * no ',' and no '=' before its end, so it cannot be read as an option.
 */
static int
parse_list(const char *value, const char *what, int line, char ***out,
	   size_t *n, struct auth_error *err)
{
	const char *p = value;
	size_t len;

	if (*out != NULL)
		return refuse(err, line, "%s= is given twice", what);
	for (;;) {
		char **bigger;

		len = strcspn(p, ",");
		if (len == 0)
			return refuse(err, line, "%s= has an empty entry", what);
		bigger = realloc(*out, (*n + 1) * sizeof(**out));
		if (bigger == NULL)
			return refuse(err, line, "out of memory");
		*out = bigger;
		if ((bigger[*n] = strndup(p, len)) == NULL)
			return refuse(err, line, "out of memory");
		(*n)++;
		if (p[len] == '\0')
			return 0;
		p += len + 1;
	}
}

/* Checks the token field of tok's line (len bytes at s): 0 or -1. */
static int
check_secret(const struct auth_token *tok, const char *s, size_t len,
	     struct auth_error *err)
{
	if (!auth_b64token(s, len))
		return refuse(err, tok->line, "the token is not an RFC 6750 "
			      "bearer token (A-Z a-z 0-9 - . _ ~ + / then '=' "
			      "padding)");
	if (len < AUTH_TOKEN_MIN || len > AUTH_TOKEN_MAX)
		return refuse(err, tok->line, "the token has %zu characters "
			      "(%d to %d wanted)", len, AUTH_TOKEN_MIN,
			      AUTH_TOKEN_MAX);
	if (distinct(s, len) < AUTH_TOKEN_DISTINCT_MIN)
		return refuse(err, tok->line, "the token has fewer than %d "
			      "distinct characters: make one at random (e.g. "
			      "openssl rand -hex 32)", AUTH_TOKEN_DISTINCT_MIN);
	return 0;
}

/* Whether t already has tok's name or sec's text: 0, or -1 with err. */
static int
check_unique(const struct auth_table *t, const struct auth_token *tok,
	     const struct auth_secret *sec, struct auth_error *err)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (!strcmp(t->tokens[i].name, tok->name))
			return refuse(err, tok->line, "the name is already "
				      "used on line %d", t->tokens[i].line);
		if (t->secrets[i].len == sec->len &&
		    !memcmp(t->secrets[i].text, sec->text, sec->len))
			return refuse(err, tok->line, "the token is also that "
				      "of line %d", t->tokens[i].line);
	}
	return 0;
}

/* The options after the token (fields from *save on): 0 or -1. */
static int
parse_options(struct auth_token *tok, char **save, struct auth_error *err)
{
	char *f;

	while ((f = strtok_r(NULL, " \t\r", save)) != NULL) {
		if (!strncmp(f, "routes=", 7)) {
			if (parse_list(f + 7, "routes", tok->line,
				       &tok->routes, &tok->nroutes, err))
				return -1;
		} else if (!strncmp(f, "jobs=", 5)) {
			if (parse_list(f + 5, "jobs", tok->line, &tok->jobs,
				       &tok->njobs, err))
				return -1;
		} else {
			/* Not quoted: it may be the rest of a token. */
			return refuse(err, tok->line, "a field after the "
				      "token is neither routes= nor jobs= "
				      "(expected NAME TOKEN [routes=PATH,...] "
				      "[jobs=JOB,...])");
		}
	}
	return 0;
}

/*
 * One line (NUL-terminated, its '\n' gone, at most AUTH_LINE_MAX bytes),
 * appended to t unless it is blank or a comment.  Returns 0 or -1.
 */
static int
parse_line(struct auth_table *t, char *buf, int line, struct auth_error *err)
{
	struct auth_token tok;
	struct auth_secret sec;
	char *save = NULL, *name, *secret;
	int rc = -1;

	name = strtok_r(buf, " \t\r", &save);
	if (name == NULL || name[0] == '#')
		return 0;
	memset(&tok, 0, sizeof(tok));
	memset(&sec, 0, sizeof(sec));
	tok.line = line;
	secret = strtok_r(NULL, " \t\r", &save);
	if (!name_valid(name) || secret == NULL) {
		/* Neither field is quoted: either may be a token. */
		rc = refuse(err, line, secret == NULL ? "expected NAME TOKEN "
			    "[routes=PATH,...] [jobs=JOB,...]" : "bad name "
			    "(1 to %d of A-Z a-z 0-9 _ . -; the name comes "
			    "before the token)", AUTH_NAME_MAX);
		goto out;
	}
	strcpy(tok.name, name);
	sec.len = strlen(secret);
	if (check_secret(&tok, secret, sec.len, err) != 0)
		goto out;
	memcpy(sec.text, secret, sec.len);
	if (check_unique(t, &tok, &sec, err) != 0 ||
	    parse_options(&tok, &save, err) != 0)
		goto out;
	if (t->n == AUTH_TOKENS_MAX) {
		rc = refuse(err, line, "more than %d tokens", AUTH_TOKENS_MAX);
		goto out;
	}
	if ((t->n & (t->n - 1)) == 0) {	/* 0, 1, 2, 4...: double */
		size_t cap = t->n ? t->n * 2 : 1;
		struct auth_token *tokens;
		struct auth_secret *secrets = calloc(cap, sizeof(*secrets));

		tokens = realloc(t->tokens, cap * sizeof(*tokens));
		if (tokens != NULL)
			t->tokens = tokens;
		if (tokens == NULL || secrets == NULL) {
			free(secrets);
			rc = refuse(err, line, "out of memory");
			goto out;
		}
		if (t->n > 0) {
			memcpy(secrets, t->secrets, t->n * sizeof(*secrets));
			wipe(t->secrets, t->n * sizeof(*secrets));
		}
		free(t->secrets);
		t->secrets = secrets;
	}
	t->tokens[t->n] = tok;
	t->secrets[t->n++] = sec;
	tok.routes = tok.jobs = NULL;	/* the table's now */
	tok.nroutes = tok.njobs = 0;
	rc = 0;
out:
	free_list(tok.routes, tok.nroutes);
	free_list(tok.jobs, tok.njobs);
	wipe(&sec, sizeof(sec));
	return rc;
}

struct auth_table *
auth_parse(const char *text, size_t len, struct auth_error *err)
{
	struct auth_table *t = calloc(1, sizeof(*t));
	char buf[AUTH_LINE_MAX + 1];
	size_t start = 0, n;
	int line = 0;

	memset(err, 0, sizeof(*err));
	if (t == NULL) {
		refuse(err, 0, "out of memory");
		return NULL;
	}
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);

		n = nl != NULL ? (size_t)(nl - (text + start)) : len - start;
		line++;
		if (n > AUTH_LINE_MAX || memchr(text + start, '\0', n)) {
			refuse(err, line, n > AUTH_LINE_MAX ? "line too long "
			       "(at most %d bytes)" : "line has a NUL byte",
			       AUTH_LINE_MAX);
			goto fail;
		}
		memcpy(buf, text + start, n);
		buf[n] = '\0';
		if (parse_line(t, buf, line, err) != 0)
			goto fail;
		wipe(buf, n);
		start += n + 1;
	}
	if (t->n == 0) {
		refuse(err, 0, "no token (each line: NAME TOKEN "
		       "[routes=PATH,...] [jobs=JOB,...])");
		goto fail;
	}
	return t;
fail:
	wipe(buf, sizeof(buf));
	auth_table_free(t);
	return NULL;
}

/* The whole file at fd into a new buffer (*len bytes): or NULL, err. */
static char *
read_all(int fd, size_t *len, struct auth_error *err)
{
	char *buf = malloc(AUTH_FILE_MAX + 1);
	size_t n = 0;
	ssize_t r;

	if (buf == NULL) {
		refuse(err, 0, "out of memory");
		return NULL;
	}
	while (n <= AUTH_FILE_MAX &&
	       (r = read(fd, buf + n, AUTH_FILE_MAX + 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			refuse(err, 0, "%s", strerror(errno));
			goto fail;
		}
		n += (size_t)r;
	}
	if (n > AUTH_FILE_MAX) {
		refuse(err, 0, "larger than %d bytes", AUTH_FILE_MAX);
		goto fail;
	}
	*len = n;
	return buf;
fail:
	wipe(buf, n);
	free(buf);
	return NULL;
}

struct auth_table *
auth_load(const char *path, struct auth_error *err)
{
	struct auth_table *t = NULL;
	struct stat st;
	size_t len = 0;
	char *text;
	int fd;

	memset(err, 0, sizeof(*err));
	/* O_NONBLOCK: a FIFO must not stall the load (it is refused). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		refuse(err, 0, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0)
		refuse(err, 0, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		refuse(err, 0, "not a regular file");
	else if ((st.st_mode & 077) != 0)
		refuse(err, 0, "group or others have access (mode %04o): the "
		       "tokens file must be mode 0600 or 0400",
		       (unsigned)(st.st_mode & 07777));
	else if ((text = read_all(fd, &len, err)) != NULL) {
		t = auth_parse(text, len, err);
		wipe(text, len);
		free(text);
	}
	close(fd);
	return t;
}

size_t
auth_count(const struct auth_table *t)
{
	return t->n;
}

const struct auth_token *
auth_token_at(const struct auth_table *t, size_t i)
{
	return i < t->n ? &t->tokens[i] : NULL;
}

const struct auth_token *
auth_check(const struct auth_table *t, const char *s, size_t len)
{
	unsigned char given[AUTH_TOKEN_MAX] = { 0 };
	size_t i, j, found = 0;

	if (len == 0 || len > AUTH_TOKEN_MAX)
		return NULL;
	memcpy(given, s, len);
	for (i = 0; i < t->n; i++) {
		const struct auth_secret *sec = &t->secrets[i];
		unsigned diff = 0;
		size_t eq;

		for (j = 0; j < AUTH_TOKEN_MAX; j++)
			diff |= given[j] ^ sec->text[j];
		diff |= (unsigned)(sec->len ^ len);
		/* eq: all ones when diff is 0, else 0 (no branch). */
		eq = (size_t)0 - (size_t)(((diff | (0u - diff)) >> 31) ^ 1u);
		found |= eq & (i + 1);
	}
	wipe(given, sizeof(given));
	return found != 0 ? &t->tokens[found - 1] : NULL;
}

static bool
listed(char *const *list, size_t n, const char *s)
{
	size_t i;

	if (n == 0)
		return true;
	for (i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

bool
auth_allows_route(const struct auth_token *tok, const char *path)
{
	return listed(tok->routes, tok->nroutes, path);
}

bool
auth_allows_job(const struct auth_token *tok, const char *job)
{
	return listed(tok->jobs, tok->njobs, job);
}
