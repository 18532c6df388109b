/*
 * config_reader.c - config_load(): the file, read line by line and handed
 * to the sections.  See config.h, config_private.h and taskpoold.conf(5).
 *
 * inih does the INI syntax; the sections give it meaning.  inih does not
 * tell its handler the line number, and never calls it for a section
 * without keys, so the file is fed to inih through our own line reader:
 * the reader counts lines (the handler runs right after its line is read,
 * so the count is the handler's line), sees every section header, and
 * refuses lines longer than inih's buffer instead of letting inih split
 * them.  It also refuses what inih would quietly take in a way the writer
 * did not mean: a NUL byte (fgets() would end the line there), text after
 * a header's ']' (inih drops it), and an indented line after a key (inih
 * appends it to that key's value as a continuation line).
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_private.h"

/* At each header: a key may be set once in each section. */
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

/* Called by the reader for each "[...]" line.  Returns 0 or -1. */
static int
begin_section(struct parser *p, const char *header)
{
	int rc;

	forget_keys(p);
	if ((rc = config_sections_begin(p, header)) <= 0 ||
	    (rc = config_auth_begin(p, header)) <= 0 ||
	    (rc = config_store_begin(p, header)) <= 0 ||
	    (rc = config_jobs_begin(p, header)) <= 0)
		return rc;
	parser_error(p, p->line, "unknown section [%s] (expected [server], "
		     "[pool], [registry], [log], [auth], [store], [job NAME] "
		     "or [route PATH])", header);
	return -1;
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

/*
 * What every key line must be, whatever its section: text that the reasons
 * can quote, in a section, and the first line of the section with its key.
 * Records the key.  Returns 0 or -1.
 */
static int
check_key(struct parser *p, const char *key, const char *value)
{
	const char *why;
	size_t i;

	/* First, since the reasons below quote the key or the value. */
	if ((why = config_text_problem(key)) != NULL) {
		parser_error(p, p->line, "key name %s", why);
		return -1;
	}
	if ((why = config_text_problem(value)) != NULL) {
		parser_error(p, p->line, "%s %s", key, why);
		return -1;
	}
	if (p->section == SECTION_NONE) {
		parser_error(p, p->line, "key '%s' outside any section", key);
		return -1;
	}
	for (i = 0; i < p->nkeys; i++) {
		if (!strcmp(p->keys[i], key)) {
			parser_error(p, p->line, "key '%s' is set twice in "
				     "this section", key);
			return -1;
		}
	}
	if (RESERVE(p->keys, p->nkeys) ||
	    (p->keys[p->nkeys] = strdup(key)) == NULL) {
		parser_error(p, p->line, "out of memory");
		return -1;
	}
	p->nkeys++;
	return 0;
}

/* inih's handler.  Returns 1 to go on, 0 on error (inih's convention). */
static int
on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parser *p = user;
	int rc;

	(void)section;	/* the reader already told us which it is */
	if (p->failed || check_key(p, key, value))
		return 0;
	if (p->section == SECTION_JOB || p->section == SECTION_ROUTE)
		rc = config_jobs_key(p, key, value);
	else if (p->section == SECTION_AUTH)
		rc = config_auth_key(p, key, value);
	else if (p->section == SECTION_STORE)
		rc = config_store_key(p, key, value);
	else
		rc = config_sections_key(p, key, value);
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
		parser_error(p, p->line, "section header without ']'");
		return -1;
	}
	/*
	 * inih drops whatever follows the ']'.  We take only what may follow
	 * a value: blanks, then perhaps a comment, a ';' after a blank.
	 */
	for (after = end + 1; isspace((unsigned char)*after); after++)
		;
	if (*after != '\0' && (*after != ';' || after == end + 1)) {
		parser_error(p, p->line, "text after ']' in section header (a "
			     "comment there must start with a blank and ';')");
		return -1;
	}
	for (s++; *s == ' ' || *s == '\t'; s++)
		;
	n = (size_t)(end - s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= sizeof(header)) {
		parser_error(p, p->line, "section header too long");
		return -1;
	}
	memcpy(header, s, n);
	header[n] = '\0';
	if ((why = config_text_problem(header)) != NULL) {
		parser_error(p, p->line, "section header %s", why);
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
		parser_error(p, p->line, "line too long (at most %d "
			     "characters)", size - 2);
		return NULL;
	}
	if (nul) {
		parser_error(p, p->line, "line has a NUL byte");
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
		parser_error(p, p->line, "indented line continues the value of "
			     "'%s', and continuation lines are not supported "
			     "(unindent it)", key);
		return NULL;
	}
	if (*s == '[' && read_header(p, s))
		return NULL;
	return buf;
}

/*
 * Feeds the file to inih through the reader, or the len bytes at text
 * instead when text is not NULL.  The outcome is in p.
 */
static void
read_file(struct parser *p, const char *text, size_t len)
{
	int rc;

	/* Read only: fmemopen() does not write through a "r" stream. */
	if (text != NULL)
		p->fp = fmemopen((void *)text, len, "r");
	else
		p->fp = fopen(p->path, "re");
	if (p->fp == NULL) {
		parser_error(p, 0, "%s", strerror(errno));
		return;
	}
	rc = ini_parse_stream(read_line, p, on_key, p);
	if (ferror(p->fp))
		parser_error(p, 0, "read error");
	fclose(p->fp);
	/*
	 * inih reports the first bad line, ours or its own: a line that is
	 * neither a header nor "key = value".  Ours are recorded with text.
	 */
	if (rc > 0 && (!p->failed || rc < p->err->line)) {
		p->failed = false;
		parser_error(p, rc, "syntax error (expected '[section]', "
			     "'key = value' or a comment)");
	}
}

/* config_load() and config_load_buffer(): text NULL reads path. */
static struct config *
load(const char *path, const char *text, size_t len,
     struct config_error *err)
{
	struct parser p;

	memset(err, 0, sizeof(*err));
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.err = err;
	if ((p.cfg = config_new()) == NULL) {
		parser_error(&p, 0, "out of memory");
		return NULL;
	}
	config_sections_defaults(p.cfg);
	config_store_defaults(p.cfg);
	if ((p.cfg->path = strdup(path)) == NULL)
		parser_error(&p, 0, "out of memory");
	else
		read_file(&p, text, len);
	if (!p.failed && config_jobs_finish(&p) == 0 &&
	    config_auth_finish(&p) == 0 && config_store_finish(&p) == 0)
		config_sections_finish(&p);
	forget_keys(&p);
	config_jobs_forget(&p);
	if (p.failed) {
		config_unref(p.cfg);
		return NULL;
	}
	return p.cfg;
}

struct config *
config_load(const char *path, struct config_error *err)
{
	return load(path, NULL, 0, err);
}

struct config *
config_load_buffer(const char *name, const char *text, size_t len,
		   struct config_error *err)
{
	return load(name, text, len, err);
}
