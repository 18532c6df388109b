/*
 * config.c - see config.h and taskpoold.conf(5).
 *
 * inih does the INI syntax; this file gives it meaning.  inih does not
 * tell its handler the line number, and never calls it for a section
 * without keys, so the file is fed to inih through our own line reader:
 * the reader counts lines (the handler runs right after its line is read,
 * so the count is the handler's line), sees every section header, and
 * refuses lines longer than inih's buffer instead of letting inih split
 * them.  It also refuses what inih would quietly take in a way the writer
 * did not mean: a NUL byte (fgets() would end the line there), text after
 * a header's ']' (inih drops it), and an indented line after a key (inih
 * appends it to that key's value as a continuation line).
 *
 * [job] sections are collected as raw key/value/line triples and given
 * meaning once the file is read, because `kind` decides which keys are
 * valid and may come after them.  Route job lists are resolved last, since
 * a route may name a job defined further down.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "kinds/kinds.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S  INT64_C(1000000000)
#define DURATION_MAX (7 * 24 * 3600 * NS_PER_S)	/* keys may allow less */

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

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
};

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
	/* Keys set in the current section, to refuse duplicates. */
	char **keys;
	size_t nkeys;
};

/* ---- text ---------------------------------------------------------------- */

/*
 * Config text ends up in JSON answers (a job's result) and in log lines (the
 * reasons below quote values), so it must be valid UTF-8 without control
 * characters.  This is our own check rather than jansson's json_stringn():
 * that one takes control characters (it escapes them in JSON, but a log line
 * would carry them raw), does not say what was wrong, and would make this
 * file depend on jansson for this alone.
 */

/*
 * Decodes the UTF-8 character at s into *cp and returns its length, or 0 if
 * s does not start a valid one (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF).  A NUL fails as a continuation byte, so this never
 * reads past the end of the string.
 */
static size_t
utf8_char(const char *s, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t c = u[0], min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		min = 0x10000;
	} else
		return 0;	/* a continuation byte, or 0xF8 and up */
	c &= 0x7F >> n;		/* the lead byte's payload bits */
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (u[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

/* Unicode's control characters (C0, DEL and C1), tab excepted. */
static bool
control_char(uint32_t cp)
{
	return (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F);
}

/*
 * What is wrong with s as text for a JSON answer or a log line, as the end
 * of a sentence whose subject the caller gives; NULL if nothing is.
 */
static const char *
text_problem(const char *s)
{
	uint32_t cp;
	size_t n;

	for (; *s != '\0'; s += n) {
		if ((n = utf8_char(s, &cp)) == 0)
			return "is not valid UTF-8";
		if (control_char(cp))
			return "has a control character (only tab is allowed)";
	}
	return NULL;
}

/*
 * Replaces with '?' each byte of s that does not start a valid character
 * other than a control one.  The text of the config has been checked
 * before a reason quotes it, but a reason cut short by its buffer may end
 * in half a character, and it goes into a log line.
 */
static void
text_sanitize(char *s)
{
	uint32_t cp;
	size_t n;

	while (*s != '\0') {
		n = utf8_char(s, &cp);
		if (n == 0 || control_char(cp)) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
}

/* ---- errors -------------------------------------------------------------- */

static void set_error(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the first error only: later ones are usually its echoes. */
static void
set_error(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	snprintf(p->err->file, sizeof(p->err->file), "%s", p->path);
	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
	va_end(ap);
	text_sanitize(p->err->text);
}

/* ---- value parsers --------------------------------------------------------- */

int
config_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/*
 * floor(0.DIGITS * mult * 10^tens): the nanoseconds that a fraction of n
 * digits adds to a unit of mult * 10^tens ns.  Done as on paper, so that it
 * is exact for any number of digits and nothing can overflow: the first tens
 * digits make whole nanoseconds (below 10^tens * mult); the digits after
 * them are multiplied by mult from the right only for the carry they hand
 * up (below mult) and to learn whether anything below a nanosecond is left
 * (*below_ns), which is what makes "7.0000000000000000000001d" more than
 * 7 days.
 */
static int64_t
duration_fraction(const char *digits, size_t n, unsigned mult, unsigned tens,
		  bool *below_ns)
{
	unsigned carry = 0, t;
	int64_t ns = 0;
	size_t i;

	*below_ns = false;
	for (i = n; i > tens; i--) {
		t = mult * (unsigned)(digits[i - 1] - '0') + carry;
		if (t % 10 != 0)
			*below_ns = true;
		carry = t / 10;
	}
	for (i = 0; i < tens; i++)
		ns = ns * 10 + (i < n ? digits[i] - '0' : 0);
	return ns * mult + carry;
}

/*
 * "1.5s", "250ms", "2m", "1h", "7d", "0".  A number needs a unit, so that "30"
 * is never silently read as 30 ns or 30 hours.  At most 7 days, so never
 * negative; a fraction of a nanosecond is dropped.  *ns is written only on
 * success.
 */
int
config_parse_duration(const char *s, int64_t *ns)
{
	static const struct {
		const char *unit;
		unsigned mult, tens;	/* the unit is mult * 10^tens ns */
	} units[] = {
		{ "ms", 1, 6 }, { "s", 1, 9 }, { "m", 6, 10 },
		{ "h", 36, 11 }, { "d", 864, 11 },
	};
	const char *c = s, *frac = "";
	int64_t whole = 0, unit, v;
	size_t nfrac = 0, i;
	unsigned e;
	bool below_ns;

	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*c))
		return -1;
	/* Bounded at each digit, so that no run of digits can overflow. */
	for (; isdigit((unsigned char)*c); c++) {
		whole = whole * 10 + (*c - '0');
		if (whole > DURATION_MAX / NS_PER_MS)
			return -1;
	}
	if (*c == '.') {
		frac = ++c;
		while (isdigit((unsigned char)*c))
			c++;
		if ((nfrac = (size_t)(c - frac)) == 0)
			return -1;
	}
	for (i = 0; i < NITEMS(units); i++)
		if (strcmp(c, units[i].unit) == 0)
			break;
	if (i == NITEMS(units))
		return -1;
	for (unit = units[i].mult, e = 0; e < units[i].tens; e++)
		unit *= 10;
	if (whole > DURATION_MAX / unit)
		return -1;
	/* At most DURATION_MAX plus less than one unit: no overflow. */
	v = whole * unit + duration_fraction(frac, nfrac, units[i].mult,
					     units[i].tens, &below_ns);
	if (v > DURATION_MAX || (v == DURATION_MAX && below_ns))
		return -1;
	*ns = v;
	return 0;
}

/* "4096", "16K", "1M". */
int
config_parse_size(const char *s, size_t *bytes)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	/*
	 * Bound v before scaling it: "18014398509481985K" would otherwise
	 * wrap around 2^64 to 1024 and be accepted.
	 */
	if (v > (1ULL << 40))
		return -1;
	if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0)
		v *= 1024;
	else if (strcmp(end, "M") == 0)
		v *= 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (v > SIZE_MAX / 2 || v > (1ULL << 40))
		return -1;
	*bytes = (size_t)v;
	return 0;
}

int
config_parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off")) {
		*out = false;
		return 0;
	}
	return -1;
}

int
config_parse_listen(const char *s, struct sockaddr_storage *ss,
		    unsigned *socklen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	unsigned port;
	size_t hlen;

	if (colon == NULL || config_parse_uint(colon + 1, 0, 65535, &port))
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (hlen < 3 || host[hlen - 1] != ']')
			return -1;
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*socklen = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*socklen = sizeof(*sin);
	}
	return 0;
}

/* Job and instance names: [A-Za-z0-9_.-], 1 to CONFIG_NAME_MAX chars. */
static bool
valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* Route paths: "/" or "/seg/seg", segments of [A-Za-z0-9_.~-]. */
static bool
valid_route_path(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CONFIG_PATH_MAX || s[0] != '/')
		return false;
	if (n > 1 && s[n - 1] == '/')
		return false;
	for (i = 1; i < n; i++) {
		if (s[i] == '/' && s[i - 1] == '/')
			return false;
		if (!isalnum((unsigned char)s[i]) && !strchr("/_.~-", s[i]))
			return false;
	}
	return true;
}

/* Paths the daemon serves itself; a route may not take them. */
static bool
reserved_route_path(const char *s)
{
	return !strcmp(s, "/jobs") || !strncmp(s, "/jobs/", 6) ||
	       !strcmp(s, "/healthz") || !strcmp(s, "/metrics") ||
	       !strcmp(s, "/openapi.json");
}

/* ---- sections ------------------------------------------------------------- */

/*
 * Makes room for element n of a growable array whose length is n, doubling
 * at powers of two (so appends are amortized O(1) with no capacity field).
 * arrayp points to the array pointer.  Returns 0, or -1 with the array
 * untouched when out of memory.
 */
static int
reserve(void *arrayp, size_t n, size_t size)
{
	void **array = arrayp;
	void *bigger;

	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	bigger = realloc(*array, (n ? n * 2 : 1) * size);
	if (bigger == NULL)
		return -1;
	*array = bigger;
	return 0;
}

#define RESERVE(array, n) reserve(&(array), (n), sizeof(*(array)))

static void
forget_keys(struct parser *p)
{
	size_t i;

	for (i = 0; i < p->nkeys; i++)
		free(p->keys[i]);
	free(p->keys);
	p->keys = NULL;
	p->nkeys = 0;
}

/* [server], [pool], [registry] or [log]: 0, 1 if header is none, or -1. */
static int
begin_fixed_section(struct parser *p, const char *header)
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
		set_error(p, p->line, "section [%s] appears twice", header);
		return -1;
	}
	p->seen_fixed[p->section] = true;
	return 0;
}

/* [job NAME]: a new job definition with its defaults.  0 or -1. */
static int
begin_job_section(struct parser *p, const char *name)
{
	struct job_def *def;
	size_t i;

	if (!valid_name(name)) {
		set_error(p, p->line, "bad job name '%s' (use 1 to %d of "
			  "A-Z a-z 0-9 _ . -)", name, CONFIG_NAME_MAX);
		return -1;
	}
	for (i = 0; i < p->cfg->njobs; i++) {
		if (!strcmp(p->cfg->jobs[i].name, name)) {
			set_error(p, p->line, "job '%s' is already defined "
				  "at line %d", name, p->cfg->jobs[i].line);
			return -1;
		}
	}
	if (RESERVE(p->cfg->jobs, p->cfg->njobs) ||
	    RESERVE(p->raw_jobs, p->cfg->njobs))
		goto nomem;
	def = &p->cfg->jobs[p->cfg->njobs];
	memset(def, 0, sizeof(*def));
	memset(&p->raw_jobs[p->cfg->njobs], 0, sizeof(p->raw_jobs[0]));
	p->cfg->njobs++;
	def->line = p->line;
	def->timeout_ns = 60 * NS_PER_S;
	if ((def->name = strdup(name)) == NULL)
		goto nomem;
	p->section = SECTION_JOB;
	return 0;
nomem:
	set_error(p, p->line, "out of memory");
	return -1;
}

/* [route PATH]: a new route with its defaults.  0 or -1. */
static int
begin_route_section(struct parser *p, const char *path)
{
	size_t i, n = p->cfg->nroutes;
	struct route *r;

	if (!valid_route_path(path)) {
		set_error(p, p->line, "bad route path '%s' (an absolute path "
			  "of A-Z a-z 0-9 / _ . ~ -, at most %d characters)",
			  path, CONFIG_PATH_MAX);
		return -1;
	}
	if (reserved_route_path(path)) {
		set_error(p, p->line, "route path '%s' is reserved for the "
			  "daemon's own API", path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(p->cfg->routes[i].path, path)) {
			set_error(p, p->line, "route '%s' is already defined "
				  "at line %d", path, p->cfg->routes[i].line);
			return -1;
		}
	}
	if (RESERVE(p->cfg->routes, n) || RESERVE(p->route_jobs, n) ||
	    RESERVE(p->route_jobs_line, n))
		goto nomem;
	r = &p->cfg->routes[n];
	memset(r, 0, sizeof(*r));	/* on_disconnect = detach */
	p->route_jobs[n] = NULL;
	p->route_jobs_line[n] = 0;
	p->cfg->nroutes++;
	r->line = p->line;
	r->wait = RUN_WAIT_ALL;
	r->timeout_ns = 30 * NS_PER_S;
	if ((r->path = strdup(path)) == NULL ||
	    (r->method = strdup("GET")) == NULL)
		goto nomem;
	p->section = SECTION_ROUTE;
	return 0;
nomem:
	set_error(p, p->line, "out of memory");
	return -1;
}

/* Called by the reader for each "[...]" line.  Returns 0 or -1. */
static int
begin_section(struct parser *p, const char *header)
{
	int fixed;

	forget_keys(p);
	fixed = begin_fixed_section(p, header);
	if (fixed <= 0)
		return fixed;
	if (!strncmp(header, "job ", 4))
		return begin_job_section(p, header + 4);
	if (!strncmp(header, "route ", 6))
		return begin_route_section(p, header + 6);
	set_error(p, p->line, "unknown section [%s] (expected [server], "
		  "[pool], [registry], [log], [job NAME] or [route PATH])",
		  header);
	return -1;
}

/* ---- keys ------------------------------------------------------------------ */

static int
bad_value(struct parser *p, const char *key, const char *value,
	  const char *expected)
{
	set_error(p, p->line, "bad value '%s' for %s (expected %s)", value,
		  key, expected);
	return -1;
}

static int
set_string(struct parser *p, char **dst, const char *value)
{
	char *s = strdup(value);

	if (s == NULL) {
		set_error(p, p->line, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = s;
	return 0;
}

static int
unknown_key(struct parser *p, const char *section, const char *key)
{
	set_error(p, p->line, "unknown key '%s' in [%s]", key, section);
	return -1;
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
			return bad_value(p, key, value, "ADDRESS:PORT with a "
					 "numeric address, e.g. 127.0.0.1:8080"
					 " or [::1]:8080");
		return set_string(p, &c->server.listen, value);
	}
	if (!strcmp(key, "instance")) {
		if (!valid_name(value))
			return bad_value(p, key, value, "1 to 64 of A-Z a-z "
					 "0-9 _ . -");
		return set_string(p, &c->server.instance, value);
	}
	if (!strcmp(key, "threads"))
		return config_parse_uint(value, 1, 256, &c->server.threads) ?
		       bad_value(p, key, value, "1 to 256") : 0;
	if (!strcmp(key, "max_connections"))
		return config_parse_uint(value, 0, 1000000,
					 &c->server.max_connections) ?
		       bad_value(p, key, value, "0 (automatic) to 1000000") :
		       0;
	if (!strcmp(key, "connection_memory")) {
		size_t sz;

		if (config_parse_size(value, &sz) || sz < 4096 ||
		    sz > 1024 * 1024)
			return bad_value(p, key, value, "a size from 4K to "
					 "1M");
		c->server.connection_memory = sz;
		return 0;
	}
	if (!strcmp(key, "connection_timeout")) {
		if (config_parse_duration(value, &ns) || ns < NS_PER_S ||
		    ns > 3600 * NS_PER_S)
			return bad_value(p, key, value, "a duration from 1s "
					 "to 1h");
		/* MHD counts whole seconds: round up, never to 0. */
		c->server.connection_timeout_s =
			(unsigned)((ns + NS_PER_S - 1) / NS_PER_S);
		return 0;
	}
	if (!strcmp(key, "drain_timeout")) {
		if (config_parse_duration(value, &ns) ||
		    ns > 3600 * NS_PER_S)
			return bad_value(p, key, value, "a duration up to 1h");
		c->server.drain_timeout_ns = ns;
		return 0;
	}
	return unknown_key(p, "server", key);
}

static int
key_pool(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;

	if (!strcmp(key, "workers"))
		return config_parse_uint(value, 1, 1024, &c->pool.workers) ?
		       bad_value(p, key, value, "1 to 1024") : 0;
	if (!strcmp(key, "queue"))
		return config_parse_uint(value, 1, 1000000, &c->pool.queue) ?
		       bad_value(p, key, value, "1 to 1000000") : 0;
	return unknown_key(p, "pool", key);
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
		       bad_value(p, key, value, "16 to 10000000") : 0;
	}
	if (!strcmp(key, "retain")) {
		if (config_parse_duration(value, &ns))
			return bad_value(p, key, value, "a duration up to 7d "
					 "(e.g. 10m)");
		c->registry.retain_ns = ns;
		return 0;
	}
	return unknown_key(p, "registry", key);
}

static int
key_log(struct parser *p, const char *key, const char *value)
{
	struct config *c = p->cfg;
	int level;

	if (!strcmp(key, "level")) {
		if ((level = log_level_parse(value)) < 0)
			return bad_value(p, key, value, "error, warning, info "
					 "or debug");
		c->log.level = (enum log_level)level;
		return 0;
	}
	if (!strcmp(key, "jobs"))
		return config_parse_bool(value, &c->log.jobs) ?
		       bad_value(p, key, value, "yes or no") : 0;
	return unknown_key(p, "log", key);
}

static int
key_job(struct parser *p, const char *key, const char *value)
{
	struct raw_job *raw = &p->raw_jobs[p->cfg->njobs - 1];
	struct raw_kv *kv;

	if (RESERVE(raw->kvs, raw->nkvs)) {
		set_error(p, p->line, "out of memory");
		return -1;
	}
	kv = &raw->kvs[raw->nkvs];
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->line = p->line;
	raw->nkvs++;
	if (kv->key == NULL || kv->value == NULL) {
		set_error(p, p->line, "out of memory");
		return -1;
	}
	return 0;
}

static int
key_route(struct parser *p, const char *key, const char *value)
{
	size_t n = p->cfg->nroutes - 1;
	struct route *r = &p->cfg->routes[n];
	int policy;

	if (!strcmp(key, "method")) {
		static const char *const methods[] = {
			"GET", "POST", "PUT", "PATCH", "DELETE",
		};
		size_t i;

		for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
			if (!strcmp(value, methods[i]))
				return set_string(p, &r->method, value);
		return bad_value(p, key, value, "GET, POST, PUT, PATCH or "
				 "DELETE");
	}
	if (!strcmp(key, "jobs")) {
		p->route_jobs_line[n] = p->line;
		return set_string(p, &p->route_jobs[n], value);
	}
	if (!strcmp(key, "wait")) {
		if ((policy = run_policy_parse(value)) < 0)
			return bad_value(p, key, value, "all, first, any or "
					 "none");
		r->wait = (enum run_policy)policy;
		return 0;
	}
	if (!strcmp(key, "timeout")) {
		if (config_parse_duration(value, &r->timeout_ns) ||
		    r->timeout_ns < NS_PER_MS || r->timeout_ns > 3600 * NS_PER_S)
			return bad_value(p, key, value, "a duration from 1ms "
					 "to 1h");
		return 0;
	}
	if (!strcmp(key, "on_disconnect")) {
		if (!strcmp(value, "detach"))
			r->on_disconnect = ROUTE_DISCONNECT_DETACH;
		else if (!strcmp(value, "cancel"))
			r->on_disconnect = ROUTE_DISCONNECT_CANCEL;
		else
			return bad_value(p, key, value, "detach or cancel");
		return 0;
	}
	return unknown_key(p, "route", key);
}

/*
 * The key of the last "key = value" line of the current section, or NULL if
 * there is none or it was empty: exactly when inih reads an indented line
 * as a continuation of a value.  (Every key line that does not stop the
 * parse is in p->keys, in order.)
 */
static const char *
last_key(const struct parser *p)
{
	if (p->nkeys == 0 || p->keys[p->nkeys - 1][0] == '\0')
		return NULL;
	return p->keys[p->nkeys - 1];
}

/* inih's handler.  Returns 1 to go on, 0 on error (inih's convention). */
static int
on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parser *p = user;
	const char *why;
	size_t i;
	int rc;

	(void)section;	/* the reader already told us which it is */
	if (p->failed)
		return 0;
	/* First, since the reasons below quote the key or the value. */
	if ((why = text_problem(key)) != NULL) {
		set_error(p, p->line, "key name %s", why);
		return 0;
	}
	if ((why = text_problem(value)) != NULL) {
		set_error(p, p->line, "%s %s", key, why);
		return 0;
	}
	if (p->section == SECTION_NONE) {
		set_error(p, p->line, "key '%s' outside any section", key);
		return 0;
	}
	for (i = 0; i < p->nkeys; i++) {
		if (!strcmp(p->keys[i], key)) {
			set_error(p, p->line, "key '%s' is set twice in this "
				  "section", key);
			return 0;
		}
	}
	if (RESERVE(p->keys, p->nkeys) ||
	    (p->keys[p->nkeys] = strdup(key)) == NULL) {
		set_error(p, p->line, "out of memory");
		return 0;
	}
	p->nkeys++;
	switch (p->section) {
	case SECTION_SERVER:	rc = key_server(p, key, value); break;
	case SECTION_POOL:	rc = key_pool(p, key, value); break;
	case SECTION_REGISTRY:	rc = key_registry(p, key, value); break;
	case SECTION_LOG:	rc = key_log(p, key, value); break;
	case SECTION_JOB:	rc = key_job(p, key, value); break;
	case SECTION_ROUTE:	rc = key_route(p, key, value); break;
	default:		rc = -1; break;
	}
	return rc == 0;
}

/*
 * Like fgets(), but tells whether the line holds a NUL byte, which fgets()
 * would make look like its end.  Returns the length read, 0 at the end of
 * the file or on a read error.
 */
static size_t
read_raw_line(FILE *fp, char *buf, size_t size, bool *nul)
{
	size_t len = 0;
	int ch;

	*nul = false;
	while (len < size - 1 && (ch = getc(fp)) != EOF) {
		buf[len++] = (char)ch;
		if (ch == '\0')
			*nul = true;
		if (ch == '\n')
			break;
	}
	buf[len] = '\0';
	return len;
}

/* A "[...]" line for the reader, s at its '['.  Returns 0 or -1. */
static int
read_header(struct parser *p, const char *s)
{
	char header[CONFIG_PATH_MAX + 16];
	const char *end, *after, *why;
	size_t n;

	end = strchr(s, ']');
	if (end == NULL) {
		set_error(p, p->line, "section header without ']'");
		return -1;
	}
	/*
	 * inih drops whatever follows the ']'.  We take only what may follow
	 * a value: blanks, then perhaps a comment, a ';' after a blank.
	 */
	for (after = end + 1; isspace((unsigned char)*after); after++)
		;
	if (*after != '\0' && (*after != ';' || after == end + 1)) {
		set_error(p, p->line, "text after ']' in section header (a "
			  "comment there must start with a blank and ';')");
		return -1;
	}
	for (s++; *s == ' ' || *s == '\t'; s++)
		;
	n = (size_t)(end - s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= sizeof(header)) {
		set_error(p, p->line, "section header too long");
		return -1;
	}
	memcpy(header, s, n);
	header[n] = '\0';
	if ((why = text_problem(header)) != NULL) {
		set_error(p, p->line, "section header %s", why);
		return -1;
	}
	return begin_section(p, header);
}

/*
 * inih's line reader (fgets-like).  Counts lines, refuses over-long ones,
 * and handles section headers itself: see the top of this file.  It sees a
 * line as inih will: after a BOM on the first line and isspace() blanks.
 */
static char *
read_line(char *buf, int size, void *user)
{
	struct parser *p = user;
	const char *key;
	char *s;
	size_t len;
	bool nul;

	if (p->failed ||
	    (len = read_raw_line(p->fp, buf, (size_t)size, &nul)) == 0)
		return NULL;
	p->line++;
	/* Full, and not the file's last line (which may lack its '\n'). */
	if (len == (size_t)size - 1 && buf[len - 1] != '\n' &&
	    ungetc(getc(p->fp), p->fp) != EOF) {
		set_error(p, p->line, "line too long (at most %d characters)",
			  size - 2);
		return NULL;
	}
	if (nul) {
		set_error(p, p->line, "line has a NUL byte");
		return NULL;
	}
	s = buf;
	if (p->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return buf;	/* blank or comment, even when indented */
	if (s > buf && (key = last_key(p)) != NULL) {
		set_error(p, p->line, "indented line continues the value of "
			  "'%s', and continuation lines are not supported "
			  "(unindent it)", key);
		return NULL;
	}
	if (*s == '[' && read_header(p, s))
		return NULL;
	return buf;
}

/* ---- after the file is read ------------------------------------------------- */

static int
finish_job(struct parser *p, struct job_def *def, struct raw_job *raw)
{
	char why[192];
	size_t i;
	int rc;

	for (i = 0; i < raw->nkvs; i++) {
		if (strcmp(raw->kvs[i].key, "kind"))
			continue;
		def->kind = job_kind_find(raw->kvs[i].value);
		if (def->kind == NULL) {
			set_error(p, raw->kvs[i].line, "unknown job kind "
				  "'%s' (known: %s)", raw->kvs[i].value,
				  job_kind_names());
			return -1;
		}
	}
	if (def->kind == NULL) {
		set_error(p, def->line, "job '%s' has no kind", def->name);
		return -1;
	}
	for (i = 0; i < raw->nkvs; i++) {
		const struct raw_kv *kv = &raw->kvs[i];

		if (!strcmp(kv->key, "kind"))
			continue;
		if (!strcmp(kv->key, "timeout")) {
			if (config_parse_duration(kv->value, &def->timeout_ns)
			    || def->timeout_ns < NS_PER_MS) {
				set_error(p, kv->line, "bad value '%s' for "
					  "timeout (expected a duration from "
					  "1ms to 7d)", kv->value);
				return -1;
			}
			continue;
		}
		rc = def->kind->parse(def, kv->key, kv->value, why,
				      sizeof(why));
		if (rc == 1) {
			set_error(p, kv->line, "unknown key '%s' for a job of "
				  "kind %s", kv->key, def->kind->name);
			return -1;
		}
		if (rc < 0) {
			set_error(p, kv->line, "%s", why);
			return -1;
		}
	}
	if (def->kind->check(def, why, sizeof(why))) {
		set_error(p, def->line, "job '%s': %s", def->name, why);
		return -1;
	}
	return 0;
}

static int
finish_route(struct parser *p, struct route *r, char *jobs, int line)
{
	char *tok, *save = NULL;
	const struct job_def *def;

	if (jobs == NULL) {
		set_error(p, r->line, "route '%s' has no jobs", r->path);
		return -1;
	}
	for (tok = strtok_r(jobs, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		def = config_find_job(p->cfg, tok);
		if (def == NULL) {
			set_error(p, line, "route '%s' names unknown job "
				  "'%s'", r->path, tok);
			return -1;
		}
		if (r->njobs == CONFIG_ROUTE_JOBS_MAX) {
			set_error(p, line, "route '%s' has more than %d jobs",
				  r->path, CONFIG_ROUTE_JOBS_MAX);
			return -1;
		}
		if (RESERVE(r->jobs, r->njobs)) {
			set_error(p, line, "out of memory");
			return -1;
		}
		r->jobs[r->njobs++] = def;
	}
	if (r->njobs == 0) {
		set_error(p, line, "route '%s' has an empty job list",
			  r->path);
		return -1;
	}
	return 0;
}

/*
 * Refuses limits that contradict each other: settings each valid alone
 * that together make part of the file unusable.  Limits that are merely
 * slack (a pool queue deeper than max_jobs can hold) are not refused.
 * Each rule is in taskpoold.conf(5), "Limits checked together".
 */
static int
check_limits(struct parser *p)
{
	const struct config *c = p->cfg;
	char where[32] = "the default";
	size_t i;

	if (p->max_jobs_line > 0)
		snprintf(where, sizeof(where), "line %d", p->max_jobs_line);
	/* A request registers all its route's jobs before any can finish. */
	for (i = 0; i < c->nroutes; i++) {
		const struct route *r = &c->routes[i];

		if (r->njobs > c->registry.max_jobs) {
			set_error(p, p->route_jobs_line[i], "route '%s' starts "
				  "%zu jobs a request, more than max_jobs = %u "
				  "(%s) holds", r->path, r->njobs,
				  c->registry.max_jobs, where);
			return -1;
		}
	}
	return 0;
}

static int
finish(struct parser *p)
{
	struct config *c = p->cfg;
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (finish_job(p, &c->jobs[i], &p->raw_jobs[i]))
			return -1;
	for (i = 0; i < c->nroutes; i++)
		if (finish_route(p, &c->routes[i], p->route_jobs[i],
				 p->route_jobs_line[i]))
			return -1;
	if (check_limits(p))
		return -1;
	if (c->server.listen == NULL &&
	    (c->server.listen = strdup("127.0.0.1:8080")) == NULL)
		goto nomem;
	if (c->server.instance == NULL) {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0 ||
		    (host[sizeof(host) - 1] = '\0', !valid_name(host)))
			strcpy(host, "taskpoold");
		if ((c->server.instance = strdup(host)) == NULL)
			goto nomem;
	}
	return 0;
nomem:
	set_error(p, 0, "out of memory");
	return -1;
}

static void
parser_free(struct parser *p)
{
	size_t i, j;

	forget_keys(p);
	if (p->raw_jobs != NULL) {
		for (i = 0; i < p->cfg->njobs; i++) {
			for (j = 0; j < p->raw_jobs[i].nkvs; j++) {
				free(p->raw_jobs[i].kvs[j].key);
				free(p->raw_jobs[i].kvs[j].value);
			}
			free(p->raw_jobs[i].kvs);
		}
	}
	free(p->raw_jobs);
	if (p->route_jobs != NULL)
		for (i = 0; i < p->cfg->nroutes; i++)
			free(p->route_jobs[i]);
	free(p->route_jobs);
	free(p->route_jobs_line);
}

/* ---- the public part ----------------------------------------------------------- */

struct config_box {
	atomic_uint refs;
	struct config cfg;
};

static void
set_defaults(struct config *c)
{
	c->server.threads = 2;
	c->server.max_connections = 0;
	c->server.connection_memory = 16 * 1024;
	c->server.connection_timeout_s = 30;
	c->server.drain_timeout_ns = 10 * NS_PER_S;
	c->pool.workers = 4;
	c->pool.queue = 4096;
	c->registry.max_jobs = 100000;
	c->registry.retain_ns = 600 * NS_PER_S;
	c->log.level = LOG_LEVEL_INFO;
	c->log.jobs = true;
}

static void
config_destroy(struct config *c)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		free(c->jobs[i].name);
		/* A kind makes kind_data: without a kind there is none. */
		if (c->jobs[i].kind != NULL)
			c->jobs[i].kind->free(c->jobs[i].kind_data);
	}
	free(c->jobs);
	for (i = 0; i < c->nroutes; i++) {
		free(c->routes[i].path);
		free(c->routes[i].method);
		free(c->routes[i].jobs);
	}
	free(c->routes);
	free(c->server.listen);
	free(c->server.instance);
	free(c->path);
}

struct config *
config_load(const char *path, struct config_error *err)
{
	struct config_box *box;
	struct parser p;
	int rc;

	memset(err, 0, sizeof(*err));
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.err = err;
	box = calloc(1, sizeof(*box));
	if (box == NULL) {
		set_error(&p, 0, "out of memory");
		return NULL;
	}
	atomic_init(&box->refs, 1);
	p.cfg = &box->cfg;
	set_defaults(p.cfg);
	if ((p.cfg->path = strdup(path)) == NULL) {
		set_error(&p, 0, "out of memory");
		goto fail;
	}
	p.fp = fopen(path, "re");
	if (p.fp == NULL) {
		set_error(&p, 0, "%s", strerror(errno));
		goto fail;
	}
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	if (ferror(p.fp))
		set_error(&p, 0, "read error");
	fclose(p.fp);
	/*
	 * inih reports the first bad line, ours or its own: a line that is
	 * neither a header nor "key = value".  Ours are recorded with text.
	 */
	if (rc > 0 && (!p.failed || rc < err->line)) {
		p.failed = false;
		set_error(&p, rc, "syntax error (expected '[section]', "
			  "'key = value' or a comment)");
	}
	if (p.failed || finish(&p))
		goto fail;
	parser_free(&p);
	return p.cfg;
fail:
	parser_free(&p);
	config_destroy(p.cfg);
	free(box);
	return NULL;
}

static struct config_box *
box_of(struct config *c)
{
	return (struct config_box *)((char *)c -
				     offsetof(struct config_box, cfg));
}

struct config *
config_ref(struct config *c)
{
	atomic_fetch_add_explicit(&box_of(c)->refs, 1, memory_order_relaxed);
	return c;
}

void
config_unref(struct config *c)
{
	struct config_box *box;

	if (c == NULL)
		return;
	box = box_of(c);
	if (atomic_fetch_sub_explicit(&box->refs, 1, memory_order_acq_rel) != 1)
		return;
	config_destroy(c);
	free(box);
}

const struct job_def *
config_find_job(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

const struct route *
config_find_route(const struct config *c, const char *path)
{
	size_t i;

	for (i = 0; i < c->nroutes; i++)
		if (!strcmp(c->routes[i].path, path))
			return &c->routes[i];
	return NULL;
}
