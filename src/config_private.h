/*
 * config_private.h - what the parts of the config share; not for the rest
 * of the daemon, which sees only config.h.
 *
 * The config is in parts, each a file, from the bottom up:
 *   config_value.c     value parsers (durations, sizes, booleans, numbers,
 *                      listen addresses) and the checks of names and text
 *   config.c           the loaded config as a shared value: its reference
 *                      count, its teardown, lookups
 *   config_parser.c    the state of one load: its first error (file:line),
 *                      the growing arrays, the reasons a key is refused
 *   config_sections.c  [server], [pool], [registry] and [log]
 *   config_params.c    `param.NAME = ...` keys of a [job]: its declared
 *                      parameters
 *   config_jobs.c      [job NAME] and [route PATH], given meaning once the
 *                      whole file is read (a job's kind, a route's jobs)
 *   config_auth.c      [auth]: the tokens file, read once the routes and
 *                      jobs that its tokens name are known
 *   config_store.c     [store]: where the durable records are kept
 *   config_reader.c    config_load(): the line reader fed to inih, and
 *                      inih's handler, which hand each header and key to
 *                      the section it belongs to
 * The loaded value sits below the kinds, which free their settings with
 * it; only the loader above them knows the table of kinds.  A job instance
 * holds a config reference, so a config.c that also loaded would close a
 * loop config -> kinds -> job -> config.
 */
#ifndef TASKPOOLD_CONFIG_PRIVATE_H
#define TASKPOOLD_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)

struct raw_kv {
	char *key;
	char *value;
	int line;
};

/* A [job] section as read, before its kind gives it meaning. */
struct raw_job {
	struct raw_kv *kvs;
	size_t nkvs;
};

enum section_type {
	SECTION_NONE,
	SECTION_SERVER,
	SECTION_POOL,
	SECTION_REGISTRY,
	SECTION_LOG,
	SECTION_JOB,
	SECTION_ROUTE,
	SECTION_AUTH,
	SECTION_STORE,
};

/* One load of one file; lives on config_load()'s stack. */
struct parser {
	const char *path;
	FILE *fp;
	int line;
	struct config_error *err;
	bool failed;

	struct config *cfg;
	/* The current section, set by the reader at each header. */
	enum section_type section;
	bool seen_fixed[SECTION_LOG + 1];	/* [server] etc. at most once */
	struct raw_job *raw_jobs;	/* parallel to cfg->jobs */
	int *route_jobs_line;		/* parallel to cfg->routes */
	char **route_jobs;		/* the `jobs` value of each route */
	int max_jobs_line;		/* of [registry] max_jobs; 0: default */
	/* Of [server] listen, cert, key and tls_priorities; 0: not set. */
	int listen_line, cert_line, key_line, priorities_line;
	int auth_line;			/* of the [auth] header; 0: none */
	int tokens_line;		/* of [auth] tokens */
	int store_line;			/* of the [store] header; 0: none */
	int backend_line;		/* of [store] backend; 0: default */
	/* Keys set in the current section, to refuse duplicates. */
	char **keys;
	size_t nkeys;
};

/* ---- config.c ------------------------------------------------------------ */

/*
 * A new, empty config with a reference count of 1 (new reference), or
 * NULL (ENOMEM).  config_unref() frees whatever has been put in it since,
 * so a half-built config is dropped like a whole one.
 */
struct config *config_new(void);

/* ---- config_value.c -------------------------------------------------------- */

/* Job and instance names: [A-Za-z0-9_.-], 1 to CONFIG_NAME_MAX chars. */
bool config_name_valid(const char *s);

/*
 * Config text ends up in JSON answers (a job's result) and in log lines, so
 * it must be valid UTF-8 without control characters (tab excepted).
 * config_text_problem() says what is wrong with s, as the end of a sentence
 * whose subject the caller gives, or NULL if nothing is.
 * config_text_sanitize() replaces with '?' each byte of s that does not
 * start a valid character other than a control one.
 */
const char *config_text_problem(const char *s);
void config_text_sanitize(char *s);

/* ---- config_parser.c ------------------------------------------------------- */

/*
 * Records an error at line (0: not tied to a line) in p->err, and marks
 * the load failed.  Only the first error is kept: later ones are usually
 * its echoes.
 */
void parser_error(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Makes room for element n of a growable array whose length is n.
 * Returns 0, or -1 with the array untouched when out of memory.
 */
int parser_reserve(void *arrayp, size_t n, size_t size);
#define RESERVE(array, n) parser_reserve(&(array), (n), sizeof(*(array)))

/*
 * The reasons a key of the current line is refused; each records it and
 * returns -1.  parser_set_string() replaces *dst with a copy of value:
 * 0, or -1 when out of memory.
 */
int parser_bad_value(struct parser *p, const char *key, const char *value,
		     const char *expected);
int parser_unknown_key(struct parser *p, const char *section,
		       const char *key);
int parser_set_string(struct parser *p, char **dst, const char *value);

/* ---- config_sections.c ----------------------------------------------------- */

/* Puts the defaults of [server], [pool], [registry] and [log] in c. */
void config_sections_defaults(struct config *c);

/*
 * A header: 0 if it is [server], [pool], [registry] or [log] (the current
 * section then), 1 if it is none of them, -1 if it appears twice.
 */
int config_sections_begin(struct parser *p, const char *header);

/* A key of the current fixed section: 0 or -1. */
int config_sections_key(struct parser *p, const char *key, const char *value);

/* Once the file is read, the defaults that depend on it: 0 or -1. */
int config_sections_finish(struct parser *p);

/* ---- config_params.c ------------------------------------------------------- */

/*
 * A `param.NAME = TYPE OPTIONS` key of def's section (kv->key starts with
 * "param."): appends its declaration to def->params.  0, or -1 with the
 * error at kv->line.  What it appended before failing is freed with the
 * config.
 */
int config_params_key(struct parser *p, struct job_def *def,
		      const struct raw_kv *kv);

/* ---- config_jobs.c --------------------------------------------------------- */

/*
 * A header: 0 if it is a good [job NAME] or [route PATH] (the current
 * section then), 1 if it is neither, -1 if it is a bad one.
 */
int config_jobs_begin(struct parser *p, const char *header);

/* A key of the current [job] or [route]: 0 or -1. */
int config_jobs_key(struct parser *p, const char *key, const char *value);

/*
 * Once the file is read: gives each job its kind and settings, resolves
 * each route's jobs, and checks the limits that involve them.  0 or -1.
 */
int config_jobs_finish(struct parser *p);

/* Frees what the sections were read into before they had a meaning. */
void config_jobs_forget(struct parser *p);

/* ---- config_auth.c -------------------------------------------------------- */

/* A header: 0 if it is [auth] (the current section then), 1 if it is
 * not, -1 if it appears twice. */
int config_auth_begin(struct parser *p, const char *header);

/* A key of [auth]: 0 or -1. */
int config_auth_key(struct parser *p, const char *key, const char *value);

/*
 * Once the routes and jobs are resolved: reads the tokens file (its own
 * errors are given as TOKENSFILE:LINE, a refused file as this file's
 * `tokens` line), checks that its limits name routes and jobs that
 * exist, and that `auth = token` is not asked for without tokens.  0 or
 * -1.
 */
int config_auth_finish(struct parser *p);

/* ---- config_store.c ------------------------------------------------------- */

/* Puts the defaults of [store] in c (memory: nothing is kept). */
void config_store_defaults(struct config *c);

/* A header: 0 if it is [store] (the current section then), 1 if it is
 * not, -1 if it appears twice. */
int config_store_begin(struct parser *p, const char *header);

/* A key of [store]: 0 or -1.  A refused url is never quoted. */
int config_store_key(struct parser *p, const char *key, const char *value);

/* Once the file is read: the default path, postgresql's url.  0 or -1. */
int config_store_finish(struct parser *p);

#endif
