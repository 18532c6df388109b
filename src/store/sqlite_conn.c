/*
 * sqlite_conn.c - what every connection of the SQLite backend shares
 * (sqlite_private.h): opening one with our settings, the reasons for a
 * failure to, errno for a result code, and the failure log at most once
 * a second.  Below both sqlite.c (the writer) and sqlite_read.c (the
 * readers).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "store/sqlite_private.h"

int
sqlite_errno(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? ETIMEDOUT : EIO;
}

void
sqlite_log_failure(struct sqlite_backend *b, sqlite3 *db, const char *what)
{
	int64_t now = clock_now_ns(CLOCK_REALTIME);
	int64_t last = atomic_load(&b->logged_ns);

	if (now - last < 1000000000 ||
	    !atomic_compare_exchange_strong(&b->logged_ns, &last, now))
		return;
	if (db != NULL)
		log_warnx("sqlite: %s: %s: %s", b->path, what,
			  sqlite3_errmsg(db));
	else
		log_warnx("sqlite: %s: %s", b->path, what);
}

void
sqlite_open_error(const struct sqlite_backend *b, sqlite3 *db,
		  const char *what, char *err, size_t errsize)
{
	int rc = sqlite3_errcode(db);

	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		snprintf(err, errsize, "%s: not a taskpoold store, or a"
			 " damaged one: %s", b->path, sqlite3_errmsg(db));
	else
		snprintf(err, errsize, "%s: %s: %s", b->path, what,
			 sqlite3_errmsg(db));
}

sqlite3 *
sqlite_connect(const struct sqlite_backend *b, int flags, char *err,
	       size_t errsize)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(b->path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsize, "%s: cannot open: %s", b->path,
			 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	/*
	 * The file is input like any other: defensive mode and an
	 * untrusted schema keep a crafted file's triggers and views from
	 * calling functions with side effects, or writing the schema.
	 */
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
	/* The first statements to read the file: garbage shows here. */
	rc = sqlite3_exec(db, "PRAGMA synchronous = NORMAL;"
			  " PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite_open_error(b, db, "settings", err, errsize);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}
