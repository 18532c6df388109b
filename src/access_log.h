/*
 * access_log.h - the access log's line: one per request, in a fixed form
 * that a program splits at single spaces (taskpoold(8), LOGGING, has the
 * grammar):
 *
 *   access: CLIENT STATUS BYTES DURATION METHOD TARGET
 *   access: 127.0.0.1:52344 200 27 1.234ms GET /greet/bob?times=3&token=***
 *
 * No field holds a space: the method and the target are escaped, every
 * byte but the few that a URI takes as they are written as %XX (uppercase
 * hex), '*', '%' and '#' included.  So a client's bytes cannot break the
 * line or forge a field, "***" always means a value left out, and '#'
 * only marks a field cut short ("#cut" ends it).  The target is last, so
 * that whatever happens to its end the other fields stay whole.
 *
 * A leaf: no HTTP and no request here.  The server gathers the fields
 * (server_access.c) and says which query values may be shown; this
 * escapes and formats them.
 */
#ifndef TASKPOOLD_ACCESS_LOG_H
#define TASKPOOLD_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ACCESS_LOG_TARGET_MAX 1536	/* bytes of TARGET, a mark included */
#define ACCESS_LOG_METHOD_MAX 32	/* bytes of METHOD, likewise */
#define ACCESS_LOG_CLIENT_MAX 56	/* "[IPv6]:port" and a NUL */
/* Enough for any line access_log_format() writes, and its NUL. */
#define ACCESS_LOG_LINE_MAX (ACCESS_LOG_TARGET_MAX + ACCESS_LOG_METHOD_MAX + \
			     ACCESS_LOG_CLIENT_MAX + 96)

/*
 * A target being written: the path, then the query's arguments, escaped
 * as they are appended.  Once one does not fit it is cut: nothing more is
 * taken, and "#cut" ends it.  Plain data, no pointer: copy it or free it
 * as a block.
 */
struct access_log_target {
	size_t len;
	size_t nargs;
	bool cut;
	char text[ACCESS_LOG_TARGET_MAX + 1];	/* NUL-terminated */
};

/* An empty target.  Cannot fail. */
void access_log_target_init(struct access_log_target *t);

/* Appends len bytes of a (decoded) path, which may hold any byte. */
void access_log_target_path(struct access_log_target *t, const char *path,
			    size_t len);

/*
 * Appends a query argument: "?" for the first, "&" after, then the key;
 * then "=" and the value escaped when shown, or "=***" when not.  A NULL
 * value (an argument without '=', as in "?verbose") adds the key alone.
 */
void access_log_target_arg(struct access_log_target *t, const char *key,
			   size_t key_len, const char *value,
			   size_t value_len, bool shown);

/* What one line says; strings borrowed for the call. */
struct access_log_entry {
	const char *client;	/* access_log_client(), or NULL: "-" */
	unsigned status;
	uint64_t bytes;
	int64_t duration_ns;	/* written in ms, 3 decimals, rounded down */
	const char *method;	/* as received: escaped here */
	const struct access_log_target *target;
};

/*
 * Writes e's line ("access: ..." without a newline) into buf (size bytes,
 * ACCESS_LOG_LINE_MAX always suffice).  Returns its length.
 */
size_t access_log_format(char *buf, size_t size,
			 const struct access_log_entry *e);

/*
 * "127.0.0.1:52344" or "[2001:db8::1]:8080" into buf; returns buf, or
 * NULL for NULL or an address that is neither IPv4 nor IPv6.
 */
const char *access_log_client(char buf[ACCESS_LOG_CLIENT_MAX],
			      const struct sockaddr *sa);

#endif
