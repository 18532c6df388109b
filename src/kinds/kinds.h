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

/*
 * The kind registered under name, borrowed (static), or NULL; and
 * "sleep, ..." for error messages.  Both can be called from any thread.
 */
const struct job_kind *job_kind_find(const char *name);
const char *job_kind_names(void);

#endif
