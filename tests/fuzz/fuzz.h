/*
 * fuzz.h - what the libFuzzer harnesses of tests/fuzz share: libFuzzer's
 * entry points, declared (the build has -Wmissing-prototypes), and the
 * cutting of one input into text fields.  See tests/fuzz/README.
 */
#ifndef TASKPOOLD_FUZZ_H
#define TASKPOOLD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property: abort(), which libFuzzer reports as a crash. */
#define FUZZ_ASSERT(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: property failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/*
 * Cuts size bytes at data into at most max fields at each '\n' (the last
 * field takes the rest, newlines included): field[i] points into *copy, a
 * new NUL-terminated copy of the input that the caller frees; len[i] is
 * each one's length (a field may hold a NUL).  Fields past the input's
 * end are "".  Returns the number of fields the input had, or 0 when out
 * of memory.
 */
static inline size_t
fuzz_fields(const uint8_t *data, size_t size, char **copy, char **field,
	    size_t *len, size_t max)
{
	char *s = malloc(size + 1), *end, *nl;
	size_t n = 0;

	*copy = s;
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	end = s + size;
	while (n < max) {
		nl = n + 1 < max ? memchr(s, '\n', (size_t)(end - s)) : NULL;
		field[n] = s;
		len[n] = (size_t)((nl != NULL ? nl : end) - s);
		n++;
		if (nl == NULL)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	for (size_t i = n; i < max; i++) {
		field[i] = end;
		len[i] = 0;
	}
	return n;
}

#endif
