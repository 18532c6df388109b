/*
 * fnv.h - FNV-1a, 64 bits: the hash of the daemon's tables (registry,
 * runs, metrics series) and of a request's fingerprint (idempotency).
 * Fast and good enough for keys we or the operator choose; never a
 * defence against chosen collisions on its own.
 */
#ifndef TASKPOOLD_FNV_H
#define TASKPOOLD_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT UINT64_C(14695981039346656037)

/* h, continued over n bytes at p. */
static inline uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(1099511628211);
	return h;
}

/* The hash of a NUL-terminated string. */
static inline uint64_t
fnv1a_str(const char *s)
{
	uint64_t h = FNV1A_INIT;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

#endif
