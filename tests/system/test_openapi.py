"""taskpoold system test: GET /openapi.json, an OpenAPI 3.1 document of the
daemon's endpoints and of the routes of the config it runs now.

The document is checked for the facts of the config (each route with its
method, its path, query and body parameters with their types and bounds)
and validated by a real OpenAPI 3.1 validator from npm
(@seriousme/openapi-schema-validator, with ajv for the schemas inside),
which tools/install-deps installs under /opt/taskpoold-tools
($TASKPOOLD_NPM_PREFIX overrides).  Where node or the validator is missing
the validating tests skip, except under CI (CI=true), where they fail.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, Skip, check, check_eq,  # noqa: E402
                            check_problem, fail, header, log, run_tests,
                            shipped_config_path, shipped_config_text)

NPM_PREFIX = os.environ.get("TASKPOOLD_NPM_PREFIX", "/opt/taskpoold-tools")
VALIDATOR = os.path.join(NPM_PREFIX, "node_modules", "@seriousme",
                         "openapi-schema-validator", "index.js")
VALIDATE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "openapi_validate.mjs")
VALIDATE_TIMEOUT = 60.0

# The daemon's own paths and their methods, whatever the config.
STATIC = {
    "/healthz": {"get", "head"},
    "/metrics": {"get"},
    "/openapi.json": {"get", "head"},
    "/jobs": {"get", "post"},
    "/jobs/{id}": {"get", "head", "delete"},
    "/runs": {"get"},
    "/runs/{id}": {"get"},
}
METHODS = {"get", "head", "post", "put", "patch", "delete", "options",
           "trace"}

SECRET_DEFAULT = "s3cr3tdefault"

# Every parameter type and option, a name declared by two jobs, a
# pattern that JSON Schema can carry and one that it cannot, and routes of
# each body-less and body method.
CONFIG = """
[server]
instance = oapi

[job alpha]
kind = sleep
result = a
param.name = string max=32 pattern=[A-Za-z ]+
param.count = int min=1 max=5 default=1
param.mode = enum fast|slow default=fast
param.verbose = bool default=false
param.token = string secret default=%s
param.note = string max=16
param.big = int
param.code = string default=42 pattern=[[:digit:]]+
param.tag = string max=8 default=ab pattern=[a-z]{2,4}(-[a-z0-9]+)?

[job beta]
kind = sleep
result = b
param.name = string max=16 default=anon
param.level = int min=-3 max=3 default=0

[route /items/{name}]
jobs = alpha beta
wait = all

[route /submit]
method = POST
jobs = alpha
wait = first

[route /fire/{mode}]
method = PUT
jobs = alpha
wait = none

[route /a-b]
jobs = beta
wait = any
timeout = 1500ms
losers = cancel
on_disconnect = cancel

[route /a_b]
method = DELETE
jobs = beta
""" % SECRET_DEFAULT


# ---- helpers ------------------------------------------------------------

def fetch(d):
    """GET /openapi.json: (document, body bytes)."""
    status, headers, body, _ = d.request("GET", "/openapi.json")
    check_eq(status, 200, "GET /openapi.json status (body %r)" % body[:300])
    check_eq(header(headers, "Content-Type"), "application/json",
             "GET /openapi.json Content-Type")
    try:
        return json.loads(body), body
    except ValueError:
        fail("GET /openapi.json: not JSON: %r" % body[:300])


def resolve(doc, node):
    """node, or what its $ref points to (in doc)."""
    while isinstance(node, dict) and "$ref" in node:
        path = node["$ref"]
        check(path.startswith("#/"), "a $ref outside the document: %r"
              % path)
        node = doc
        for part in path[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def params_of(doc, op):
    """{(in, name): parameter} of an operation."""
    out = {}
    for p in op.get("parameters", []):
        p = resolve(doc, p)
        out[(p["in"], p["name"])] = p
    return out


def body_schema(doc, op):
    rb = resolve(doc, op["requestBody"])
    return resolve(doc, rb["content"]["application/json"]["schema"])


def check_routes_match(doc, cfg_routes):
    """The paths are the daemon's own plus the routes, each with its
    one method; every {name} of a path is a required path parameter."""
    paths = doc["paths"]
    expected = dict(STATIC)
    for path, method in cfg_routes.items():
        expected[path] = {method}
    got = {p: {m for m in item if m in METHODS} for p, item in paths.items()}
    check_eq(got, expected, "paths and their methods")
    for path, method in cfg_routes.items():
        op = paths[path][method]
        names = [seg[1:-1] for seg in path.split("/")
                 if seg.startswith("{")]
        ps = params_of(doc, op)
        for name in names:
            check(("path", name) in ps, "%s %s: no path parameter %r"
                  % (method, path, name))
            check_eq(ps[("path", name)]["required"], True,
                     "%s %s: path parameter %s required"
                     % (method, path, name))
    ids = [op["operationId"] for item in paths.values()
           for m, op in item.items() if m in METHODS]
    check_eq(len(ids), len(set(ids)), "operationIds are unique (%r)" % ids)


def have_validator():
    """Whether node and the validator are here; fails under CI if not."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not os.path.exists(VALIDATOR):
        missing = "the validator is not installed at %s" % VALIDATOR
    if missing is None:
        return True
    missing += " (tools/install-deps installs both)"
    if os.environ.get("CI") == "true":
        fail("CI=true, and " + missing)
    raise Skip(missing)


def validate(body, what):
    """Runs the npm validator on the document bytes; fails unless valid."""
    have_validator()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        t0 = time.monotonic()
        try:
            p = subprocess.run(["node", VALIDATE_SCRIPT, f.name, NPM_PREFIX],
                               capture_output=True, text=True,
                               timeout=VALIDATE_TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("%s: the validator took more than %.0f s"
                 % (what, VALIDATE_TIMEOUT))
        elapsed = time.monotonic() - t0
    check_eq(p.returncode, 0, "%s: validator exit status; stdout:\n%s\n"
             "stderr:\n%s" % (what, p.stdout[-6000:], p.stderr[-3000:]))
    check_eq(json.loads(p.stdout)["valid"], True, what + ": valid")
    log("%s: valid (%d bytes, validated in %.2f s)" % (what, len(body),
                                                        elapsed))


# ---- the shipped config -----------------------------------------------------

def shipped_routes():
    """{path: method} of the shipped config, read from the file."""
    routes, path = {}, None
    with open(shipped_config_path()) as f:
        for line in f:
            line = line.strip()
            if line.startswith("[route "):
                path = line[len("[route "):-1]
                routes[path] = "get"
            elif line.startswith("["):
                path = None
            elif path and line.replace(" ", "").startswith("method="):
                routes[path] = line.split("=", 1)[1].strip().lower()
    return routes


def test_shipped_config_document():
    with Daemon(config_text=shipped_config_text()) as d:
        doc, _ = fetch(d)
        check_eq(doc["openapi"], "3.1.0", "openapi")
        check_eq(doc["info"]["title"], "taskpoold", "info.title")
        version = subprocess.run([d.args[0], "-V"], capture_output=True,
                                 text=True).stdout.split()[-1]
        check_eq(doc["info"]["version"], version, "info.version (taskpoold "
                 "-V)")
        check("servers" not in doc, "no servers: relative to the document")
        routes = shipped_routes()
        check("/tasks" in routes and "/primes" in routes,
              "the shipped config's routes: %r" % routes)
        check_routes_match(doc, routes)
        paths = doc["paths"]
        # /greet/{name}: its pattern and length, as JSON Schema.
        name = params_of(doc, paths["/greet/{name}"]["get"])[("path",
                                                               "name")]
        check_eq(name["schema"]["type"], "string", "{name} type")
        check_eq(name["schema"]["maxLength"], 32, "{name} maxLength")
        check_eq(name["schema"]["pattern"], "^([A-Za-z ]+)$",
                 "{name} pattern")
        # /primes?n=: a required integer with its bounds.
        n = params_of(doc, paths["/primes"]["get"])[("query", "n")]
        check_eq((n["required"], n["schema"]["type"], n["schema"]["minimum"],
                  n["schema"]["maximum"]), (True, "integer", 1, 100000000),
                 "/primes ?n=")
        # Policies: /tasks gathers (200 results), /run-tasks takes one.
        resp = resolve(doc, paths["/tasks"]["get"]["responses"]["200"])
        check_eq(resolve(doc, resp["content"]["application/json"]
                         ["schema"])["required"], ["results"],
                 "/tasks answer")
        resp = resolve(doc, paths["/run-tasks"]["get"]["responses"]["200"])
        check_eq(resolve(doc, resp["content"]["application/json"]
                         ["schema"])["required"],
                 ["result", "job", "pending"], "/run-tasks answer")
        check_eq(paths["/tasks"]["get"]["x-taskpoold"]["jobs"],
                 ["task1", "task2"], "/tasks x-taskpoold.jobs")
        d.stop()


def test_shipped_config_document_validates():
    have_validator()
    with Daemon(config_text=shipped_config_text()) as d:
        _, body = fetch(d)
        validate(body, "the shipped config's document")
        d.stop()


# ---- every parameter type -----------------------------------------------------

def test_parameters_of_every_type():
    with Daemon(CONFIG) as d:
        doc, body = fetch(d)
        check_routes_match(doc, {"/items/{name}": "get", "/submit": "post",
                                 "/fire/{mode}": "put", "/a-b": "get",
                                 "/a_b": "delete"})
        check(SECRET_DEFAULT.encode() not in body,
              "a secret's default is not in the document")
        paths = doc["paths"]

        # GET: {name} from the path (two jobs declare it: both apply),
        # the rest from the query string.
        op = paths["/items/{name}"]["get"]
        ps = params_of(doc, op)
        check_eq(sorted(ps), sorted([
            ("path", "name"), ("query", "count"), ("query", "mode"),
            ("query", "verbose"), ("query", "token"), ("query", "note"),
            ("query", "big"), ("query", "code"), ("query", "tag"),
            ("query", "level"), ("header", "Prefer")]), "GET parameters")
        check_eq([s["maxLength"] for s in ps[("path", "name")]["schema"]
                  ["allOf"]], [32, 16], "{name}: each job's declaration")
        check_eq(ps[("query", "count")]["schema"],
                 {"type": "integer", "format": "int64", "minimum": 1,
                  "maximum": 5, "default": 1}, "int count")
        check_eq(ps[("query", "count")]["required"], False, "count required")
        check_eq(ps[("query", "mode")]["schema"],
                 {"type": "string", "enum": ["fast", "slow"],
                  "default": "fast"}, "enum mode")
        check_eq(ps[("query", "verbose")]["schema"],
                 {"type": "boolean", "default": False}, "bool verbose")
        check("yes" in ps[("query", "verbose")]["description"],
              "a bool's text forms are described")
        token = ps[("query", "token")]["schema"]
        check_eq((token.get("writeOnly"), token.get("format"),
                  "default" in token), (True, "password", False),
                 "secret token: writeOnly, password, no default")
        check_eq(ps[("query", "note")]["required"], True, "note required")
        check_eq(ps[("query", "note")]["schema"]["maxLength"], 16,
                 "note maxLength")
        check(ps[("query", "note")]["schema"]["pattern"].startswith(
            "^(?!-)"), "a string without pattern may not start with '-'")
        check_eq(ps[("query", "big")]["schema"],
                 {"type": "integer", "format": "int64"}, "int big")
        code = ps[("query", "code")]["schema"]
        check("pattern" not in code and "[[:digit:]]+" in
              code["description"] and "^(" in code["description"],
              "a POSIX-only pattern is in the description only: %r" % code)
        check_eq(ps[("query", "tag")]["schema"]["pattern"],
                 "^([a-z]{2,4}(-[a-z0-9]+)?)$", "tag pattern")
        check_eq(ps[("query", "level")]["schema"]["minimum"], -3,
                 "level minimum")
        responses = set(op["responses"])
        check_eq(responses, {"200", "202", "400", "405", "413", "415",
                             "502", "503", "504"}, "GET route responses")

        # POST: a JSON body without undeclared members; Idempotency-Key.
        op = paths["/submit"]["post"]
        ps = params_of(doc, op)
        check_eq(sorted(ps), [("header", "Idempotency-Key"),
                              ("header", "Prefer")], "POST parameters")
        schema = body_schema(doc, op)
        check_eq((schema["type"], schema["additionalProperties"],
                  sorted(schema["required"])),
                 ("object", False, ["big", "name", "note"]), "POST body")
        check_eq(sorted(schema["properties"]), sorted([
            "name", "count", "mode", "verbose", "token", "note", "big",
            "code", "tag"]), "POST body members")
        check_eq(resolve(doc, op["requestBody"])["required"], True,
                 "POST body required")
        check("query string" in op["description"],
              "the description says the query string works too")
        check_eq(set(op["responses"]), {"200", "202", "400", "405", "413",
                                        "415", "422", "502", "503", "504"},
                 "POST route responses")

        # PUT, wait none: 202 at once, nothing to time out.
        op = paths["/fire/{mode}"]["put"]
        check_eq(params_of(doc, op)[("path", "mode")]["schema"]["enum"],
                 ["fast", "slow"], "{mode} enum")
        check("mode" not in body_schema(doc, op)["properties"],
              "a path parameter is not a body member")
        check_eq(set(op["responses"]), {"202", "400", "405", "413", "415",
                                        "503"}, "wait none responses")

        # Two paths that make the same operationId: made unique.
        check_eq((paths["/a-b"]["get"]["operationId"],
                  paths["/a_b"]["delete"]["operationId"]),
                 ("get_a_b", "delete_a_b"), "operationIds")
        check_eq(paths["/a-b"]["get"]["x-taskpoold"],
                 {"jobs": ["beta"], "wait": "any", "timeout_s": 1.5,
                  "losers": "cancel", "on_disconnect": "cancel"},
                 "/a-b x-taskpoold")

        # POST /jobs takes each configured job with its own parameters.
        run = doc["components"]["schemas"]["RunRequest"]
        items = run["properties"]["jobs"]["items"]["oneOf"]
        check_eq([i["properties"]["job"]["const"] for i in items],
                 ["alpha", "beta"], "POST /jobs: the configured jobs")
        check_eq(items[0]["required"], ["job", "params"],
                 "alpha has required parameters")
        alpha = resolve(doc, items[0]["properties"]["params"])
        check_eq(sorted(alpha["required"]), ["big", "name", "note"],
                 "alpha's required parameters")
        check_eq(items[1]["required"], ["job"], "beta's are all optional")
        d.stop()


def test_parameters_of_every_type_validate():
    have_validator()
    with Daemon(CONFIG) as d:
        _, body = fetch(d)
        validate(body, "the every-type config's document")
        d.stop()


def test_head_and_other_methods():
    with Daemon(CONFIG) as d:
        _, body = fetch(d)
        status, headers, got, _ = d.request("HEAD", "/openapi.json")
        check_eq((status, got), (200, b""), "HEAD /openapi.json")
        check_eq(header(headers, "Content-Length"), str(len(body)),
                 "HEAD /openapi.json Content-Length")
        status, headers, got, _ = d.request("POST", "/openapi.json",
                                            body="{}")
        check_problem(status, headers, got, 405, "POST /openapi.json")
        check_eq(header(headers, "Allow"), "GET, HEAD", "Allow")
        d.stop()


# ---- reload ----------------------------------------------------------------

RELOADED = CONFIG.replace("[route /a_b]", "[route /added/{level}]\n"
                          "method = PATCH\njobs = beta\n\n[route /a_c]")


def test_reload_changes_the_document():
    with Daemon(CONFIG) as d:
        before, _ = fetch(d)
        check("/added/{level}" not in before["paths"], "no /added yet")
        n = len(d.log_lines())
        d.write_config(RELOADED, d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded .*: 2 jobs, 6 routes$", start=n,
                       timeout=10.0, what="the reload")
        after, body = fetch(d)
        check_routes_match(after, {"/items/{name}": "get", "/submit": "post",
                                   "/fire/{mode}": "put", "/a-b": "get",
                                   "/added/{level}": "patch",
                                   "/a_c": "delete"})
        level = params_of(after, after["paths"]["/added/{level}"]["patch"])[
            ("path", "level")]
        check_eq((level["schema"]["minimum"], level["schema"]["maximum"]),
                 (-3, 3), "{level} bounds")
        check_eq(after["info"], before["info"], "info is the same")
        d.stop()
        validate(body, "the reloaded document")


if __name__ == "__main__":
    run_tests(globals())
