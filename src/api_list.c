/*
 * api_list.c - see api_list.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api_json.h"
#include "api_list.h"

#define EXAMINE_PER_ITEM 10
#define EXAMINE_MIN 1000
#define NAME_SHOWN 40		/* bytes of a parameter's name in a detail */

static const char hex_digits[] = "0123456789abcdef";

size_t
api_list_examine(size_t limit)
{
	return limit * EXAMINE_PER_ITEM > EXAMINE_MIN ?
	       limit * EXAMINE_PER_ITEM : EXAMINE_MIN;
}

void
api_list_cursor(char buf[API_CURSOR_MAX], char tag, uint64_t seq)
{
	char digits[16];
	size_t n = 0;

	do {
		digits[n++] = hex_digits[seq & 15];
		seq >>= 4;
	} while (seq != 0);
	*buf++ = tag;
	while (n > 0)
		*buf++ = digits[--n];
	*buf = '\0';
}

/*
 * The number of a cursor of listing tag, or 0 if s (len bytes) is not
 * exactly what api_list_cursor() writes: the letter, then 1 to 16
 * lowercase hex digits without a leading 0.
 */
static uint64_t
parse_cursor(const char *s, size_t len, char tag)
{
	uint64_t seq = 0;
	const char *d;
	size_t i;

	if (len < 2 || len > API_CURSOR_MAX - 1 || s[0] != tag || s[1] == '0')
		return 0;
	for (i = 1; i < len; i++) {
		d = s[i] != '\0' ? strchr(hex_digits, s[i]) : NULL;
		if (d == NULL)
			return 0;
		seq = seq << 4 | (uint64_t)(d - hex_digits);
	}
	return seq;
}

/* A limit: decimal digits only, 1 to API_LIST_LIMIT_MAX; 0 if not one. */
static size_t
parse_limit(const char *s, size_t len)
{
	size_t v = 0, i;

	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (size_t)(s[i] - '0');
		if (v > API_LIST_LIMIT_MAX)
			return 0;
	}
	return v;
}

void
api_list_printable(char *buf, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 4, i;

	for (i = 0; i < n; i++)
		buf[i] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
	if (n < len)
		memcpy(buf + n, "...", 3), n += 3;
	buf[n] = '\0';
}

/* The walk over the query string, and what it found. */
struct list_read {
	char tag;
	api_list_param_fn param;
	void *arg;
	struct api_list_query *q;
	bool have_limit, have_cursor;
	bool refused;		/* detail says why */
	char detail[256];
	char unknown[160];	/* "'a', 'b'": the unknown names that fit */
	size_t nunknown, unknown_left_out;
};

static void
add_unknown(struct list_read *rd, const char *key, size_t key_len)
{
	char name[NAME_SHOWN + 4];
	size_t used = strlen(rd->unknown);

	api_list_printable(name, sizeof(name), key, key_len);
	if (used + strlen(name) + 5 > sizeof(rd->unknown)) {
		rd->unknown_left_out++;
		return;
	}
	snprintf(rd->unknown + used, sizeof(rd->unknown) - used, "%s'%s'",
		 rd->nunknown > 0 ? ", " : "", name);
	rd->nunknown++;
}

/* limit or cursor: 0 taken, -1 refused (rd->detail says why). */
static int
read_paging(struct list_read *rd, const char *key, bool *seen,
	    const char *value, size_t len)
{
	bool limit = !strcmp(key, "limit");

	if (*seen) {
		snprintf(rd->detail, sizeof(rd->detail), "parameter '%s' is "
			 "given more than once", key);
		return -1;
	}
	*seen = true;
	if (limit && (rd->q->limit = parse_limit(value, len)) == 0) {
		snprintf(rd->detail, sizeof(rd->detail), "parameter 'limit' "
			 "must be a whole number from 1 to %d",
			 API_LIST_LIMIT_MAX);
		return -1;
	}
	if (!limit && (rd->q->before = parse_cursor(value, len,
						     rd->tag)) == 0) {
		snprintf(rd->detail, sizeof(rd->detail), "parameter 'cursor' "
			 "is not a cursor of this listing (pass `next` as "
			 "it is)");
		return -1;
	}
	return 0;
}

/* server_query_fn: one argument; stops at the first refused value. */
static int
read_argument(void *arg, const char *key, size_t key_len, const char *value,
	      size_t value_len)
{
	struct list_read *rd = arg;
	int rc = 1;

	if (value == NULL)	/* "?limit": no value */
		value = "", value_len = 0;
	if (strlen(key) != key_len)
		rc = 1;		/* a NUL inside: none of ours */
	else if (!strcmp(key, "limit"))
		rc = read_paging(rd, key, &rd->have_limit, value, value_len);
	else if (!strcmp(key, "cursor"))
		rc = read_paging(rd, key, &rd->have_cursor, value, value_len);
	else if (rd->param != NULL)
		rc = rd->param(rd->arg, key, value, value_len, rd->detail,
			       sizeof(rd->detail));
	if (rc > 0)
		add_unknown(rd, key, key_len);
	rd->refused = rc < 0;
	return rd->refused;
}

/*
 * server_reveal_fn: whether key is one of the listing's own parameters,
 * named in known ("limit, cursor, state"), whose values the access log
 * shows; any other may be a misplaced secret.
 */
static bool
known_name(const void *known, const char *key, size_t key_len)
{
	const char *p = known;
	size_t n;

	for (; *p != '\0'; p += n, p += strspn(p, ", ")) {
		n = strcspn(p, ", ");
		if (n == key_len && !memcmp(p, key, n))
			return true;
	}
	return false;
}

int
api_list_read(struct server_request *req, char tag, const char *known,
	      api_list_param_fn param, void *arg, struct api_list_query *q)
{
	struct list_read rd;
	char more[48] = "";

	server_request_log_query(req, known_name, known);
	memset(&rd, 0, sizeof(rd));
	rd.tag = tag;
	rd.param = param;
	rd.arg = arg;
	rd.q = q;
	q->limit = API_LIST_LIMIT_DEFAULT;
	q->before = 0;
	server_request_query(req, read_argument, &rd);
	if (!rd.refused && rd.nunknown + rd.unknown_left_out == 0)
		return 0;
	if (!rd.refused) {
		if (rd.unknown_left_out > 0)
			snprintf(more, sizeof(more), " and %zu more",
				 rd.unknown_left_out);
		snprintf(rd.detail, sizeof(rd.detail), "unknown parameter%s "
			 "%s%s; known: %s",
			 rd.nunknown + rd.unknown_left_out > 1 ? "s" : "",
			 rd.unknown, more, known);
	}
	api_respond_problem(req, 400, rd.detail);
	return -1;
}

enum server_handled
api_list_respond(struct server_request *req, const char *key, json_t *items,
		 char tag, uint64_t next)
{
	char cursor[API_CURSOR_MAX];
	json_t *answer;

	if (next != 0)
		api_list_cursor(cursor, tag, next);
	answer = api_object_set(json_object(), key, items);
	answer = api_object_set(answer, "next", next != 0 ?
				json_string(cursor) : json_null());
	return api_respond_json(req, 200, answer);
}
