/*
 * abi_other.c - a plugin built for an interface this taskpoold does not
 * have: the loader must refuse it.
 */
#include <taskpoold/job.h>

const unsigned int taskpoold_abi_version = TASKPOOLD_ABI_VERSION + 1;

json_t *echo(const struct taskpoold_call *call, char *error, size_t errlen);

json_t *
echo(const struct taskpoold_call *call, char *error, size_t errlen)
{
	return json_incref(call->params);
}
