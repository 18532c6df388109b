/*
 * config_store.c - the [store] section: where the daemon keeps the
 * durable records of its jobs and runs (store/store.h).  See
 * config_private.h and taskpoold.conf(5).
 *
 * The store is opened at start only: a reload that changes these keys is
 * read and checked like any other, and the daemon warns that the running
 * store is kept (daemon.c).
 *
 * `url` may hold a password (a libpq conninfo or URI): no reason given
 * here ever quotes it.
 */
#include <string.h>

#include "config_private.h"
#include "store/store.h"

#define STORE_PATH_DEFAULT "/var/lib/taskpoold/taskpoold.db"

void
config_store_defaults(struct config *c)
{
	c->store.backend = STORE_MEMORY;
	c->store.lease_ns = 30 * NS_PER_S;
	c->store.max_attempts = 3;
}

int
config_store_begin(struct parser *p, const char *header)
{
	if (strcmp(header, "store") != 0)
		return 1;
	if (p->store_line != 0) {
		parser_error(p, p->line, "section [store] appears twice");
		return -1;
	}
	p->store_line = p->line;
	p->section = SECTION_STORE;
	return 0;
}

int
config_store_key(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	int64_t ns;

	if (!strcmp(key, "backend")) {
		if (!strcmp(value, "memory"))
			c->store.backend = STORE_MEMORY;
		else if (!strcmp(value, "sqlite"))
			c->store.backend = STORE_SQLITE;
		else if (!strcmp(value, "postgresql"))
			c->store.backend = STORE_POSTGRESQL;
		else
			return parser_bad_value(p, key, value, "memory, sqlite "
						"or postgresql");
		p->backend_line = p->line;
		return 0;
	}
	if (!strcmp(key, "path")) {
		if (value[0] != '/') {
			parser_error(p, p->line, "path must be the absolute "
				     "path of the database file");
			return -1;
		}
		return parser_set_string(p, &c->store.path, value);
	}
	if (!strcmp(key, "url")) {
		/* Never quoted: it may carry a password. */
		if (value[0] == '\0') {
			parser_error(p, p->line, "url must not be empty");
			return -1;
		}
		return parser_set_string(p, &c->store.url, value);
	}
	if (!strcmp(key, "lease")) {
		if (config_parse_duration(value, &ns) || ns == 0)
			return parser_bad_value(p, key, value, "a duration "
						"above 0 and up to 7d, e.g. "
						"30s");
		c->store.lease_ns = ns;
		return 0;
	}
	if (!strcmp(key, "max_attempts"))
		return config_parse_uint(value, 1, 1000,
					 &c->store.max_attempts) ?
		       parser_bad_value(p, key, value, "1 to 1000") : 0;
	return parser_unknown_key(p, "store", key);
}

/* The default path; postgresql needs its url.  0 or -1. */
int
config_store_finish(struct parser *p)
{
	struct config *c = p->cfg;

	if (c->store.backend == STORE_POSTGRESQL && c->store.url == NULL) {
		parser_error(p, p->backend_line, "backend = postgresql needs "
			     "url in [store] (a libpq connection string or "
			     "URI)");
		return -1;
	}
	if (c->store.path == NULL &&
	    (c->store.path = strdup(STORE_PATH_DEFAULT)) == NULL) {
		parser_error(p, 0, "out of memory");
		return -1;
	}
	return 0;
}
