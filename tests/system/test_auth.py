"""taskpoold system test: bearer tokens (RFC 6750).

`[auth] tokens = PATH` names a file of `NAME TOKEN [routes=...] [jobs=...]`
lines, readable by its owner only.  With tokens configured, a request
without a valid `Authorization: Bearer TOKEN` gets 401 with
`WWW-Authenticate: Bearer realm="taskpoold"` (and error="invalid_token"
when it gave one); a token that may not use the route, or run one of the
jobs asked for, gets 403.  /healthz stays open; /metrics and /openapi.json
are open only when [auth] says so, a route only with `auth = open`.
Idempotency keys are per token.  The file is re-read on SIGHUP, a file
that others may read is refused, and no token ever reaches the log.
"""

import json
import os
import re
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (EX_CONFIG, Daemon, check, check_eq,  # noqa: E402
                            check_problem, header, run_cli, run_tests)

TOKEN_CI = "ci-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
TOKEN_GREETER = "greeter-Zq81mWx0Kp2Lr7Tn"
TOKEN_FAST = "fast-only/aB9+cD8=="
TOKEN_OTHER = "other-client-7c1d0e5f9a2b"

TOKENS = """\
# name   token                                   limits
ci       %s
greeter  %s  routes=/greet
fast     %s  jobs=fast routes=/jobs,/both,/runs/{id}
other    %s
""" % (TOKEN_CI, TOKEN_GREETER, TOKEN_FAST, TOKEN_OTHER)

JOBS = """
[job fast]
kind = sleep
duration = 0
result = quick

[job slow]
kind = sleep
duration = 300ms
result = slept

[route /greet]
jobs = fast

[route /both]
jobs = fast, slow

[route /public]
jobs = fast
auth = open
"""

CHALLENGE = 'Bearer realm="taskpoold"'
INVALID = 'Bearer realm="taskpoold", error="invalid_token"'
SCOPE = 'Bearer realm="taskpoold", error="insufficient_scope"'


class Tokens:
    """A tokens file in a directory of its own, mode 0600."""

    def __init__(self, text=TOKENS, mode=0o600):
        self.dir = tempfile.TemporaryDirectory(prefix="taskpoold-tokens-")
        self.path = os.path.join(self.dir.name, "tokens")
        self.write(text, mode)

    def write(self, text, mode=0o600):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, self.path)

    def config(self, auth_extra="", extra=""):
        return "[auth]\ntokens = %s\n%s%s%s" % (self.path, auth_extra,
                                                JOBS, extra)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dir.cleanup()


def bearer(token):
    return {"Authorization": "Bearer " + token}


def post_jobs(d, jobs, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return d.request("POST", "/jobs", headers=h, body=json.dumps(
        {"jobs": [{"job": j} for j in jobs]}))


def check_401(d, method, path, headers, challenge, what):
    status, h, body, _ = d.request(method, path, headers=headers)
    check_problem(status, h, body, 401, what)
    check_eq(header(h, "WWW-Authenticate"), challenge,
             what + ": WWW-Authenticate")


def check_403(answer, what, detail=None):
    status, h, body, _ = answer
    check_problem(status, h, body, 403, what, detail=detail)
    check_eq(header(h, "WWW-Authenticate"), SCOPE,
             what + ": WWW-Authenticate")


def rejections(d, token=TOKEN_CI):
    status, _, body, _ = d.request("GET", "/metrics", headers=bearer(token))
    check_eq(status, 200, "GET /metrics")
    out = {}
    for m in re.finditer(r'^taskpoold_http_rejections_total\{reason="(\w+)"'
                         r'\} (\d+)$', body.decode(), re.M):
        out[m.group(1)] = int(m.group(2))
    return out


PROTECTED = [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/x-1"),
             ("DELETE", "/jobs/x-1"), ("GET", "/runs"), ("GET", "/runs/r-1"),
             ("GET", "/metrics"), ("GET", "/openapi.json"),
             ("GET", "/greet"), ("GET", "/both"), ("GET", "/no/such/path")]


def test_without_tokens_everything_is_open_as_before():
    with Daemon(JOBS) as d:
        for method, path in (("GET", "/jobs"), ("GET", "/metrics"),
                             ("GET", "/greet"), ("GET", "/openapi.json")):
            status, h, _, _ = d.request(method, path)
            check_eq(status, 200, "%s %s without tokens" % (method, path))
            check_eq(header(h, "WWW-Authenticate"), None,
                     "%s %s: no challenge" % (method, path))


def test_no_token_gets_401_with_the_bearer_challenge():
    with Tokens() as t, Daemon(t.config()) as d:
        for method, path in PROTECTED:
            check_401(d, method, path, {}, CHALLENGE,
                      "%s %s without a token" % (method, path))
        # Another scheme is no bearer token: the same challenge.
        check_401(d, "GET", "/jobs", {"Authorization": "Basic YTpi"},
                  CHALLENGE, "Basic credentials")
        status, _, body, _ = d.request("GET", "/healthz")
        check_eq(status, 200, "/healthz stays open")
        status, _, body, _ = d.request("GET", "/public")
        check_eq((status, json.loads(body)), (200, {"results": ["quick"]}),
                 "a route with auth = open")


def test_bad_tokens_get_401_invalid_token():
    with Tokens() as t, Daemon(t.config()) as d:
        for what, value in (
                ("unknown", "Bearer " + TOKEN_OTHER[:-1] + "x"),
                ("a prefix", "Bearer " + TOKEN_CI[:-1]),
                ("longer", "Bearer " + TOKEN_CI + "0"),
                ("empty", "Bearer"),
                ("two words", "Bearer " + TOKEN_CI + " x"),
                ("bad character", "Bearer " + TOKEN_CI[:10] + "\"x"),
                ("too long", "Bearer " + "a" * 300)):
            check_401(d, "GET", "/jobs", {"Authorization": value}, INVALID,
                      "%s token" % what)
        # The scheme is case-insensitive (RFC 9110, section 11.1).
        status, _, _, _ = d.request(
            "GET", "/jobs", headers={"Authorization": "bearer " + TOKEN_CI})
        check_eq(status, 200, "lower-case scheme")


def test_a_good_token_goes_through():
    with Tokens() as t, Daemon(t.config()) as d:
        ci = bearer(TOKEN_CI)
        for path in ("/jobs", "/runs", "/metrics", "/openapi.json"):
            status, _, _, _ = d.request("GET", path, headers=ci)
            check_eq(status, 200, "GET %s with a token" % path)
        status, _, body, _ = d.request("GET", "/greet", headers=ci)
        check_eq((status, json.loads(body)), (200, {"results": ["quick"]}),
                 "GET /greet")
        status, h, body, _ = post_jobs(d, ["fast", "slow"], headers=ci)
        check_eq((status, json.loads(body)),
                 (200, {"results": ["quick", "slept"]}), "POST /jobs")
        status, _, _, _ = d.request("GET", header(h, "Link").split(">")[0]
                                    .lstrip("<"), headers=ci)
        check_eq(status, 200, "GET /runs/{id}")
        status, _, _, _ = d.request("GET", "/no/such/path", headers=ci)
        check_eq(status, 404, "an unknown path with a token")


def test_a_token_limited_to_routes_gets_403_elsewhere():
    with Tokens() as t, Daemon(t.config()) as d:
        g = bearer(TOKEN_GREETER)
        status, _, _, _ = d.request("GET", "/greet", headers=g)
        check_eq(status, 200, "greeter on /greet")
        for method, path, label in (("GET", "/jobs", "/jobs"),
                                    ("GET", "/jobs/x-1", "/jobs/{id}"),
                                    ("DELETE", "/jobs/x-1", "/jobs/{id}"),
                                    ("GET", "/runs", "/runs"),
                                    ("GET", "/metrics", "/metrics"),
                                    ("GET", "/both", "/both")):
            check_403(d.request(method, path, headers=g),
                      "greeter on %s %s" % (method, path),
                      "this token may not use " + label)


def test_a_token_limited_to_jobs_runs_only_those():
    with Tokens() as t, Daemon(t.config()) as d:
        f = bearer(TOKEN_FAST)
        ci = bearer(TOKEN_CI)
        status, _, body, _ = d.request("GET", "/jobs", headers=ci)
        known = len(json.loads(body)["jobs"])
        check_403(post_jobs(d, ["fast", "slow"], headers=f),
                  "fast token, POST /jobs of slow",
                  "this token may not run job 'slow'")
        check_403(d.request("GET", "/both", headers=f),
                  "fast token, a route that runs slow",
                  "this token may not run job 'slow'")
        status, _, body, _ = d.request("GET", "/jobs", headers=ci)
        check_eq(len(json.loads(body)["jobs"]), known,
                 "jobs started by the refused runs")
        status, _, body, _ = post_jobs(d, ["fast"], headers=f)
        check_eq((status, json.loads(body)), (200, {"results": ["quick"]}),
                 "fast token, POST /jobs of fast")


TOKEN_FAST_ANY_ROUTE = "fast-any-route-4e7a1c9b2d"
LONG_JOB = """
[job long]
kind = sleep
duration = 30s
result = late

[route /long]
method = POST
jobs = long
wait = none
"""


def test_a_token_limited_to_jobs_cancels_only_those():
    """jobs= limits what the token controls: it may not cancel (DELETE
    /jobs/{id}) a job it may not run, whatever routes it may use."""
    text = TOKENS + "fastany  %s  jobs=fast\n" % TOKEN_FAST_ANY_ROUTE
    with Tokens(text) as t, Daemon(t.config(extra=LONG_JOB)) as d:
        ci = bearer(TOKEN_CI)
        status, _, body, _ = d.request("POST", "/long", headers=ci,
                                       body=b"")
        check_eq(status, 202, "POST /long (body %r)" % body)
        job_id = json.loads(body)["jobs"][0]["id"]
        path = "/jobs/" + job_id
        check_403(d.request("DELETE", path,
                            headers=bearer(TOKEN_FAST_ANY_ROUTE)),
                  "fast-only token, DELETE of a long job",
                  "this token may not cancel job 'long'")
        status, _, body, _ = d.request("GET", path, headers=ci)
        check_eq(json.loads(body)["state"], "running",
                 "the long job after the refused DELETE")
        # Reading it is not controlling it: allowed.
        status, _, _, _ = d.request("GET", path,
                                    headers=bearer(TOKEN_FAST_ANY_ROUTE))
        check_eq(status, 200, "fast-only token, GET of a long job")
        status, _, _, _ = d.request("DELETE", path, headers=ci)
        check_eq(status, 202, "ci token, DELETE of the long job")


def test_rejections_are_counted_and_metrics_can_be_open():
    with Tokens() as t, Daemon(t.config("metrics = open\n")) as d:
        status, _, _, _ = d.request("GET", "/metrics")
        check_eq(status, 200, "GET /metrics with metrics = open")
        check_401(d, "GET", "/openapi.json", {}, CHALLENGE,
                  "/openapi.json stays closed")
        before = rejections(d)
        d.request("GET", "/jobs")
        d.request("GET", "/jobs", headers=bearer("x" * 20))
        d.request("GET", "/jobs", headers=bearer(TOKEN_GREETER))
        after = rejections(d)
        check_eq(after.get("unauthorized", 0) - before.get("unauthorized", 0),
                 2, "unauthorized counted")
        check_eq(after.get("forbidden", 0) - before.get("forbidden", 0), 1,
                 "forbidden counted")
    with Tokens() as t, Daemon(t.config("openapi = open\n")) as d:
        status, _, _, _ = d.request("GET", "/openapi.json")
        check_eq(status, 200, "GET /openapi.json with openapi = open")


def test_idempotency_keys_are_per_token():
    with Tokens() as t, Daemon(t.config()) as d:
        key = {"Idempotency-Key": "order-1"}
        run = {"Prefer": "respond-async, wait=0"}

        def run_id(token, jobs=("slow",)):
            status, h, body, _ = post_jobs(
                d, list(jobs), headers=dict(key, **run, **bearer(token)))
            check(status in (200, 202), "POST /jobs: %d %r" % (status, body))
            where = header(h, "Location") or header(h, "Link")
            m = re.search(r"/runs/([^>]+)", where or "")
            check(m is not None, "no run in %r" % (dict(h),))
            return m.group(1)

        mine = run_id(TOKEN_CI)
        check_eq(run_id(TOKEN_CI), mine, "the same token repeats its run")
        theirs = run_id(TOKEN_OTHER)
        check(theirs != mine, "another token's key is its own: %r, %r"
              % (theirs, mine))
        # The other's key, with another body: no 422, a run of its own.
        third = run_id(TOKEN_FAST, jobs=("fast",))
        check(third not in (mine, theirs), "a third token: its own run")


def test_openapi_declares_the_bearer_scheme_where_tokens_are_needed():
    from test_openapi import validate
    with Tokens() as t, Daemon(t.config("metrics = open\n")) as d:
        status, _, body, _ = d.request("GET", "/openapi.json",
                                       headers=bearer(TOKEN_CI))
        check_eq(status, 200, "GET /openapi.json")
        doc = json.loads(body)
        check_eq(doc["components"]["securitySchemes"],
                 {"bearer": {"type": "http", "scheme": "bearer",
                             "description": doc["components"]
                             ["securitySchemes"]["bearer"]["description"]}},
                 "securitySchemes")
        check("security" not in doc, "no top-level security")
        secured = {}
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                has = op.get("security") == [{"bearer": []}]
                check_eq(("401" in op["responses"], "403" in op["responses"]),
                         (has, has), "%s %s: 401 and 403" % (method, path))
                secured[(method, path)] = has
        for key, want in ((("get", "/healthz"), False),
                          (("get", "/metrics"), False),
                          (("get", "/openapi.json"), True),
                          (("get", "/jobs"), True), (("post", "/jobs"), True),
                          (("get", "/jobs/{id}"), True),
                          (("delete", "/jobs/{id}"), True),
                          (("get", "/runs"), True),
                          (("get", "/runs/{id}"), True),
                          (("get", "/greet"), True),
                          (("get", "/public"), False)):
            check_eq(secured.get(key), want, "security of %s %s" % key)
        validate(body, "the document with tokens")


def test_sighup_rereads_the_tokens_file():
    with Tokens() as t, Daemon(t.config()) as d:
        new = "newcomer-4Hk9Qz7Rw2Xb"
        t.write("newcomer %s\n" % new)
        n = len(d.log_lines())
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, what="the reload")
        check_401(d, "GET", "/jobs", bearer(TOKEN_CI), INVALID,
                  "a token gone on reload")
        status, _, _, _ = d.request("GET", "/jobs", headers=bearer(new))
        check_eq(status, 200, "a token added on reload")
        # A file that others may read: the reload is refused, the
        # running tokens stay.
        os.chmod(t.path, 0o644)
        n = len(d.log_lines())
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" error: %s:2: tokens file %s: group or others "
                       r"have access \(mode 0644\)" % (
                           re.escape(d.config_path), re.escape(t.path)),
                       start=n, what="the refusal of a 0644 file")
        d.wait_for_log(r"reload refused", start=n, what="the refusal")
        status, _, _, _ = d.request("GET", "/jobs", headers=bearer(new))
        check_eq(status, 200, "the running tokens stay")
        # A bad line: TOKENSFILE:LINE, without the token.
        t.write("ok %s\n%s swapped\n" % (new, TOKEN_CI))
        n = len(d.log_lines())
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" error: %s:2: the token has 7 characters" %
                       re.escape(t.path), start=n, what="the bad line")
        check(TOKEN_CI not in d.log_text(), "a token in the log:\n%s"
              % d.log_text())


def test_a_tokens_file_that_others_may_read_stops_the_start():
    with Tokens(mode=0o644) as t:
        path = os.path.join(t.dir.name, "taskpoold.conf")
        with open(path, "w") as f:
            f.write(t.config())
        rc, out, err = run_cli(["-c", path, "-l", "127.0.0.1:0"])
        check_eq(rc, EX_CONFIG, "exit status (stderr %r)" % err)
        check("%s:2: tokens file %s: group or others have access (mode "
              "0644): the tokens file must be mode 0600 or 0400"
              % (path, t.path) in err, "stderr %r" % err)
        os.chmod(t.path, 0o640)
        rc, out, err = run_cli(["-t", "-c", path])
        check_eq(rc, EX_CONFIG, "-t with a 0640 file (stderr %r)" % err)
        os.chmod(t.path, 0o600)
        rc, out, err = run_cli(["-t", "-c", path])
        check_eq(rc, 0, "-t with a 0600 file (stderr %r)" % err)


def test_tokens_never_reach_the_log():
    extra = "\n[log]\nlevel = debug\naccess_log = yes\n"
    with Tokens() as t, Daemon(t.config(extra=extra)) as d:
        wrong = TOKEN_CI[:-4] + "zzzz"
        for token in (TOKEN_CI, TOKEN_GREETER, TOKEN_FAST, wrong):
            h = bearer(token)
            d.request("GET", "/jobs", headers=h)
            d.request("GET", "/both?x=1", headers=h)
            post_jobs(d, ["fast"], headers=h)
            d.request("GET", "/nosuch", headers=h)
            d.request("GET", "/metrics", headers=h)
        d.raw_request(("GET /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: "
                       "Bearer %s\r\nAuthorization: Bearer %s\r\n\r\n"
                       % (wrong, TOKEN_CI)).encode())
        d.stop()
        text = d.log_text()
        check(" access: " in text, "the access log is on:\n" + text)
        for token in (TOKEN_CI, TOKEN_GREETER, TOKEN_FAST, wrong,
                      TOKEN_CI[:12], wrong[-12:]):
            check(token not in text, "%r in the log:\n%s" % (token, text))
        check("Bearer" not in text, "Bearer in the log:\n" + text)


if __name__ == "__main__":
    run_tests(globals())
