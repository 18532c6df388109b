/*
 * greet.c - a taskpoold plugin: {"greeting": "Hello, NAME"}.
 *
 *	[job greet_plugin]
 *	kind = plugin
 *	library = /usr/local/lib/taskpoold/greet.so
 *	function = greet
 *	param.name = string max=32 default=world pattern=[A-Za-z ]+
 *
 * Without a `name` parameter it greets the world.
 */
#include <stdio.h>

#include <taskpoold/job.h>

TASKPOOLD_PLUGIN;

json_t *greet(const struct taskpoold_call *call, char *error, size_t errlen);

json_t *
greet(const struct taskpoold_call *call, char *error, size_t errlen)
{
	const json_t *name = json_object_get(call->params, "name");
	json_t *result;

	if (name != NULL && !json_is_string(name)) {
		snprintf(error, errlen, "name is not a string");
		return NULL;
	}
	result = json_pack("{s:s+}", "greeting", "Hello, ",
			   name != NULL ? json_string_value(name) : "world");
	if (result == NULL)
		snprintf(error, errlen, "out of memory");
	return result;
}
