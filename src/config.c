/*
 * config.c - the loaded config as a shared, immutable value: see config.h.
 *
 * This is the part of the config that everyone holds (a job instance
 * keeps a reference): its reference count, its teardown and its lookups.
 * It knows kinds only by their operations (kinds/kind.h), to free what
 * each kept.  config_load() is in config_reader.c: config_private.h says
 * why the two are apart.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config_private.h"
#include "kinds/kind.h"
#include "params.h"
#include "tls.h"

/* The count sits beside the config, which is all that callers see. */
struct config_box {
	atomic_uint refs;
	struct config cfg;
};

struct config *
config_new(void)
{
	struct config_box *box = calloc(1, sizeof(*box));

	if (box == NULL)
		return NULL;
	atomic_init(&box->refs, 1);
	return &box->cfg;
}

static void
config_destroy(struct config *c)
{
	size_t i;

	for (i = 0; i < c->njobs; i++) {
		size_t j;

		free(c->jobs[i].name);
		for (j = 0; j < c->jobs[i].nparams; j++)
			param_decl_clear(&c->jobs[i].params[j]);
		free(c->jobs[i].params);
		/* A kind makes kind_data: without a kind there is none. */
		if (c->jobs[i].kind != NULL)
			c->jobs[i].kind->free(c->jobs[i].kind_data);
	}
	free(c->jobs);
	for (i = 0; i < c->nroutes; i++) {
		free(c->routes[i].path);
		free(c->routes[i].method);
		free(c->routes[i].jobs);
	}
	free(c->routes);
	free(c->server.listen);
	free(c->server.cert);
	free(c->server.key);
	free(c->server.tls_priorities);
	tls_creds_unref(c->server.tls);
	free(c->server.instance);
	free(c->auth.tokens_path);
	auth_table_free(c->auth.tokens);
	free(c->store.path);
	free(c->store.url);
	free(c->path);
}

static struct config_box *
box_of(struct config *c)
{
	return (struct config_box *)((char *)c -
				     offsetof(struct config_box, cfg));
}

struct config *
config_ref(struct config *c)
{
	atomic_fetch_add_explicit(&box_of(c)->refs, 1, memory_order_relaxed);
	return c;
}

void
config_unref(struct config *c)
{
	struct config_box *box;

	if (c == NULL)
		return;
	box = box_of(c);
	if (atomic_fetch_sub_explicit(&box->refs, 1, memory_order_acq_rel) != 1)
		return;
	config_destroy(c);
	free(box);
}

const struct job_def *
config_find_job(const struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->njobs; i++)
		if (!strcmp(c->jobs[i].name, name))
			return &c->jobs[i];
	return NULL;
}

/*
 * Whether a templated route path takes path: the same number of segments,
 * each equal, or a non-empty one where the template has `{name}`.
 */
static bool
route_takes(const char *tmpl, const char *path)
{
	size_t nt, np;

	while (*tmpl == '/' && *path == '/') {
		tmpl++, path++;
		nt = strcspn(tmpl, "/");
		np = strcspn(path, "/");
		if (*tmpl == '{' ? np == 0 : nt != np || memcmp(tmpl, path, np))
			return false;
		tmpl += nt, path += np;
	}
	return *tmpl == '\0' && *path == '\0';
}

/*
 * Of two templates that take the same path, whether a is the more
 * specific: at the first segment where one has a literal and the other a
 * `{name}`, the literal wins.
 */
static bool
route_more_specific(const char *a, const char *b)
{
	while (*a == '/' && *b == '/') {
		a++, b++;
		if ((*a == '{') != (*b == '{'))
			return *b == '{';
		a += strcspn(a, "/");
		b += strcspn(b, "/");
	}
	return false;
}

const struct route *
config_find_route(const struct config *c, const char *path)
{
	const struct route *best = NULL;
	size_t i;

	/* A literal route wins over any template that takes its path. */
	for (i = 0; i < c->nroutes; i++)
		if (strchr(c->routes[i].path, '{') == NULL &&
		    !strcmp(c->routes[i].path, path))
			return &c->routes[i];
	for (i = 0; i < c->nroutes; i++) {
		const char *t = c->routes[i].path;

		if (strchr(t, '{') == NULL || !route_takes(t, path))
			continue;
		if (best == NULL || route_more_specific(t, best->path))
			best = &c->routes[i];
	}
	return best;
}

const struct param_decl *
config_job_param(const struct job_def *def, const char *name)
{
	size_t i;

	for (i = 0; i < def->nparams; i++)
		if (!strcmp(def->params[i].name, name))
			return &def->params[i];
	return NULL;
}
