/*
 * config_value.c - the values of the config file, each on its own: see
 * config.h (the parsers shared with the command line and the API) and
 * config_private.h (the checks of names and text).  What each accepts is
 * in taskpoold.conf(5).  Nothing here knows a section or a line.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "config_private.h"

#define DURATION_MAX (7 * 24 * 3600 * NS_PER_S)	/* keys may allow less */

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- text ---------------------------------------------------------------- */

/*
 * Config text ends up in JSON answers (a job's result) and in log lines (the
 * reasons of errors quote values), so it must be valid UTF-8 without control
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
const char *
config_text_problem(const char *s)
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
void
config_text_sanitize(char *s)
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

/* ---- value parsers ------------------------------------------------------ */

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

bool
config_listen_tls(const char *s)
{
	return strncasecmp(s, "https://", 8) == 0;
}

int
config_parse_listen(const char *s, struct sockaddr_storage *ss,
		    unsigned *socklen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	unsigned port;
	size_t hlen;

	/* Schemes are case-insensitive (RFC 3986, 3.1). */
	if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	else if (config_listen_tls(s))
		s += 8;
	colon = strrchr(s, ':');
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

/* ---- names --------------------------------------------------------------- */

/* Job and instance names: [A-Za-z0-9_.-], 1 to CONFIG_NAME_MAX chars. */
bool
config_name_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}
