/*
 * exec_output.c - what a child wrote, made fit to store: a result is
 * valid UTF-8 text (future.h), whatever bytes the program wrote.
 *
 * Invalid bytes become U+FFFD, the Unicode replacement character, rather
 * than '?': a reader can tell a substitution from a question mark.  Each
 * byte that does not start a well-formed sequence is replaced on its own,
 * so the stored text is at most three times what was read (max_output
 * bounds what is read).  NUL becomes U+FFFD too: results are C strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "job.h"
#include "kinds/exec.h"
#include "kinds/exec_run.h"

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * form, no surrogate, nothing past U+10FFFF), or 0 if none starts there.
 * *partial is set when s holds the start of one that len cuts short.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t len, bool *partial)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xBF;

	*partial = false;
	if (s[0] > 0 && s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		n = 3;
		lo = s[0] == 0xE0 ? 0xA0 : 0x80;
		hi = s[0] == 0xED ? 0x9F : 0xBF;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		n = 4;
		lo = s[0] == 0xF0 ? 0x90 : 0x80;
		hi = s[0] == 0xF4 ? 0x8F : 0xBF;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if (i == len) {
			*partial = true;
			return 0;
		}
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
			return 0;
	}
	return n;
}

char *
exec_text_utf8(const char *text, size_t len, bool cut)
{
	const unsigned char *s = (const unsigned char *)text;
	char *out = malloc(len * 3 + 1), *o = out;
	size_t i = 0, n;
	bool partial;

	if (out == NULL)
		return NULL;
	while (i < len) {
		n = utf8_seq_len(s + i, len - i, &partial);
		if (n > 0) {
			memcpy(o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		if (partial && cut)
			break;	/* the limit split a character */
		memcpy(o, "\xEF\xBF\xBD", 3);
		o += 3;
		i++;
	}
	*o = '\0';
	o = realloc(out, (size_t)(o - out) + 1);
	return o != NULL ? o : out;
}

/* "SIGKILL" (or "signal 70" for one without a name). */
static void
signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev != NULL)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
}

/* How the child ended: "exit status 3", "killed by SIGKILL". */
static void
describe_end(const struct exec_run *r, char *buf, size_t len)
{
	char name[32];

	if (r->code == CLD_EXITED) {
		snprintf(buf, len, "exit status %d", r->status);
		return;
	}
	signal_name(r->status, name, sizeof(name));
	snprintf(buf, len, "killed by %s%s", name,
		 r->code == CLD_DUMPED ? " (core dumped)" : "");
}

/* what + ": " + the tail of stderr (valid UTF-8, trailing space cut). */
static char *
with_stderr(const struct exec_run *r, const char *what)
{
	char *tail = exec_text_utf8(r->errtail, r->errlen, false), *msg;
	size_t n;

	if (tail == NULL)
		return NULL;
	n = strlen(tail);
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' ||
			 tail[n - 1] == ' ' || tail[n - 1] == '\t'))
		tail[--n] = '\0';
	if (asprintf(&msg, n > 0 ? "%s: %s" : "%s", what, tail) < 0)
		msg = NULL;
	free(tail);
	return msg;
}

/* stdout as the job's output says: text, or a JSON document. */
static void
complete_output(struct exec_run *r)
{
	struct future *f = r->inst->future;
	unsigned flags = r->truncated ? FUTURE_RESULT_TRUNCATED : 0;
	size_t len = r->outlen;
	json_error_t jerr;
	json_t *doc;
	char *msg;

	if (r->ed->output == EXEC_OUTPUT_TEXT) {
		if (!r->truncated && len > 0 && r->out[len - 1] == '\n')
			len--;
		future_complete_as(f, FUTURE_SUCCEEDED,
				   exec_text_utf8(r->out ? r->out : "", len,
						  r->truncated), flags, NULL);
		return;
	}
	if (r->truncated) {
		if (asprintf(&msg, "output is longer than max_output (%zu "
			     "bytes): a cut JSON document is not JSON",
			     r->ed->max_output) < 0)
			msg = NULL;
		future_complete(f, FUTURE_FAILED, NULL, msg);
		return;
	}
	doc = json_loadb(r->out ? r->out : "", len, JSON_DECODE_ANY, &jerr);
	if (doc == NULL) {
		char *text = exec_text_utf8(jerr.text, strlen(jerr.text),
					    false);

		if (asprintf(&msg, "output is not JSON: %s (line %d)",
			     text ? text : "", jerr.line) < 0)
			msg = NULL;
		free(text);
		future_complete(f, FUTURE_FAILED, NULL, msg);
		return;
	}
	future_complete_as(f, FUTURE_SUCCEEDED,
			   json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY),
			   FUTURE_RESULT_JSON, NULL);
	json_decref(doc);
}

void
exec_run_complete(struct exec_run *r, enum future_state ending)
{
	struct job_instance *inst = r->inst;
	char how[64], what[128];

	describe_end(r, how, sizeof(how));
	if (job_cancel_requested(inst) || ending == FUTURE_CANCELLED)
		future_complete(inst->future, FUTURE_CANCELLED, NULL, NULL);
	else if (ending == FUTURE_TIMED_OUT) {
		snprintf(what, sizeof(what), "timed out after %g s (%s)",
			 (double)inst->def->timeout_ns / 1e9, how);
		future_complete(inst->future, FUTURE_TIMED_OUT, NULL,
				with_stderr(r, what));
	} else if (ending == FUTURE_FAILED)
		future_complete(inst->future, FUTURE_FAILED, NULL,
				strdup("could not arm its timeout or watch "
				       "it (out of memory)"));
	else if (r->code == CLD_EXITED && r->status == 0)
		complete_output(r);
	else
		future_complete(inst->future, FUTURE_FAILED, NULL,
				with_stderr(r, how));
}
