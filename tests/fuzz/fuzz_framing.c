/*
 * fuzz_framing.c - the framing checks of server_framing.c, on the head of
 * a request: a request line and header lines, cut as libmicrohttpd hands
 * them over (method, version, then each header's name and value, blanks
 * around the value dropped).
 *
 * Properties besides "no crash, no hang": the verdict agrees with what
 * the headers said (a request that goes on has at most one framing, a
 * well-formed length within the limit, a token for a method, and a Host
 * for HTTP/1.1); a refusal is 400 or 413 with a reason.
 */
#include <stdio.h>
#include <strings.h>

#include "fuzz.h"
#include "server_framing.h"

#define MAX_BODY 65536

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Cuts a line at its end ("\r\n" or "\n"); returns the next one or NULL. */
static char *
next_line(char *s)
{
	char *nl = strchr(s, '\n');

	if (nl == NULL)
		return NULL;
	if (nl > s && nl[-1] == '\r')
		nl[-1] = '\0';
	*nl = '\0';
	return nl + 1;
}

/* One "Name: value" line into f; false for a line without a ':'. */
static bool
add_header(struct server_framing *f, char *line)
{
	char *colon = strchr(line, ':'), *v, *end;

	if (colon == NULL || colon == line)
		return false;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (end = v + strlen(v); end > v && (end[-1] == ' ' ||
					      end[-1] == '\t'); end--)
		;
	*end = '\0';
	server_framing_add(f, line, v);
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct server_framing f;
	char *copy = malloc(size + 1), *line, *next, *method, *version;
	const char *why = NULL;
	unsigned status;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	memset(&f, 0, sizeof(f));
	next = next_line(copy);
	/* "METHOD TARGET VERSION"; MHD refuses a line without three parts. */
	method = copy;
	line = strchr(method, ' ');
	version = line != NULL ? strrchr(line + 1, ' ') : NULL;
	if (line == NULL || version == NULL)
		goto out;
	*line = '\0';
	version++;
	for (line = next; line != NULL && *line != '\0'; line = next) {
		next = next_line(line);
		if (!add_header(&f, line))
			goto out;
	}
	status = server_framing_check(&f, method, version, MAX_BODY, &why);
	if (status == 0) {
		FUZZ_ASSERT(server_framing_is_token(method));
		FUZZ_ASSERT(f.content_lengths <= 1 && f.transfer_encodings <= 1);
		FUZZ_ASSERT(!(f.content_lengths && f.transfer_encodings));
		FUZZ_ASSERT(!f.bad_length && !f.other_coding);
		FUZZ_ASSERT(f.content_lengths == 0 ||
			    f.content_length <= MAX_BODY);
		FUZZ_ASSERT(strcmp(version, "HTTP/1.1") || f.has_host);
	} else {
		FUZZ_ASSERT(status == 400 || status == 413);
		FUZZ_ASSERT(why != NULL && *why != '\0');
	}
out:
	free(copy);
	return 0;
}
