/*
 * fuzz_config.c - the config parser: each input is a whole config file,
 * read by config_load_buffer() exactly as config_load() reads a file
 * (inih, the line reader, every section, the kinds' keys, parameter
 * declarations, route paths).
 *
 * Properties besides "no crash, no leak, no hang": a refused input has a
 * reason, which is text a log line can carry (valid UTF-8, no control
 * character: it quotes keys and values), and a line within the input; an
 * accepted one answers the lookups the daemon makes for its own names.
 */
#include <stdio.h>

#include "config.h"
#include "config_private.h"
#include "fuzz.h"
#include "kinds/kinds.h"

/* As main() does before it loads: the http kind checks URLs with libcurl. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char why[256];

	(void)argc;
	(void)argv;
	if (kinds_global_init(why, sizeof(why)) != 0) {
		fprintf(stderr, "fuzz_config: %s\n", why);
		abort();
	}
	return 0;
}

/* Every job and route of c is found under its own name and path. */
static void
check_lookups(const struct config *c)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		FUZZ_ASSERT(config_find_job(c, c->jobs[i].name) ==
			    &c->jobs[i]);
		FUZZ_ASSERT(c->jobs[i].kind != NULL);
	}
	for (i = 0; i < c->nroutes; i++) {
		FUZZ_ASSERT(c->routes[i].njobs > 0);
		FUZZ_ASSERT(config_find_route(c, c->routes[i].path) ==
			    &c->routes[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_error err;
	struct config *c;
	size_t lines = 1, i;

	c = config_load_buffer("fuzz.conf", (const char *)data, size, &err);
	if (c != NULL) {
		check_lookups(c);
		config_unref(config_ref(c));
		config_unref(c);
		return 0;
	}
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	FUZZ_ASSERT(err.text[0] != '\0');
	FUZZ_ASSERT(config_text_problem(err.text) == NULL);
	FUZZ_ASSERT(err.line >= 0 && (size_t)err.line <= lines);
	FUZZ_ASSERT(!strcmp(err.file, "fuzz.conf"));
	return 0;
}
