/*
 * http_response.c - the pure pieces of kind `http`: what counts as JSON,
 * making a response's text valid UTF-8, and the retry backoff.  See
 * http_kind.h.  No state, no lock: callable from any thread.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kinds/http_kind.h"

bool
http_content_type_is_json(const char *ct)
{
	const char *slash, *end;
	size_t n;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	end = ct + strcspn(ct, "; \t");
	if ((slash = memchr(ct, '/', (size_t)(end - ct))) == NULL ||
	    slash == ct)
		return false;
	n = (size_t)(end - slash - 1);
	if (n == 4 && (size_t)(slash - ct) == 11 &&
	    !strncasecmp(ct, "application/json", 16))
		return true;
	return n > 5 && !strncasecmp(end - 5, "+json", 5);
}

/*
 * Length of the well-formed UTF-8 sequence at s (n bytes left), or 0 if
 * none starts there (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF).
 */
static size_t
utf8_sequence_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

char *
http_text_to_utf8(const char *data, size_t len)
{
	static const char replacement[] = "\xef\xbf\xbd";	/* U+FFFD */
	const unsigned char *s = (const unsigned char *)data;
	char *out, *o;
	size_t i = 0, n;

	/* Each bad byte (1) becomes 3: at most 3 times as long. */
	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(3 * len + 1)) == NULL)
		return NULL;
	o = out;
	while (i < len) {
		n = s[i] == 0 ? 0 : utf8_sequence_len(s + i, len - i);
		if (n == 0) {
			memcpy(o, replacement, 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(o, s + i, n);
		o += n;
		i += n;
	}
	*o = '\0';
	return out;
}

int64_t
http_backoff_ns(unsigned retry, int64_t base_ns, int64_t max_ns,
		uint64_t random)
{
	int64_t ceiling = base_ns;
	unsigned i;

	if (base_ns <= 0 || max_ns <= 0)
		return 0;
	for (i = 1; i < retry && ceiling < max_ns; i++)
		ceiling = ceiling > max_ns / 2 ? max_ns : ceiling * 2;
	if (ceiling > max_ns)
		ceiling = max_ns;
	return (int64_t)(random % ((uint64_t)ceiling + 1));
}
