/*
 * api_list.h - what the listings share (GET /jobs; GET /runs can use the
 * same): the `limit` and `cursor` parameters, the refusal of unknown
 * ones, and the answer {"<items>": [...], "next": CURSOR or null}.
 *
 * A listing is newest first, in the order of a creation number that each
 * listed thing has (a job instance's inst->seq), and a cursor stands for
 * such a number: the next page lists what is older than it, whatever was
 * added or went away since (seq_index.h keeps that order).  Its text is a
 * letter naming the listing ('j' for jobs) and the number in lowercase
 * hex, as in "j1f4": opaque to clients, refused with 400 when malformed
 * or another listing's.
 *
 * A page looks at api_list_examine(limit) things at most, so that a
 * filter that matches few costs a bounded time under the lister's lock:
 * such a page may be short, even empty, and its `next` goes on where it
 * stopped.  `next` is null once nothing older is left.
 */
#ifndef TASKPOOLD_API_LIST_H
#define TASKPOOLD_API_LIST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define API_LIST_LIMIT_DEFAULT 50
#define API_LIST_LIMIT_MAX 1000
#define API_CURSOR_MAX 18	/* a letter, 16 hex digits, NUL */

/* Things a page looks at, at most: 10 per item asked for, at least 1000. */
size_t api_list_examine(size_t limit);

/* A listing's query, as api_list_read() found it. */
struct api_list_query {
	size_t limit;		/* API_LIST_LIMIT_DEFAULT unless given */
	uint64_t before;	/* the cursor's number; 0: from the newest */
};

/*
 * One of a listing's own parameters (a filter): key, and value with its
 * length (NUL-terminated, but a decoded %00 may put a NUL inside; "" for
 * a key without '=').  Both borrowed during the handler call only.
 * Returns 1 if the key is not one of its own, 0 having taken it, or -1
 * having written into detail (size bytes) why the value is refused.
 */
typedef int (*api_list_param_fn)(void *arg, const char *key,
				 const char *value, size_t value_len,
				 char *detail, size_t size);

/*
 * Reads req's query string: `limit` and `cursor` (of listing `tag`), each
 * at most once, into q; every other parameter to param (NULL: none is
 * known).  known ("limit, cursor, state, job") is named when a parameter
 * is not.  Returns 0, or answers 400 (the first refused value, or every
 * unknown parameter by name) and returns -1.  Only during the handler
 * call, since it reads the query string.
 */
int api_list_read(struct server_request *req, char tag, const char *known,
		  api_list_param_fn param, void *arg,
		  struct api_list_query *q);

/* The text of the cursor for number seq (not 0) of listing tag. */
void api_list_cursor(char buf[API_CURSOR_MAX], char tag, uint64_t seq);

/*
 * Answers 200 with {"<key>": items, "next": the cursor of next, or null
 * for 0}.  items is stolen; NULL answers 500.  Returns SERVER_DONE.
 */
enum server_handled api_list_respond(struct server_request *req,
				     const char *key, json_t *items,
				     char tag, uint64_t next);

/*
 * Copies len bytes of foreign text into buf (size > 4) for a problem's
 * detail: printable ASCII, '?' for any other byte, cut with "..." to fit.
 */
void api_list_printable(char *buf, size_t size, const char *s, size_t len);

#endif
