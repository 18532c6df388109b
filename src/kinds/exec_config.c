/*
 * exec_config.c - the [job] keys of kind exec: command, output,
 * max_output, kill_grace, directory, user and env.NAME (taskpoold.conf(5)).
 *
 * parse splits the command at once, so that bad quoting is reported at
 * its own line; check, which runs once the section's param.X keys are
 * read, makes each argument a template against them.  Everything a run
 * needs is settled here, at load: the program is an absolute, executable
 * path without a hole, and the user is resolved to ids, so that a child
 * never does more than switch to them.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kinds/exec.h"
#include "kinds/template.h"

void
exec_words_free(char **words)
{
	size_t i;

	if (words == NULL)
		return;
	for (i = 0; words[i] != NULL; i++)
		free(words[i]);
	free(words);
}

/*
 * Copies one word starting at *s into out (room for strlen(*s) + 1) and
 * moves *s past it.  0, or -1 for a quote without its end.
 */
static int
split_one(const char **s, char *out)
{
	const char *p = *s;
	bool quoted = false;

	for (; *p != '\0'; p++) {
		if (!quoted && (*p == ' ' || *p == '\t'))
			break;
		if (*p == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*out++ = *p;
	}
	*out = '\0';
	*s = p;
	return quoted ? -1 : 0;
}

int
exec_words_split(const char *command, char ***words, char *why,
		 size_t whylen)
{
	char **w = calloc(EXEC_ARGS_MAX + 1, sizeof(*w));
	size_t n = 0;

	if (w == NULL)
		goto nomem;
	for (;;) {
		while (*command == ' ' || *command == '\t')
			command++;
		if (*command == '\0')
			break;
		if (n == EXEC_ARGS_MAX) {
			snprintf(why, whylen, "command has more than %d words",
				 EXEC_ARGS_MAX);
			goto fail;
		}
		if ((w[n] = malloc(strlen(command) + 1)) == NULL)
			goto nomem;
		if (split_one(&command, w[n++]) != 0) {
			snprintf(why, whylen, "command has a \" without its "
				 "closing \"");
			goto fail;
		}
	}
	if (n == 0) {
		snprintf(why, whylen, "command is empty");
		goto fail;
	}
	*words = w;
	return (int)n;
nomem:
	snprintf(why, whylen, "out of memory");
fail:
	exec_words_free(w);
	return -1;
}

static struct exec_def *
exec_def_of(struct job_def *def, char *why, size_t whylen)
{
	struct exec_def *ed = def->kind_data;

	if (ed != NULL)
		return ed;
	if ((ed = calloc(1, sizeof(*ed))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	ed->max_output = EXEC_MAX_OUTPUT_DEFAULT;
	ed->kill_grace_ns = EXEC_KILL_GRACE_DEFAULT_NS;
	def->kind_data = ed;
	return ed;
}

/* The program: absolute, and executable by the daemon now. */
static int
check_program(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (path[0] != '/') {
		snprintf(why, whylen, "command '%s' is not an absolute path",
			 path);
		return -1;
	}
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    access(path, X_OK) != 0) {
		snprintf(why, whylen, "command '%s' is not an executable "
			 "file", path);
		return -1;
	}
	return 0;
}

static int
parse_command(struct exec_def *ed, const char *value, char *why,
	      size_t whylen)
{
	char **words;
	int n = exec_words_split(value, &words, why, whylen);

	if (n < 0)
		return -1;
	if (check_program(words[0], why, whylen) != 0) {
		exec_words_free(words);
		return -1;
	}
	exec_words_free(ed->words);
	ed->words = words;
	ed->nwords = (size_t)n;
	return 0;
}

/*
 * `user`: only root can switch, so anyone else may name only itself
 * (which needs no switch): a config that cannot be honoured is refused at
 * load rather than failing every run.  Ids are resolved here, not in the
 * child, which may call only async-signal-safe functions.
 */
static int
parse_user(struct exec_def *ed, const char *value, char *why, size_t whylen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int ngroups = 64;
	gid_t *groups = NULL;

	if (getpwnam_r(value, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		snprintf(why, whylen, "unknown user '%s'", value);
		return -1;
	}
	if (geteuid() != 0 && pw.pw_uid != geteuid()) {
		snprintf(why, whylen, "user '%s' needs the daemon to run as "
			 "root", value);
		return -1;
	}
	for (;;) {
		gid_t *g = realloc(groups, (size_t)ngroups * sizeof(*g));
		int want = ngroups;

		if (g == NULL)
			goto nomem;
		groups = g;
		if (getgrouplist(value, pw.pw_gid, groups, &want) >= 0) {
			ngroups = want;
			break;
		}
		if (want <= ngroups)
			want = ngroups * 2;
		ngroups = want;
	}
	free(ed->user);
	free(ed->groups);
	if ((ed->user = strdup(value)) == NULL) {
		ed->groups = NULL;
		goto nomem;	/* which frees groups, once */
	}
	ed->uid = pw.pw_uid;
	ed->gid = pw.pw_gid;
	ed->groups = groups;
	ed->ngroups = ngroups;
	return 0;
nomem:
	free(groups);
	snprintf(why, whylen, "out of memory");
	return -1;
}

static int
parse_directory(struct exec_def *ed, const char *value, char *why,
		size_t whylen)
{
	struct stat st;
	char *copy;

	if (value[0] != '/' || stat(value, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "directory '%s' is not an absolute path "
			 "to a directory", value);
		return -1;
	}
	if ((copy = strdup(value)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	free(ed->directory);
	ed->directory = copy;
	return 0;
}

/* An environment variable's name: [A-Za-z_][A-Za-z0-9_]*. */
static bool
env_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return false;
	return i > 0;
}

static int
parse_env(struct exec_def *ed, const char *name, const char *value,
	  char *why, size_t whylen)
{
	struct exec_env_var *env, *v;
	size_t i;

	if (!env_name_ok(name)) {
		snprintf(why, whylen, "bad environment variable name '%s' "
			 "(use letters, digits and _)", name);
		return -1;
	}
	for (i = 0; i < ed->nenv; i++)
		if (!strcmp(ed->env[i].name, name)) {
			snprintf(why, whylen, "env.%s is set twice", name);
			return -1;
		}
	env = realloc(ed->env, (ed->nenv + 1) * sizeof(*env));
	if (env == NULL)
		goto nomem;
	ed->env = env;
	v = &env[ed->nenv];
	memset(v, 0, sizeof(*v));
	if ((v->name = strdup(name)) == NULL ||
	    (v->text = strdup(value)) == NULL) {
		free(v->name);
		goto nomem;
	}
	ed->nenv++;
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

static int
parse_output(struct exec_def *ed, const char *value, char *why,
	     size_t whylen)
{
	if (!strcmp(value, "text"))
		ed->output = EXEC_OUTPUT_TEXT;
	else if (!strcmp(value, "json"))
		ed->output = EXEC_OUTPUT_JSON;
	else {
		snprintf(why, whylen, "bad value '%s' for output (expected "
			 "text or json)", value);
		return -1;
	}
	return 0;
}

int
exec_parse(struct job_def *def, const char *key, const char *value,
	   char *why, size_t whylen)
{
	struct exec_def *ed;

	if (strcmp(key, "command") && strcmp(key, "output") &&
	    strcmp(key, "max_output") && strcmp(key, "kill_grace") &&
	    strcmp(key, "directory") && strcmp(key, "user") &&
	    strncmp(key, "env.", 4))
		return 1;
	if ((ed = exec_def_of(def, why, whylen)) == NULL)
		return -1;
	if (!strcmp(key, "command"))
		return parse_command(ed, value, why, whylen);
	if (!strcmp(key, "output"))
		return parse_output(ed, value, why, whylen);
	if (!strcmp(key, "max_output")) {
		if (config_parse_size(value, &ed->max_output) == 0 &&
		    ed->max_output > 0 && ed->max_output <= ((size_t)1 << 30))
			return 0;
		snprintf(why, whylen, "bad value '%s' for max_output "
			 "(expected a size from 1 to 1G, e.g. 64K or 1M)",
			 value);
		return -1;
	}
	if (!strcmp(key, "kill_grace")) {
		if (config_parse_duration(value, &ed->kill_grace_ns) == 0 &&
		    ed->kill_grace_ns <= INT64_C(60000000000))
			return 0;
		snprintf(why, whylen, "bad value '%s' for kill_grace "
			 "(expected a duration up to 1m, e.g. 5s)", value);
		return -1;
	}
	if (!strcmp(key, "directory"))
		return parse_directory(ed, value, why, whylen);
	if (!strcmp(key, "user"))
		return parse_user(ed, value, why, whylen);
	return parse_env(ed, key + 4, value, why, whylen);
}

int
exec_check(struct job_def *def, char *why, size_t whylen)
{
	struct exec_def *ed = exec_def_of(def, why, whylen);
	struct template *t;
	size_t i;

	if (ed == NULL)
		return -1;
	if (ed->words == NULL) {
		snprintf(why, whylen, "no command (an absolute path and its "
			 "arguments)");
		return -1;
	}
	if ((t = template_parse(ed->words[0], def, why, whylen)) == NULL)
		return -1;
	if (template_has_holes(t)) {
		template_free(t);
		snprintf(why, whylen, "the program '%s' may not hold a "
			 "parameter (only its arguments may)", ed->words[0]);
		return -1;
	}
	template_free(t);
	if ((ed->args = calloc(ed->nwords, sizeof(*ed->args))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (i = 1; i < ed->nwords; i++)
		if ((ed->args[i] = template_parse(ed->words[i], def, why,
						  whylen)) == NULL)
			return -1;
	for (i = 0; i < ed->nenv; i++)
		if ((ed->env[i].value = template_parse(ed->env[i].text, def,
						       why, whylen)) == NULL)
			return -1;
	return 0;
}

void
exec_free(void *kind_data)
{
	struct exec_def *ed = kind_data;
	size_t i;

	if (ed == NULL)
		return;
	for (i = 0; ed->args != NULL && i < ed->nwords; i++)
		template_free(ed->args[i]);
	free(ed->args);
	exec_words_free(ed->words);
	for (i = 0; i < ed->nenv; i++) {
		free(ed->env[i].name);
		free(ed->env[i].text);
		template_free(ed->env[i].value);
	}
	free(ed->env);
	free(ed->directory);
	free(ed->user);
	free(ed->groups);
	free(ed);
}

/* "NAME=" + the rendered value, new. */
static char *
render_env(const struct exec_env_var *v, const json_t *params)
{
	char *value = template_render(v->value, params, TEMPLATE_RAW, NULL);
	char *s;

	if (value == NULL)
		return NULL;
	if (asprintf(&s, "%s=%s", v->name, value) < 0)
		s = NULL;
	free(value);
	return s;
}

int
exec_render(const struct exec_def *ed, const json_t *params, char ***argv,
	    char ***envp)
{
	char **a = calloc(ed->nwords + 1, sizeof(*a));
	char **e = calloc(ed->nenv + 1, sizeof(*e));
	size_t i;

	if (a == NULL || e == NULL || (a[0] = strdup(ed->words[0])) == NULL)
		goto fail;
	for (i = 1; i < ed->nwords; i++)
		if ((a[i] = template_render(ed->args[i], params, TEMPLATE_RAW,
					    NULL)) == NULL)
			goto fail;
	for (i = 0; i < ed->nenv; i++)
		if ((e[i] = render_env(&ed->env[i], params)) == NULL)
			goto fail;
	*argv = a;
	*envp = e;
	return 0;
fail:
	if (errno != EINVAL)
		errno = ENOMEM;
	i = (size_t)errno;
	exec_words_free(a);
	exec_words_free(e);
	errno = (int)i;
	return -1;
}
