/*
 * config.h - the configuration file, parsed into an immutable, refcounted
 * value.
 *
 * A loaded config never changes.  Whoever needs it beyond one call takes a
 * reference (a request, a job instance), so that a reload can swap in a new
 * config while work started under the old one finishes with it.
 */
#ifndef TASKPOOLD_CONFIG_H
#define TASKPOOLD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "run.h"

#define CONFIG_NAME_MAX 64	/* job names, instance name */
#define CONFIG_PATH_MAX 256	/* route paths */
#define CONFIG_ROUTE_JOBS_MAX 64

struct auth_table;
struct job_kind;
struct param_decl;
struct tls_creds;

struct job_def {
	char *name;
	const struct job_kind *kind;
	int line;			/* of the [job] header */
	int64_t timeout_ns;
	unsigned max_concurrent;	/* running at once; 0: no limit */
	bool coalesce;			/* join a running twin (same params) */
	size_t nparams;
	struct param_decl *params;	/* declared parameters, owned */
	/*
	 * The kind's own settings, in a struct that only the kind's file
	 * knows (src/kinds/): made by its parse or check operation, freed by
	 * its free operation when the config goes.
	 */
	void *kind_data;
};

/*
 * What becomes of the jobs that a run's policy did not wait for (`first`,
 * `any`) once the policy is met, and of unfinished jobs at its deadline.
 */
enum route_losers {
	ROUTE_LOSERS_DETACH,		/* they go on, queryable by id */
	ROUTE_LOSERS_CANCEL,		/* they are cancelled */
};

/* What becomes of a route's jobs when its client hangs up while waiting. */
enum route_on_disconnect {
	ROUTE_DISCONNECT_DETACH,	/* they go on, as if not waited for */
	ROUTE_DISCONNECT_CANCEL,	/* they are cancelled */
};

struct route {
	char *path;
	char *method;
	int line;			/* of the [route] header */
	enum run_policy wait;
	int64_t timeout_ns;
	enum route_losers losers;
	enum route_on_disconnect on_disconnect;
	bool auth_open;			/* `auth = open`: no token needed */
	int auth_line;			/* of its `auth` key; 0: default */
	size_t njobs;
	const struct job_def **jobs;	/* borrowed from the same config */
};

struct config {
	char *path;			/* the file it was read from */
	struct {
		char *listen;		/* "127.0.0.1:8080", "[::1]:8080",
					 * "https://127.0.0.1:8443" */
		char *cert, *key;	/* PEM files; NULL: not set */
		char *tls_priorities;	/* GnuTLS; the default if not set */
		/*
		 * Loaded from cert and key by config_load() (so that a bad
		 * pair is a config error); owned; NULL when they are not set.
		 */
		struct tls_creds *tls;
		char *instance;		/* prefix of job ids */
		unsigned threads;	/* HTTP threads */
		unsigned max_connections;	/* 0: from RLIMIT_NOFILE */
		unsigned max_connections_per_ip;	/* 0: no limit */
		int64_t header_timeout_ns;	/* total, 0: none */
		int64_t body_timeout_ns;	/* total, 0: none */
		size_t connection_memory;	/* per-connection MHD pool */
		unsigned connection_timeout_s;	/* idle; whole seconds */
		int64_t drain_timeout_ns;	/* SIGTERM: wait for runs */
		size_t max_body;		/* request bodies, bytes */
		unsigned max_run_jobs;		/* jobs of one POST /jobs */
	} server;
	struct {
		unsigned workers;
		unsigned queue;
	} pool;
	struct {
		unsigned max_jobs;	/* live and finished instances */
		int64_t retain_ns;	/* finished ones kept this long */
		unsigned max_runs;	/* runs (GET /runs/{id}) kept */
	} registry;
	struct {
		enum log_level level;
		bool jobs;		/* one line per finished job */
		bool access_log;	/* one line per request */
	} log;
	/*
	 * Bearer tokens (auth.h): with none, every resource is open, as
	 * before tokens existed.
	 */
	struct {
		char *tokens_path;	/* [auth] tokens; NULL: none */
		struct auth_table *tokens;	/* owned; NULL: none */
		bool metrics_open;	/* GET /metrics without a token */
		bool openapi_open;	/* GET /openapi.json likewise */
	} auth;
	/*
	 * Durable records ([store], store/store.h); read at start only: a
	 * reload that changes them warns and keeps the running store.
	 */
	struct {
		int backend;		/* enum store_backend */
		char *path;		/* sqlite: the database file */
		char *url;		/* postgresql: libpq conninfo/URI */
		int64_t lease_ns;	/* postgresql queue: a claim's lease */
		unsigned max_attempts;	/* postgresql queue: claims of a job */
	} store;
	size_t njobs;
	struct job_def *jobs;
	size_t nroutes;
	struct route *routes;
};

/* Where a config error was found, and why. */
struct config_error {
	char file[256];
	int line;			/* 0: not tied to a line */
	char text[256];
};

/*
 * Reads and validates the file at path.  Returns a new config (refcount
 * 1), or NULL with err filled in; nothing is half-built then.
 */
struct config *config_load(const char *path, struct config_error *err);

/*
 * Like config_load(), but reads the len bytes at text (any bytes, NUL
 * included) as if they were the file named name, which errors and
 * config->path give: for the fuzzer (tests/fuzz), which has no file.
 */
struct config *config_load_buffer(const char *name, const char *text,
				  size_t len, struct config_error *err);

struct config *config_ref(struct config *c);
void config_unref(struct config *c);

/*
 * Lookups; the results are borrowed from c.  NULL when absent.
 * config_find_route() takes a request's path: a route whose path is equal,
 * else the most specific route with `{name}` segments that takes it (at
 * the first segment where two differ, a literal beats a `{name}`).
 */
const struct job_def *config_find_job(const struct config *c,
				      const char *name);
const struct route *config_find_route(const struct config *c,
				      const char *path);
const struct param_decl *config_job_param(const struct job_def *def,
					  const char *name);

/*
 * Value parsers shared with the command line and the API.  Each returns 0,
 * or -1 for a malformed or out-of-range value (what it accepts is in
 * taskpoold.conf(5)).  config_parse_duration() gives 0 to 7 days in ns,
 * never negative, exact for a fraction of any length (what is below 1 ns is
 * dropped), and writes *ns only when it returns 0.
 */
int config_parse_duration(const char *s, int64_t *ns);
int config_parse_size(const char *s, size_t *bytes);
int config_parse_uint(const char *s, unsigned min, unsigned max,
		      unsigned *out);
int config_parse_bool(const char *s, bool *out);

/*
 * Splits "HOST:PORT" ("127.0.0.1:8080", "[::1]:8080", "localhost:80" is
 * refused: numeric addresses only) into a socket address.  A scheme may
 * come first: "http://" (the same as none) or "https://" (TLS: see
 * config_listen_tls()); nothing may follow the port, not even "/".
 * Returns 0 or -1.
 */
struct sockaddr_storage;
bool config_listen_tls(const char *s);	/* begins with "https://" */
int config_parse_listen(const char *s, struct sockaddr_storage *ss,
			unsigned *socklen);

#endif
