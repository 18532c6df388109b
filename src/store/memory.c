/*
 * memory.c - the backend that keeps nothing: `[store] backend = memory`.
 *
 * The registry and the runs table in memory are then the only records,
 * as before the store existed: every lookup misses, and store.c starts no
 * writer thread for it (store_job_changed() drops the change at once), so
 * the hot path pays nothing.
 */
#include <stddef.h>

#include "store/backend.h"

/* A non-NULL state, since NULL from open means failure. */
static char memory_state;

static void *
memory_open(const struct store_options *o, char *err, size_t errsize)
{
	(void)o;
	(void)err;
	(void)errsize;
	return &memory_state;
}

static int
memory_write_batch(void *b, const struct store_change *c, size_t n)
{
	(void)b;
	(void)c;
	(void)n;
	return 0;
}

static int
memory_job_get(void *b, const char *id, struct store_job *out)
{
	(void)b;
	(void)id;
	(void)out;
	return 1;
}

static int
memory_run_get(void *b, const char *id, struct store_run *out)
{
	(void)b;
	(void)id;
	(void)out;
	return 1;
}

static int
memory_job_list(void *b, const struct store_filter *f, uint64_t before,
		size_t limit, struct store_job *out, uint64_t *next)
{
	(void)b;
	(void)f;
	(void)before;
	(void)limit;
	(void)out;
	*next = 0;
	return 0;
}

static int
memory_expire(void *b, int64_t before_ns)
{
	(void)b;
	(void)before_ns;
	return 0;
}

static void
memory_close(void *b)
{
	(void)b;
}

const struct store_ops store_memory_ops = {
	.name = "memory",
	.open = memory_open,
	.write_batch = memory_write_batch,
	.job_get = memory_job_get,
	.run_get = memory_run_get,
	.job_list = memory_job_list,
	.expire = memory_expire,
	.close = memory_close,
};
