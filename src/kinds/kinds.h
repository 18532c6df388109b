/*
 * kinds.h - the table of job kinds, by name.
 *
 * Adding a kind is one file in src/kinds/ that defines its struct
 * job_kind (kind.h), and one line here and one in the table of kinds.c.
 * Only what reads a config file needs the table; an instance reaches its
 * kind through its definition.
 */
#ifndef TASKPOOLD_KINDS_H
#define TASKPOOLD_KINDS_H

#include "kinds/kind.h"

extern const struct job_kind job_kind_sleep;
extern const struct job_kind job_kind_exec;
extern const struct job_kind job_kind_http;
extern const struct job_kind job_kind_plugin;

/*
 * The kind registered under name, borrowed (static), or NULL; and
 * "sleep, ..." for error messages.  Both can be called from any thread.
 */
const struct job_kind *job_kind_find(const char *name);
const char *job_kind_names(void);

struct job_env;

/*
 * Every kind's global_init, once, from main() before any thread starts.
 * 0, or -1 with the reason written to why.
 */
int kinds_global_init(char *why, size_t whylen);

/*
 * Every kind's open on env (after job_env_init()), and close in the
 * reverse order.  kinds_open() returns 0, or -1 with errno, the kinds
 * opened before the one that failed closed again.
 */
int kinds_open(struct job_env *env);
void kinds_close(struct job_env *env);

/* What kind keeps in env while it runs (its open's *state), borrowed. */
void *kinds_state(const struct job_env *env, const struct job_kind *kind);

#endif
