/*
 * params.c - see params.h.
 */
#include <stdlib.h>

#include "params.h"

void
param_decl_clear(struct param_decl *d)
{
	size_t i;

	free(d->name);
	json_decref(d->default_value);
	if (d->pattern_text != NULL)
		regfree(&d->pattern);
	free(d->pattern_text);
	for (i = 0; i < d->nchoices; i++)
		free(d->choices[i]);
	free(d->choices);
}
