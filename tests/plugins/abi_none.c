/*
 * abi_none.c - a shared object with the right function but no
 * taskpoold_abi_version: not a plugin, and the loader must say so.
 */
#include <taskpoold/job.h>

json_t *echo(const struct taskpoold_call *call, char *error, size_t errlen);

json_t *
echo(const struct taskpoold_call *call, char *error, size_t errlen)
{
	return json_incref(call->params);
}
