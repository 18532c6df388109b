/*
 * config_sections.c - the sections that configure the daemon itself:
 * [server], [pool], [registry] and [log], each at most once, with their
 * defaults.  See config_private.h and taskpoold.conf(5).
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_private.h"
#include "tls.h"

void
config_sections_defaults(struct config *c)
{
	c->server.threads = 2;
	c->server.max_connections = 0;
	c->server.max_connections_per_ip = 0;
	c->server.header_timeout_ns = 30 * NS_PER_S;
	c->server.body_timeout_ns = 60 * NS_PER_S;
	c->server.connection_memory = 16 * 1024;
	c->server.connection_timeout_s = 30;
	c->server.drain_timeout_ns = 10 * NS_PER_S;
	c->server.max_body = 64 * 1024;
	c->server.max_run_jobs = 16;
	c->pool.workers = 4;
	c->pool.queue = 4096;
	c->registry.max_jobs = 100000;
	c->registry.retain_ns = 600 * NS_PER_S;
	c->registry.max_runs = 10000;
	c->log.level = LOG_LEVEL_INFO;
	c->log.jobs = true;
	c->log.access_log = false;
}

int
config_sections_begin(struct parser *p, const char *header)
{
	p->section = SECTION_NONE;
	if (!strcmp(header, "server"))
		p->section = SECTION_SERVER;
	else if (!strcmp(header, "pool"))
		p->section = SECTION_POOL;
	else if (!strcmp(header, "registry"))
		p->section = SECTION_REGISTRY;
	else if (!strcmp(header, "log"))
		p->section = SECTION_LOG;
	if (p->section == SECTION_NONE)
		return 1;
	if (p->seen_fixed[p->section]) {
		parser_error(p, p->line, "section [%s] appears twice", header);
		return -1;
	}
	p->seen_fixed[p->section] = true;
	return 0;
}

/*
 * header_timeout or body_timeout: 0 (none), or 100ms to 1h.  A bound on
 * the whole time, where connection_timeout is one on idleness.
 */
static int
request_timeout(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	int64_t ns;

	if (config_parse_duration(value, &ns) ||
	    (ns != 0 && ns < NS_PER_S / 10) || ns > 3600 * NS_PER_S)
		return parser_bad_value(p, key, value, "0 (none) or a "
					"duration from 100ms to 1h");
	if (!strcmp(key, "header_timeout"))
		c->server.header_timeout_ns = ns;
	else
		c->server.body_timeout_ns = ns;
	return 0;
}

static int
key_server(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	struct sockaddr_storage ss;
	unsigned socklen;
	int64_t ns;

	if (!strcmp(key, "listen")) {
		if (config_parse_listen(value, &ss, &socklen))
			return parser_bad_value(p, key, value, "ADDRESS:PORT "
						"with a numeric address, e.g. "
						"127.0.0.1:8080 or [::1]:8080, "
						"or https://ADDRESS:PORT");
		p->listen_line = p->line;
		return parser_set_string(p, &c->server.listen, value);
	}
	if (!strcmp(key, "cert") || !strcmp(key, "key")) {
		*(key[0] == 'c' ? &p->cert_line : &p->key_line) = p->line;
		return parser_set_string(p, key[0] == 'c' ? &c->server.cert :
					 &c->server.key, value);
	}
	if (!strcmp(key, "tls_priorities")) {
		p->priorities_line = p->line;
		return parser_set_string(p, &c->server.tls_priorities, value);
	}
	if (!strcmp(key, "instance")) {
		if (!config_name_valid(value))
			return parser_bad_value(p, key, value, "1 to 64 of A-Z "
						"a-z 0-9 _ . -");
		return parser_set_string(p, &c->server.instance, value);
	}
	if (!strcmp(key, "threads"))
		return config_parse_uint(value, 1, 256, &c->server.threads) ?
		       parser_bad_value(p, key, value, "1 to 256") : 0;
	if (!strcmp(key, "max_connections"))
		return config_parse_uint(value, 0, 1000000,
					 &c->server.max_connections) ?
		       parser_bad_value(p, key, value, "0 (automatic) to "
					"1000000") :
		       0;
	if (!strcmp(key, "max_connections_per_ip"))
		return config_parse_uint(value, 0, 1000000,
					 &c->server.max_connections_per_ip) ?
		       parser_bad_value(p, key, value, "0 (no limit) to "
					"1000000") :
		       0;
	if (!strcmp(key, "header_timeout") || !strcmp(key, "body_timeout"))
		return request_timeout(p, key, value);
	if (!strcmp(key, "connection_memory")) {
		size_t sz;

		if (config_parse_size(value, &sz) || sz < 4096 ||
		    sz > 1024 * 1024)
			return parser_bad_value(p, key, value, "a size from 4K "
						"to 1M");
		c->server.connection_memory = sz;
		return 0;
	}
	if (!strcmp(key, "connection_timeout")) {
		if (config_parse_duration(value, &ns) || ns < NS_PER_S ||
		    ns > 3600 * NS_PER_S)
			return parser_bad_value(p, key, value, "a duration "
						"from 1s to 1h");
		/* MHD counts whole seconds: round up, never to 0. */
		c->server.connection_timeout_s =
			(unsigned)((ns + NS_PER_S - 1) / NS_PER_S);
		return 0;
	}
	if (!strcmp(key, "drain_timeout")) {
		if (config_parse_duration(value, &ns) ||
		    ns > 3600 * NS_PER_S)
			return parser_bad_value(p, key, value, "a duration up "
						"to 1h");
		c->server.drain_timeout_ns = ns;
		return 0;
	}
	if (!strcmp(key, "max_body")) {
		size_t sz;

		if (config_parse_size(value, &sz) || sz < 1024 ||
		    sz > 16 * 1024 * 1024)
			return parser_bad_value(p, key, value, "a size from 1K "
						"to 16M");
		c->server.max_body = sz;
		return 0;
	}
	if (!strcmp(key, "max_run_jobs"))
		return config_parse_uint(value, 1, CONFIG_ROUTE_JOBS_MAX,
					 &c->server.max_run_jobs) ?
		       parser_bad_value(p, key, value, "1 to 64") : 0;
	return parser_unknown_key(p, "server", key);
}

static int
key_pool(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;

	if (!strcmp(key, "workers"))
		return config_parse_uint(value, 1, 1024, &c->pool.workers) ?
		       parser_bad_value(p, key, value, "1 to 1024") : 0;
	if (!strcmp(key, "queue"))
		return config_parse_uint(value, 1, 1000000, &c->pool.queue) ?
		       parser_bad_value(p, key, value, "1 to 1000000") : 0;
	return parser_unknown_key(p, "pool", key);
}

static int
key_registry(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	int64_t ns;

	if (!strcmp(key, "max_jobs")) {
		p->max_jobs_line = p->line;
		return config_parse_uint(value, 16, 10000000,
					 &c->registry.max_jobs) ?
		       parser_bad_value(p, key, value, "16 to 10000000") : 0;
	}
	if (!strcmp(key, "retain")) {
		if (config_parse_duration(value, &ns))
			return parser_bad_value(p, key, value, "a duration up "
						"to 7d (e.g. 10m)");
		c->registry.retain_ns = ns;
		return 0;
	}
	if (!strcmp(key, "max_runs"))
		return config_parse_uint(value, 16, 10000000,
					 &c->registry.max_runs) ?
		       parser_bad_value(p, key, value, "16 to 10000000") : 0;
	return parser_unknown_key(p, "registry", key);
}

static int
key_log(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	int level;

	if (!strcmp(key, "level")) {
		if ((level = log_level_parse(value)) < 0)
			return parser_bad_value(p, key, value, "error, "
						"warning, info or debug");
		c->log.level = (enum log_level)level;
		return 0;
	}
	if (!strcmp(key, "jobs"))
		return config_parse_bool(value, &c->log.jobs) ?
		       parser_bad_value(p, key, value, "yes or no") : 0;
	if (!strcmp(key, "access_log"))
		return config_parse_bool(value, &c->log.access_log) ?
		       parser_bad_value(p, key, value, "yes or no") : 0;
	return parser_unknown_key(p, "log", key);
}

int
config_sections_key(struct parser *p, const char *key, const char *value)
{
	switch (p->section) {
	case SECTION_SERVER:	return key_server(p, key, value);
	case SECTION_POOL:	return key_pool(p, key, value);
	case SECTION_REGISTRY:	return key_registry(p, key, value);
	case SECTION_LOG:	return key_log(p, key, value);
	default:		return -1;
	}
}

/*
 * TLS: the priority string is checked; cert and key go together, an
 * https:// listen needs them, and they are loaded here, so that a bad
 * pair is refused with its line, by `-t` and by a reload alike.  Without
 * https:// they are loaded all the same: `-l https://...` or the scheme
 * under socket activation may use them.  Returns 0, or -1 (error set).
 */
static int
finish_tls(struct parser *p)
{
	struct config *c = p->cfg;
	char why[200], which;

	if (c->server.tls_priorities == NULL) {
		if ((c->server.tls_priorities =
		     strdup(TLS_PRIORITIES_DEFAULT)) == NULL)
			goto nomem;
	} else if (tls_priorities_check(c->server.tls_priorities, why,
					sizeof(why)) != 0) {
		parser_error(p, p->priorities_line, "bad tls_priorities: %s",
			     why);
		return -1;
	}
	if ((c->server.cert == NULL) != (c->server.key == NULL)) {
		parser_error(p, c->server.cert ? p->cert_line : p->key_line,
			     "cert and key go together: %s is missing",
			     c->server.cert ? "key" : "cert");
		return -1;
	}
	if (c->server.cert == NULL) {
		if (config_listen_tls(c->server.listen)) {
			parser_error(p, p->listen_line, "listen = https://... "
				     "needs cert and key in [server]");
			return -1;
		}
		return 0;
	}
	c->server.tls = tls_creds_load(c->server.cert, c->server.key, why,
				       sizeof(why), &which);
	if (c->server.tls == NULL) {
		parser_error(p, which == 'c' ? p->cert_line : p->key_line,
			     "%s", why);
		return -1;
	}
	return 0;
nomem:
	parser_error(p, 0, "out of memory");
	return -1;
}

/*
 * The listen address has a default of its own; the instance name, when
 * not set, is the host's, if it is a valid name.
 */
int
config_sections_finish(struct parser *p)
{
	struct config *c = p->cfg;

	if (c->server.listen == NULL &&
	    (c->server.listen = strdup("127.0.0.1:8080")) == NULL)
		goto nomem;
	if (finish_tls(p) != 0)
		return -1;
	if (c->server.instance == NULL) {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0 ||
		    (host[sizeof(host) - 1] = '\0', !config_name_valid(host)))
			strcpy(host, "taskpoold");
		if ((c->server.instance = strdup(host)) == NULL)
			goto nomem;
	}
	return 0;
nomem:
	parser_error(p, 0, "out of memory");
	return -1;
}
