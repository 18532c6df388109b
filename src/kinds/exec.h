/*
 * exec.h - what kind `exec` keeps of its [job] sections, and the parts of
 * the kind that its files share (exec_config.c reads the section,
 * exec_spawn.c starts a child, exec_output.c turns what it wrote into a
 * result, exec.c runs and reaps).  Nothing outside those files and their
 * tests looks into it.
 */
#ifndef TASKPOOLD_KINDS_EXEC_H
#define TASKPOOLD_KINDS_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct job_def;
struct template;

#define EXEC_MAX_OUTPUT_DEFAULT ((size_t)1 << 20)	/* 1M */
#define EXEC_KILL_GRACE_DEFAULT_NS INT64_C(5000000000)	/* 5 s */
#define EXEC_STDERR_TAIL 4096		/* bytes of stderr in the error */
#define EXEC_ARGS_MAX 256		/* words of a command */

enum exec_output {
	EXEC_OUTPUT_TEXT,
	EXEC_OUTPUT_JSON,
};

/* One `env.NAME = value` key. */
struct exec_env_var {
	char *name;
	char *text;			/* the value as written */
	struct template *value;		/* made by check */
};

/* A job definition's kind_data when its kind is exec. */
struct exec_def {
	/* The command's words, unquoted, as parse split them: owned. */
	size_t nwords;
	char **words;
	/* Each word but the first as a template, made by check. */
	struct template **args;
	enum exec_output output;
	size_t max_output;		/* bytes of stdout kept */
	int64_t kill_grace_ns;		/* SIGTERM to SIGKILL */
	char *directory;		/* NULL: the daemon's */
	/* `user`: the child switches to these (root only). */
	char *user;			/* NULL: no switch */
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t *groups;
	size_t nenv;
	struct exec_env_var *env;
};

/* The kind's parse, check and free operations (kind.h), in exec_config.c. */
int exec_parse(struct job_def *def, const char *key, const char *value,
	       char *why, size_t whylen);
int exec_check(struct job_def *def, char *why, size_t whylen);
void exec_free(void *kind_data);

/*
 * Splits a command into words: spaces and tabs separate them, double
 * quotes keep spaces in one word (and may hold \" and \\; any other
 * backslash is itself), and an empty "" is an empty word.  Returns the
 * number of words and sets *words to a new NULL-terminated array of new
 * strings (exec_words_free()), or -1 with the reason written to why
 * (unbalanced quote, no words, too many, out of memory).
 */
int exec_words_split(const char *command, char ***words, char *why,
		     size_t whylen);
void exec_words_free(char **words);

/*
 * The argv and envp of one run of def with params (an instance's
 * validated values): each config word stays one argument whatever its
 * values hold.  Returns 0 and new NULL-terminated arrays (free each with
 * exec_words_free()), or -1 with errno (ENOMEM, EINVAL).
 */
int exec_render(const struct exec_def *ed, const json_t *params,
		char ***argv, char ***envp);

/*
 * Starts argv with envp as ed says (directory, user), stdin from
 * /dev/null, stdout and stderr to pipes, in a group of its own, signals
 * reset, no other descriptor.  Returns the child's pid, and its pidfd and
 * the parent's (non-blocking, close-on-exec) ends of the pipes in fds[0]
 * (pidfd), fds[1] (stdout), fds[2] (stderr); or -1 with errno and nothing
 * left behind (no child, no descriptor).
 */
pid_t exec_spawn(const struct exec_def *ed, char *const argv[],
		 char *const envp[], int fds[3]);

/*
 * text[0..len) as valid UTF-8 without NUL: each byte that is not part of
 * a well-formed UTF-8 sequence (RFC 3629), and each NUL, becomes U+FFFD.
 * cut: the text was cut at a size limit, so an incomplete sequence at its
 * end is dropped rather than replaced.  Returns a new string, or NULL.
 */
char *exec_text_utf8(const char *text, size_t len, bool cut);

#endif
