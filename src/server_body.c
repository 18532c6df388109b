/*
 * server_body.c - see server_body.h.
 */
#include <stdlib.h>
#include <string.h>

#include "server_body.h"

#define BODY_MIN_CAP 1024

int
server_body_append(struct server_body *b, const char *data, size_t len,
		   size_t max)
{
	size_t need, cap;
	char *bigger;

	if (b->too_large || len > max || b->len > max - len) {
		b->too_large = true;
		return 0;
	}
	need = b->len + len + 1;	/* and the NUL */
	if (need > b->cap) {
		cap = b->cap > 0 ? b->cap : BODY_MIN_CAP;
		while (cap < need)
			cap *= 2;
		if (cap > max + 1)	/* need <= max + 1 here */
			cap = max + 1;
		bigger = realloc(b->data, cap);
		if (bigger == NULL)
			return -1;
		b->data = bigger;
		b->cap = cap;
		b->grows++;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void
server_body_clear(struct server_body *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
