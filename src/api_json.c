/*
 * api_json.c - see api_json.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_json.h"
#include "http.h"
#include "log.h"
#include "params.h"

enum server_handled
api_respond_json(struct server_request *req, unsigned status, json_t *value)
{
	size_t len;
	char *body = http_answer_body(value, &status, &len);

	server_respond(req, status, status >= 400 ? HTTP_PROBLEM_JSON :
		       HTTP_JSON, body, len);
	return SERVER_DONE;
}

/* Answers with a problem document; the one place api.c answers errors. */
enum server_handled
api_respond_problem(struct server_request *req, unsigned status,
		const char *detail)
{
	server_respond_problem(req, status, detail);
	return SERVER_DONE;
}

enum server_handled
api_method_not_allowed(struct server_request *req, const char *allow)
{
	char detail[128];

	server_add_header(req, "Allow", allow);
	snprintf(detail, sizeof(detail), "%s is not allowed here; use %s",
		 server_request_method(req), allow);
	return api_respond_problem(req, 405, detail);
}

unsigned
api_json_depth(const char *text, size_t len)
{
	unsigned depth = 0, deepest = 0;
	bool in_string = false;
	size_t i;

	for (i = 0; i < len && deepest <= API_JSON_MAX_DEPTH; i++) {
		if (in_string) {
			if (text[i] == '\\')
				i++;
			else if (text[i] == '"')
				in_string = false;
		} else if (text[i] == '"') {
			in_string = true;
		} else if (text[i] == '[' || text[i] == '{') {
			if (++depth > deepest)
				deepest = depth;
		} else if ((text[i] == ']' || text[i] == '}') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

json_t *
api_json_load_object(const char *text, size_t len, const char *object,
		     char *detail, size_t size)
{
	json_error_t err;
	json_t *body;
	char *p;

	if (api_json_depth(text, len) > API_JSON_MAX_DEPTH) {
		snprintf(detail, size, "the body nests arrays and objects "
			 "deeper than " API_JSON_DEPTH_TEXT);
		return NULL;
	}
	body = json_loadb(text != NULL ? text : "", len,
			  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (json_is_object(body))
		return body;
	if (body == NULL)
		snprintf(detail, size, "the body is not valid JSON: %s (line "
			 "%d, column %d)", err.text, err.line, err.column);
	else
		snprintf(detail, size, "the body must be %s", object);
	json_decref(body);
	/* err.text may quote the body's bytes. */
	for (p = detail; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	return NULL;
}

/* RFC 3339 UTC with milliseconds, as in the log, or JSON null for 0. */
json_t *
api_json_time(int64_t ns)
{
	char buf[LOG_TIME_MAX];
	struct timespec ts;

	if (ns == 0)
		return json_null();
	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return json_stringn_nocheck(buf, log_format_time(buf, sizeof(buf),
							 &ts));
}

json_t *
api_json_string_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/*
 * A job's result as the answers show it: the JSON value of a JSON result,
 * else a string; null for none.  A JSON result that does not parse (the
 * kinds check it, so it never should) is shown as its text.
 */
json_t *
api_json_result(const struct future_snapshot *s)
{
	json_t *v;

	if (s->result == NULL)
		return json_null();
	if ((s->result_flags & FUTURE_RESULT_JSON) &&
	    (v = json_loads(s->result, JSON_DECODE_ANY, NULL)) != NULL)
		return v;
	return json_string(s->result);
}

/*
 * api_json_result() written into o: the same value, without a tree for
 * a plain string.  A JSON result is still loaded and dumped by jansson,
 * which reformats it (", " and ": " separators), as every answer showed
 * it so far.
 */
void
api_json_result_out(struct json_out *o, const struct future_snapshot *s)
{
	json_t *v;

	if (s->result == NULL) {
		json_out_literal(o, "null");
		return;
	}
	if ((s->result_flags & FUTURE_RESULT_JSON) &&
	    (v = json_loads(s->result, JSON_DECODE_ANY, NULL)) != NULL) {
		json_out_value(o, v);
		json_decref(v);
		return;
	}
	json_out_string(o, s->result);
}

/*
 * Builders that never drop a piece silently.  api_object_set()
 * stores o[key] = v and api_array_append() appends v to a; both steal v
 * (jansson frees it on failure too) and, on any failure, including a NULL
 * o or v from an earlier step, free o or a and return NULL.  Chained,
 * one failure makes the whole answer NULL, answered 500 by api_respond_json(),
 * never a shorter answer.  Keys are our own ASCII constants, hence
 * _nocheck: json_pack() spends more parsing its format than building the
 * object (bench/callgrind).
 */
json_t *
api_object_set(json_t *o, const char *key, json_t *v)
{
	if (o == NULL || v == NULL) {
		json_decref(o);
		json_decref(v);
		return NULL;
	}
	if (json_object_set_new_nocheck(o, key, v) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
api_array_append(json_t *a, json_t *v)
{
	if (a == NULL || v == NULL) {
		json_decref(a);
		json_decref(v);
		return NULL;
	}
	if (json_array_append_new(a, v) != 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* {"id", "job", "href"}: a pointer to a job instance. */
json_t *
api_job_link(const struct job_instance *inst)
{
	char href[JOB_ID_MAX + 8];
	json_t *link;

	snprintf(href, sizeof(href), "/jobs/%s", inst->id);
	link = api_object_set(json_object(), "id", json_string(inst->id));
	link = api_object_set(link, "job", json_string(inst->def->name));
	return api_object_set(link, "href", json_string(href));
}

/*
 * api_job_link()'s members written into o.  The href is "/jobs/" and the
 * id escaped, as the id escapes the same alone or after that prefix.
 */
void
api_job_link_members(struct json_out *o, const struct job_instance *inst)
{
	size_t n = strlen(inst->id);

	json_out_literal(o, "\"id\": \"");
	json_out_escaped(o, inst->id, n);
	json_out_literal(o, "\", \"job\": ");
	json_out_string(o, inst->def->name);
	json_out_literal(o, ", \"href\": \"/jobs/");
	json_out_escaped(o, inst->id, n);
	json_out_literal(o, "\"");
}

/*
 * The full record of a job instance, as GET /jobs/{id} shows it: from one
 * snapshot, so that a job completing meanwhile is shown before or after,
 * never half of each.  inst's reference keeps result and error valid.
 */
json_t *
api_job_record(struct job_instance *inst)
{
	struct future_snapshot s = future_snapshot(inst->future);

	return api_job_record_of(inst, &s);
}

json_t *
api_job_record_of(const struct job_instance *inst,
		  const struct future_snapshot *s)
{
	const struct job_instance *twin = job_joined(inst);
	json_t *record;

	/* The values it ran with; a secret's shown as "***". */
	record = api_job_record_build(inst->id, inst->def->name, s,
				      twin != NULL ? twin->id : NULL,
				      params_redacted(inst->def, inst->params));
	/* A job of the shared queue: which claim runs it. */
	if (inst->attempt > 0)
		record = api_object_set(record, "attempt",
					json_integer(inst->attempt));
	return record;
}

/*
 * The one renderer of a job's record, for an instance in memory and a
 * record from the store alike, so that both show the same members.
 */
json_t *
api_job_record_build(const char *id, const char *job,
		     const struct future_snapshot *s, const char *joined,
		     json_t *params)
{
	json_t *record;

	record = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
			   "id", id,
			   "job", job,
			   "state", future_state_name(s->state),
			   "result", api_json_result(s),
			   "error", api_json_string_or_null(s->error),
			   "created", api_json_time(s->times.created),
			   "started", api_json_time(s->times.started),
			   "finished", api_json_time(s->times.finished));
	if (s->result_flags & FUTURE_RESULT_TRUNCATED)
		record = api_object_set(record, "truncated", json_true());
	if (joined != NULL)
		record = api_object_set(record, "joined", json_string(joined));
	return api_object_set(record, "params", params);
}

/*
 * GET, or HEAD (libmicrohttpd then sends the headers alone).  Only for
 * resources that are safe to read: a route's GET starts jobs, so routes
 * do not take HEAD.
 */
bool
api_is_read(struct server_request *req)
{
	const char *m = server_request_method(req);

	return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}
