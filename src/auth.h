/*
 * auth.h - bearer tokens (RFC 6750): the table read from the tokens file
 * that `[auth] tokens` names, and the check of a presented token.
 *
 * The file has one token a line:
 *
 *     NAME TOKEN [routes=PATH,...] [jobs=JOB,...]
 *
 * NAME names the client (logs, per-token idempotency keys); TOKEN is an
 * RFC 6750 b64token of AUTH_TOKEN_MIN to AUTH_TOKEN_MAX characters with
 * at least AUTH_TOKEN_DISTINCT_MIN distinct ones; `routes=` and `jobs=`
 * limit it (taskpoold.conf(5)).  Blank lines and lines whose first
 * non-blank is '#' are comments.  A table never changes once loaded: it
 * belongs to the config that named its file, and a reload reads it anew.
 *
 * No error text, and nothing this module logs, ever holds a token's text:
 * a line that is not understood is refused without quoting it, since one
 * of its fields may be a token.
 */
#ifndef TASKPOOLD_AUTH_H
#define TASKPOOLD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MIN 16		/* characters */
#define AUTH_TOKEN_MAX 256
#define AUTH_TOKEN_DISTINCT_MIN 5	/* distinct characters */
#define AUTH_TOKENS_MAX 1024		/* tokens in a file */
#define AUTH_FILE_MAX (1024 * 1024)	/* bytes of a file */
#define AUTH_LINE_MAX 4096		/* bytes of a line */
#define AUTH_NAME_MAX 64

/* Where a tokens file was refused, and why (never quoting a token). */
struct auth_error {
	int line;			/* 0: the file as a whole */
	char text[256];
};

/* One client.  A zero count means no limit. */
struct auth_token {
	char name[AUTH_NAME_MAX + 1];
	int line;			/* of the tokens file */
	size_t nroutes;
	char **routes;			/* route paths, as configured */
	size_t njobs;
	char **jobs;			/* job names */
};

struct auth_table;

/*
 * Reads the tokens file at path: refused (NULL, err->line 0) unless it is
 * a regular file with no permission bits for group or others, or larger
 * than AUTH_FILE_MAX; then auth_parse().  Returns a new table or NULL.
 */
struct auth_table *auth_load(const char *path, struct auth_error *err);

/*
 * Parses the text of a tokens file (len bytes, NUL bytes refused).
 * Returns a new table, or NULL with err filled in (line and reason).  An
 * empty table (only comments) is refused: it would lock every client out.
 */
struct auth_table *auth_parse(const char *text, size_t len,
			      struct auth_error *err);

/* Frees t, zeroing the tokens' text first.  NULL is ok. */
void auth_table_free(struct auth_table *t);

/* How many tokens t has, and token i (borrowed from t). */
size_t auth_count(const struct auth_table *t);
const struct auth_token *auth_token_at(const struct auth_table *t, size_t i);

/*
 * The token whose text is the len bytes at s (borrowed from t), or NULL.
 * Constant time for a given table: s is compared with every token, each
 * over AUTH_TOKEN_MAX bytes, with no branch on their contents, so neither
 * the time nor the memory touched says how much of s matched, or which
 * token did.  Only len > AUTH_TOKEN_MAX returns early, which tells
 * nothing about the tokens.
 */
const struct auth_token *auth_check(const struct auth_table *t,
				    const char *s, size_t len);

/*
 * Whether s (len bytes) is an RFC 6750 b64token:
 * 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
 */
bool auth_b64token(const char *s, size_t len);

/*
 * Whether tok may use the route (its configured path, or a built-in
 * resource's label such as "/jobs/{id}"), and run the job of this name.
 */
bool auth_allows_route(const struct auth_token *tok, const char *path);
bool auth_allows_job(const struct auth_token *tok, const char *job);

#endif
