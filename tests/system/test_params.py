"""taskpoold system test: declared parameters (taskpoold.conf(5),
PARAMETERS) through the real daemon.

Routes of `sleep` jobs that declare parameters take values from the path,
the query string and a JSON body.  Each refusal is a 400 problem naming the
parameter, with an `errors` array, and starts no job: /healthz still counts
no job, live or finished, after it.  Records show the values a job ran
with, secrets as "***", and no secret reaches the log.
"""

import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, check, check_eq,  # noqa: E402
                            check_problem, run_tests)

CONFIG = """
[server]
instance = ptest

[job greet]
kind = sleep
result = hello
param.name = string max=32 pattern=[A-Za-z ]+
param.times = int min=1 max=5 default=1
param.mode = enum fast|slow default=fast
param.verbose = bool default=false
param.token = string secret default=none

[job echo]
kind = sleep
result = echo
param.text = string max=16

[job plain]
kind = sleep
result = plain

[route /greet]
method = POST
jobs = greet

[route /greet/{name}]
jobs = greet

# A literal path wins over the template above.
[route /greet/bob]
jobs = plain

[route /later/{name}]
method = POST
jobs = greet
wait = none

[route /both]
method = POST
jobs = greet echo
wait = none
"""

JSON = {"Content-Type": "application/json"}
SECRET = "s3cr3tvalue"


def health(d):
    return d.get_json("/healthz")


def refused(d, method, path, detail, errors=None, headers=None, body=None,
            status=400):
    """Expects a problem with detail (and errors) and that no job started."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    got_status, got_headers, got_body, _ = d.request(method, path,
                                                     headers=headers,
                                                     body=body)
    p = check_problem(got_status, got_headers, got_body, status,
                      "%s %s" % (method, path), detail)
    check_eq(p.get("errors"), errors, "%s %s: errors" % (method, path))
    h = health(d)
    check_eq((h["jobs_live"], h["jobs_finished"]), (0, 0),
             "jobs after a refused %s %s" % (method, path))
    return p


def undeclared(name):
    return {"param": name,
            "reason": "is not declared by any job of this route"}


def accepted_ids(d, method, path, headers=None, body=None):
    """Expects 202 from a wait = none route; returns the jobs' ids."""
    if isinstance(body, dict):
        body = json.dumps(body)
    status, _, data, _ = d.request(method, path, headers=headers, body=body)
    check_eq(status, 202, "%s %s status (body %r)" % (method, path, data))
    return [j["id"] for j in json.loads(data)["jobs"]]


def params_of(d, job_id):
    return d.get_json("/jobs/" + urllib.parse.quote(job_id))["params"]


# ---- refusals -----------------------------------------------------------------

def test_parameter_no_job_declares_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?colour=red",
                "parameter 'colour' is not declared by any job of this "
                "route", [undeclared("colour")])


def test_missing_required_parameter_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/greet?times=2", "parameter 'name' is required",
                [{"param": "name", "reason": "is required"}])


def test_int_as_a_json_string_is_refused_as_a_wrong_type():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/greet", "parameter 'times' must be an integer "
                "from 1 to 5", [{"param": "times", "reason": "must be an "
                                 "integer from 1 to 5"}],
                headers=JSON, body={"name": "Ann", "times": "2"})


def test_int_that_is_not_decimal_text_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?times=2.0", "parameter 'times' must be "
                "a decimal integer", [{"param": "times", "reason": "must be "
                                       "a decimal integer"}])


def test_int_out_of_range_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?times=6", "parameter 'times' must be "
                "an integer from 1 to 5", [{"param": "times", "reason":
                                            "must be an integer from 1 to "
                                            "5"}])


def test_int_overflow_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?times=99999999999999999999999",
                "parameter 'times' must be an integer from 1 to 5",
                [{"param": "times", "reason": "must be an integer from 1 "
                  "to 5"}])


def test_enum_value_outside_its_choices_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?mode=Fast", "parameter 'mode' must be "
                "one of fast, slow", [{"param": "mode", "reason": "must be "
                                       "one of fast, slow"}])


def test_bool_key_without_a_value_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?verbose", "parameter 'verbose' must "
                "be true, false, 1, 0, yes or no",
                [{"param": "verbose", "reason": "must be true, false, 1, 0, "
                  "yes or no"}])


def test_path_value_that_does_not_match_the_pattern_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann1", "parameter 'name' does not match "
                "the pattern [A-Za-z ]+", [{"param": "name", "reason":
                                            "does not match the pattern "
                                            "[A-Za-z ]+"}])


def test_string_over_its_max_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/" + "A" * 33, "parameter 'name' is longer "
                "than 32 bytes", [{"param": "name", "reason": "is longer "
                                   "than 32 bytes"}])


def test_string_with_a_leading_dash_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/both", "parameter 'text' may not start with "
                "'-'", [{"param": "text", "reason": "may not start with "
                         "'-'"}],
                headers=JSON, body={"name": "Ann", "text": "-rf"})


def test_string_with_a_control_character_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/both?name=Ann&text=a%0Ab", "parameter 'text' "
                "may not hold control characters",
                [{"param": "text", "reason": "may not hold control "
                  "characters"}])


def test_string_with_a_nul_byte_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/both?name=Ann&text=a%00b", "parameter 'text' "
                "may not hold a NUL character",
                [{"param": "text", "reason": "may not hold a NUL "
                  "character"}])


def test_string_that_is_not_utf8_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/both?name=Ann&text=%FF", "parameter 'text' is "
                "not valid UTF-8", [{"param": "text", "reason": "is not "
                                     "valid UTF-8"}])


def test_same_name_in_path_and_query_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?name=Bob", "parameter 'name' is given "
                "more than once (path and query)",
                [{"param": "name", "reason": "is given more than once "
                  "(path and query)"}])


def test_same_name_in_query_and_body_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/greet?name=Ann", "parameter 'name' is given "
                "more than once (query and body)",
                [{"param": "name", "reason": "is given more than once "
                  "(query and body)"}], headers=JSON, body={"name": "Bob"})


def test_same_name_twice_in_the_query_is_refused():
    with Daemon(CONFIG) as d:
        refused(d, "GET", "/greet/Ann?times=1&times=1", "parameter 'times' "
                "is given more than once (query and query)",
                [{"param": "times", "reason": "is given more than once "
                  "(query and query)"}])


def test_every_refusal_is_listed_and_the_first_is_named():
    with Daemon(CONFIG) as d:
        refused(d, "POST", "/greet?times=0&x=1", "parameter 'times' must be "
                "an integer from 1 to 5 (and 3 more)",
                [{"param": "times", "reason": "must be an integer from 1 "
                  "to 5"}, undeclared("x"),
                 {"param": "mode", "reason": "must be one of fast, slow"},
                 {"param": "name", "reason": "is required"}],
                headers=JSON, body={"mode": 1})


def test_body_that_is_not_json_is_refused():
    with Daemon(CONFIG) as d:
        p = refused(d, "POST", "/greet", None, headers=JSON,
                    body='{"name": "Ann"')
        check(p["detail"].startswith("the body is not valid JSON: "),
              "detail %r" % p["detail"])


def test_json_body_with_a_duplicate_key_is_refused():
    with Daemon(CONFIG) as d:
        p = refused(d, "POST", "/greet", None, headers=JSON,
                    body='{"name": "Ann", "name": "Bob"}')
        check(p["detail"].startswith("the body is not valid JSON: duplicate "
                                     "object key"), "detail %r" % p["detail"])


def test_json_body_that_is_not_an_object_is_refused():
    with Daemon(CONFIG) as d:
        for body in ('["Ann"]', '"Ann"', "5", "null"):
            refused(d, "POST", "/greet", "the body must be a JSON object of "
                    "parameters", headers=JSON, body=body)


def test_body_of_another_type_is_refused_with_415():
    with Daemon(CONFIG) as d:
        for headers in ({"Content-Type": "application/x-www-form-urlencoded"},
                        {"Content-Type": "text/plain"}, {}):
            refused(d, "POST", "/greet", "a request body holds parameters, "
                    "as a JSON object with Content-Type: application/json",
                    headers=headers, body="name=Ann", status=415)


# ---- what is taken ---------------------------------------------------------------

def test_path_segment_value_runs_the_job():
    with Daemon(CONFIG) as d:
        check_eq(d.get_json("/greet/Ann%20Lee"), {"results": ["hello"]},
                 "GET /greet/Ann%20Lee")


def test_literal_route_wins_over_the_template():
    with Daemon(CONFIG) as d:
        check_eq(d.get_json("/greet/bob"), {"results": ["plain"]},
                 "GET /greet/bob")


def test_empty_json_object_and_charset_parameter_are_taken():
    with Daemon(CONFIG) as d:
        status, _, body, _ = d.request(
            "POST", "/greet?name=Ann",
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
            body="{}")
        check_eq((status, json.loads(body)), (200, {"results": ["hello"]}),
                 "POST /greet with {}")


def test_record_shows_typed_values_with_defaults_filled():
    with Daemon(CONFIG) as d:
        [job_id] = accepted_ids(d, "POST", "/later/Ann%20Lee?times=3")
        check_eq(params_of(d, job_id),
                 {"name": "Ann Lee", "times": 3, "mode": "fast",
                  "verbose": False, "token": "***"}, "params of the record")


def test_json_values_are_taken_with_their_types():
    with Daemon(CONFIG) as d:
        [job_id] = accepted_ids(d, "POST", "/later/Ann", headers=JSON,
                                body={"times": 5, "mode": "slow",
                                      "verbose": True})
        check_eq(params_of(d, job_id),
                 {"name": "Ann", "times": 5, "mode": "slow",
                  "verbose": True, "token": "***"}, "params of the record")


def test_each_job_of_a_route_takes_the_values_it_declares():
    with Daemon(CONFIG) as d:
        greet, echo = accepted_ids(d, "POST", "/both?name=Ann&text=hi%20there")
        check_eq(params_of(d, greet),
                 {"name": "Ann", "times": 1, "mode": "fast",
                  "verbose": False, "token": "***"}, "params of greet")
        check_eq(params_of(d, echo), {"text": "hi there"}, "params of echo")


def test_plus_in_the_query_is_a_blank():
    with Daemon(CONFIG) as d:
        greet, echo = accepted_ids(d, "POST", "/both?name=Ann+Lee&text=a+b")
        check_eq(params_of(d, greet)["name"], "Ann Lee", "name of greet")
        check_eq(params_of(d, echo), {"text": "a b"}, "params of echo")


def test_secret_value_is_shown_as_stars_and_never_logged():
    with Daemon(CONFIG) as d:
        [job_id] = accepted_ids(d, "POST", "/later/Ann?token=" + SECRET)
        check_eq(params_of(d, job_id)["token"], "***", "token in the record")
        d.wait_for_log(r"job greet done .*\(id %s\)" % job_id)
        # A refused request with the secret, too: its value is not echoed.
        refused_body = d.request("POST", "/later/Ann1?token=" + SECRET)[2]
        check(SECRET.encode() not in refused_body, "secret in a 400 answer")
        d.stop()
        check(SECRET not in d.log_text(), "secret in the log:\n%s"
              % d.log_text())


if __name__ == "__main__":
    run_tests(globals())
