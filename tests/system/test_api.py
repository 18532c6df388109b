"""taskpoold system test: the HTTP API with short jobs.

Each test starts its own daemon (-l 127.0.0.1:0) with a config of short
sleep jobs, so that the timings stay well above scheduling noise on a busy
2-core machine while the whole file runs in about half a minute.
"""

import datetime
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, check, check_between,  # noqa: E402
                            check_eq, check_problem, dumps, fail, header,
                            latency_bound, log, run_tests, RFC3339_RE,
                            JOB_END_RE)

INSTANCE = "apitest"
ID_RE = re.compile(r"^%s-[0-9a-f]{8}-[0-9]+$" % INSTANCE)

JOBS = """
[job fast]
kind = sleep
duration = 100ms
result = fast result

[job mid]
kind = sleep
duration = 200ms
result = mid result

[job slow]
kind = sleep
duration = 500ms
result = slow result

[job long]
kind = sleep
duration = 1s
result = long result
"""

ROUTES = """
# gather, in the listed order (mid finishes last but comes first)
[route /all]
jobs = mid fast
wait = all

# the first listed job (mid), although fast finishes before it
[route /first]
jobs = mid fast slow
wait = first

# whichever finishes first (fast)
[route /any]
jobs = slow fast
wait = any

# at once, 202
[route /none]
method = POST
jobs = fast long
wait = none

# the deadline passes before slow is done: 504, slow goes on
[route /deadline]
jobs = fast slow
wait = all
timeout = 250ms
"""


def config(server="", registry="", extra=""):
    return ("[server]\ninstance = %s\n%s\n" % (INSTANCE, server) +
            ("[registry]\n%s\n" % registry if registry else "") +
            JOBS + ROUTES + extra)


CONFIG = config()


# ---- helpers ----------------------------------------------------------------

def check_json_response(status, headers, body, expect_status, what):
    check_eq(status, expect_status, "%s: status (body %r)" % (what, body))
    check_eq(header(headers, "Content-Type"), "application/json",
             "%s: Content-Type" % what)
    try:
        return json.loads(body)
    except ValueError:
        fail("%s: body is not JSON: %r" % (what, body))


def check_link(link, job, what):
    """A {"id", "job", "href"} pointer to a job instance; returns the id."""
    check(isinstance(link, dict), "%s: link is not an object: %r"
          % (what, link))
    check_eq(list(link.keys()), ["id", "job", "href"], "%s: link keys" % what)
    check(ID_RE.match(link["id"]) is not None,
          "%s: id %r does not look like %s-BOOT-SEQ" % (what, link["id"],
                                                       INSTANCE))
    check_eq(link["job"], job, "%s: job name" % what)
    check_eq(link["href"], "/jobs/" + link["id"], "%s: href" % what)
    return link["id"]


def parse_time(s):
    check(isinstance(s, str) and RFC3339_RE.match(s) is not None,
          "time %r is not RFC 3339 UTC with milliseconds" % (s,))
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def job_record(d, job_id):
    status, headers, body, _ = d.request("GET", "/jobs/" + job_id)
    rec = check_json_response(status, headers, body, 200,
                              "GET /jobs/" + job_id)
    check_eq(list(rec.keys()), ["id", "job", "state", "result", "error",
                                "created", "started", "finished", "params"],
             "job record keys")
    check_eq(rec["id"], job_id, "job record id")
    # These jobs declare no parameters (test_params.py has those that do).
    check_eq(rec["params"], {}, "job record params")
    return rec


def wait_job_state(d, job_id, state, timeout):
    deadline = time.monotonic() + timeout
    while True:
        rec = job_record(d, job_id)
        if rec["state"] == state:
            return rec
        if time.monotonic() > deadline:
            fail("job %s is still %r after %.1f s, expected %r: %r"
                 % (job_id, rec["state"], timeout, state, rec))
        time.sleep(0.05)


def check_succeeded(rec, name, result):
    check_eq(rec["job"], name, "job name of %s" % rec["id"])
    check_eq(rec["state"], "succeeded", "state of %s" % rec["id"])
    check_eq(rec["result"], result, "result of %s" % rec["id"])
    check_eq(rec["error"], None, "error of %s" % rec["id"])
    created = parse_time(rec["created"])
    started = parse_time(rec["started"])
    finished = parse_time(rec["finished"])
    check(created <= started <= finished,
          "times out of order: %r" % rec)
    return started, finished


def health(d):
    status, headers, body, elapsed = d.request("GET", "/healthz")
    return check_json_response(status, headers, body, 200, "GET /healthz")


def read_one_response(stream):
    """(status, body) of the next Content-Length framed response on a
    buffered stream, leaving what follows it for the next call."""
    status = int(stream.readline().split(b" ")[1])
    length = 0
    while True:
        line = stream.readline()
        check(line != b"", "connection closed inside a response header")
        if line == b"\r\n":
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, stream.read(length)


def wait_idle(d, timeout=5.0):
    """Waits until no job instance is live."""
    deadline = time.monotonic() + timeout
    while True:
        h = health(d)
        if h["jobs_live"] == 0:
            return h
        if time.monotonic() > deadline:
            fail("jobs still live after %.1f s: %r" % (timeout, h))
        time.sleep(0.05)


def job_end_lines(d):
    """[(name, verb, id)] of every job-end log line."""
    out = []
    for _, line in d.log_lines():
        m = JOB_END_RE.search(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(4)))
    return out


def check_no_job_started(d, what):
    h = health(d)
    check_eq((h["jobs_live"], h["jobs_finished"]), (0, 0),
             "%s: job instances (live, finished)" % what)


# ---- wait policies ----------------------------------------------------------

def test_wait_all_gathers_in_listed_order():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/all")
        log("  GET /all: %d in %.3f s" % (status, elapsed))
        check_json_response(status, headers, body, 200, "GET /all")
        check_eq(body, b'{"results": ["mid result", "fast result"]}',
                 "GET /all body")
        check_eq(header(headers, "Content-Length"), str(len(body)),
                 "Content-Length")
        # mid is 200 ms, fast 100 ms: the longest, not the sum (300 ms)
        # nor the shortest.
        check_between(elapsed, 0.18, 0.6, "GET /all (100 ms and 200 ms jobs)")


def test_wait_first_answers_with_the_first_listed_job():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/first")
        log("  GET /first: %d in %.3f s" % (status, elapsed))
        v = check_json_response(status, headers, body, 200, "GET /first")
        check_between(elapsed, 0.18, 0.6, "GET /first (first job 200 ms)")
        check(isinstance(v, dict) and isinstance(v.get("pending"), list) and
              len(v["pending"]) == 2, "GET /first: bad shape %r" % (v,))
        fast_id = check_link(v["pending"][0], "fast", "pending[0]")
        slow_id = check_link(v["pending"][1], "slow", "pending[1]")
        check(fast_id != slow_id, "pending jobs share an id")
        expected = {"result": "mid result", "job": "mid", "pending": [
            {"id": fast_id, "job": "fast", "href": "/jobs/" + fast_id},
            {"id": slow_id, "job": "slow", "href": "/jobs/" + slow_id}]}
        check_eq(body, dumps(expected), "GET /first body")

        # fast finished (100 ms) before the answer; slow goes on detached.
        check_succeeded(wait_job_state(d, fast_id, "succeeded", 2.0),
                        "fast", "fast result")
        s, f = check_succeeded(wait_job_state(d, slow_id, "succeeded", 3.0),
                               "slow", "slow result")
        check_between(f - s, 0.49, 0.8, "slow's started..finished")


def test_wait_any_answers_with_the_fastest_job():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/any")
        log("  GET /any: %d in %.3f s" % (status, elapsed))
        v = check_json_response(status, headers, body, 200, "GET /any")
        # fast is 100 ms, slow 500 ms.
        check_between(elapsed, 0.08, 0.4, "GET /any (100 ms and 500 ms)")
        check(isinstance(v, dict) and isinstance(v.get("pending"), list) and
              len(v["pending"]) == 1, "GET /any: bad shape %r" % (v,))
        slow_id = check_link(v["pending"][0], "slow", "pending[0]")
        expected = {"result": "fast result", "job": "fast", "pending": [
            {"id": slow_id, "job": "slow", "href": "/jobs/" + slow_id}]}
        check_eq(body, dumps(expected), "GET /any body")
        check_succeeded(wait_job_state(d, slow_id, "succeeded", 3.0),
                        "slow", "slow result")


def test_wait_none_accepts_at_once_and_jobs_run_on():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("POST", "/none")
        t_answer = time.time()
        log("  POST /none: %d in %.3f s" % (status, elapsed))
        v = check_json_response(status, headers, body, 202, "POST /none")
        check(elapsed < latency_bound(0.5), "POST /none took %.3f s; wait "
              "= none must answer at once (its jobs take 100 ms and 1 s)"
              % elapsed)
        check(isinstance(v, dict) and isinstance(v.get("jobs"), list) and
              len(v["jobs"]) == 2, "POST /none: bad shape %r" % (v,))
        fast_id = check_link(v["jobs"][0], "fast", "jobs[0]")
        long_id = check_link(v["jobs"][1], "long", "jobs[1]")
        expected = {"jobs": [
            {"id": fast_id, "job": "fast", "href": "/jobs/" + fast_id},
            {"id": long_id, "job": "long", "href": "/jobs/" + long_id}]}
        check_eq(body, dumps(expected), "POST /none body")

        # long (1 s) is still running now: result and finished are null.
        rec = job_record(d, long_id)
        check_eq(rec["job"], "long", "job name")
        check_eq(rec["state"], "running", "state of the 1 s job right after "
                 "the 202 (record %r)" % rec)
        check_eq((rec["result"], rec["error"], rec["finished"]),
                 (None, None, None), "result, error, finished while running")
        created = parse_time(rec["created"])
        started = parse_time(rec["started"])
        check(created <= started, "created after started: %r" % rec)
        check(abs(t_answer - created) < 5.0, "created %r is not about now"
              % rec["created"])

        rec = wait_job_state(d, long_id, "succeeded", 3.0)
        s, f = check_succeeded(rec, "long", "long result")
        check_eq(rec["created"], job_record(d, long_id)["created"],
                 "created is stable")
        check_between(f - s, 0.99, 1.4, "long's started..finished")
        check_succeeded(job_record(d, fast_id), "fast", "fast result")


def test_route_deadline_gives_504_and_jobs_go_on():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/deadline")
        log("  GET /deadline: %d in %.3f s" % (status, elapsed))
        p = check_problem(status, headers, body, 504, "GET /deadline")
        check_between(elapsed, 0.23, 0.6, "GET /deadline (timeout 250 ms)")
        # Every job's state, the result of those done, and links to
        # those still going.
        check(isinstance(p.get("jobs"), list) and len(p["jobs"]) == 2,
              "504 problem should list both jobs: %r" % (p,))
        fast, slow = p["jobs"]
        fast_id, slow_id = fast["id"], slow["id"]
        check(ID_RE.match(slow_id) is not None, "bad id %r" % slow_id)
        expected = {
            "type": "about:blank", "title": "Gateway Timeout",
            "status": 504,
            "detail": "the deadline of 0.250 s passed; unfinished jobs "
                      "go on",
            "jobs": [{"id": fast_id, "job": "fast",
                      "href": "/jobs/" + fast_id, "state": "succeeded",
                      "result": "fast result"},
                     {"id": slow_id, "job": "slow",
                      "href": "/jobs/" + slow_id, "state": "running",
                      "error": None}],
            "pending": [{"id": slow_id, "job": "slow",
                         "href": "/jobs/" + slow_id}]}
        check_eq(body, dumps(expected), "GET /deadline body")

        # The jobs go on and finish into the registry and the log.
        check_succeeded(wait_job_state(d, slow_id, "succeeded", 3.0),
                        "slow", "slow result")
        wait_idle(d)
        d.wait_for_log(r" info: job slow done in ", timeout=2.0,
                       what="'job slow done'")
        names = sorted((n, v) for n, v, _ in job_end_lines(d))
        check_eq(names, [("fast", "done in"), ("slow", "done in")],
                 "job-end log lines")


# ---- resources and errors ---------------------------------------------------

def test_healthz():
    with Daemon(CONFIG) as d:
        status, headers, body, elapsed = d.request("GET", "/healthz")
        check_json_response(status, headers, body, 200, "GET /healthz")
        check_eq(body, b'{"status": "ok", "jobs_live": 0, '
                 b'"jobs_finished": 0, "queued": 0, "timers": 1, '
                 b'"clients_gone": 0}',
                 "GET /healthz body")
        check(elapsed < latency_bound(1.0),
              "GET /healthz took %.3f s" % elapsed)
        d.request("GET", "/all")
        h = health(d)
        check_eq(h, {"status": "ok", "jobs_live": 0, "jobs_finished": 2,
                     "queued": 0, "timers": 1, "clients_gone": 0},
                 "/healthz after GET /all")


def test_answer_comes_after_its_deadline_is_disarmed():
    # The run disarms its route deadline before it publishes the answer,
    # so a client that reads /healthz right after its answer never finds
    # that deadline armed.  (It used to publish first: under make -j2
    # check, test_healthz read timers = 2 now and then.)  200 rounds, each
    # answered by the timer thread, the one that also disarms.
    extra = ("[job short]\nkind = sleep\nduration = 2ms\nresult = s\n"
             "[route /short]\njobs = short\nwait = all\ntimeout = 1h\n")
    with Daemon(config(extra=extra)) as d:
        armed = []
        for i in range(200):
            status, _, body, _ = d.request("GET", "/short")
            check_eq((status, body), (200, b'{"results": ["s"]}'),
                     "GET /short")
            # 1 is the registry's expiry (0 while it runs).
            timers = health(d)["timers"]
            if timers > 1:
                armed.append((i, timers))
        check_eq(armed, [], "(round, timers) where a deadline was still "
                 "armed after its answer")


def test_pipelined_requests_on_one_connection_are_answered_in_order():
    # Three requests written at once on one keep-alive connection: the
    # first waits for its jobs (suspended), the others wait behind it in
    # the socket; each gets its own answer, in order.
    with Daemon(CONFIG) as d:
        req = (b"GET /any HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close"
               b"\r\n\r\n")
        with socket.create_connection(("127.0.0.1", d.port),
                                      timeout=10.0) as sock:
            sock.sendall(req)
            stream = sock.makefile("rb")
            statuses = []
            bodies = []
            for _ in range(3):
                status, body = read_one_response(stream)
                statuses.append(status)
                bodies.append(body)
        check_eq(statuses, [200, 200, 404], "statuses, in order")
        check_eq(json.loads(bodies[0])["result"], "fast result",
                 "first answer")
        check_eq(json.loads(bodies[1])["status"], "ok", "second answer")
        check_eq(d.get_json("/healthz")["clients_gone"], 0,
                 "pipelined data is no hang-up")


def test_runs_answered_at_once_leave_no_deadline_armed():
    # Zero-length jobs complete while the request is being handled; their
    # route deadline must not stay armed (and hold the request's memory)
    # for the whole timeout.
    extra = ("[job zero]\nkind = sleep\nduration = 0\nresult = z\n"
             "[route /zero]\njobs = zero zero\nwait = all\ntimeout = 1h\n")
    with Daemon(config(extra=extra)) as d:
        for _ in range(50):
            status, _, body, _ = d.request("GET", "/zero")
            check_eq((status, body), (200, b'{"results": ["z", "z"]}'),
                     "GET /zero")
        check_eq(health(d)["timers"], 1, "armed timers after 50 GET /zero "
                 "(only the registry's expiry)")


def test_head_reads_builtin_resources_but_not_routes():
    with Daemon(CONFIG) as d:
        status, headers, body, _ = d.request("HEAD", "/healthz")
        check_eq((status, body), (200, b""), "HEAD /healthz")
        check_eq(header(headers, "Content-Type"), "application/json",
                 "HEAD /healthz: Content-Type")
        # HEAD on a route would start its jobs: refused.
        status, headers, body, _ = d.request("HEAD", "/all")
        check_eq(status, 405, "HEAD /all")
        check_eq(header(headers, "Allow"), "GET", "HEAD /all: Allow")
        check_no_job_started(d, "after HEAD")


def test_http11_request_without_host_is_400():
    with Daemon(CONFIG) as d:
        status, headers, body = d.raw_request(
            b"GET /all HTTP/1.1\r\nConnection: close\r\n\r\n")
        check_eq(status, 400, "HTTP/1.1 without Host")
        check_no_job_started(d, "after a request without Host")


def test_unknown_job_id_is_404():
    with Daemon(CONFIG) as d:
        for path in ("/jobs/nonexistent", "/jobs/%s-00000000-1" % INSTANCE):
            status, headers, body, _ = d.request("GET", path)
            check_problem(status, headers, body, 404, "GET " + path,
                          detail="no such job (it may have expired from "
                                 "the registry)")
        status, headers, body, _ = d.request("GET", "/jobs/")
        check_problem(status, headers, body, 404, "GET /jobs/")


def test_unknown_path_is_404():
    with Daemon(CONFIG) as d:
        for method, path in (("GET", "/nope"), ("POST", "/nope"),
                             ("GET", "/all/extra"), ("GET", "/"),
                             ("GET", "/jobs/a/b")):
            status, headers, body, _ = d.request(method, path)
            p = check_problem(status, headers, body, 404,
                              "%s %s" % (method, path))
            check_eq(body, dumps({"type": "about:blank",
                                  "title": "Not Found", "status": 404,
                                  "detail": p.get("detail")}),
                     "%s %s body" % (method, path))
        check_no_job_started(d, "after 404s")


def test_wrong_method_is_405_with_allow():
    with Daemon(CONFIG) as d:
        for method, path, allow in (("POST", "/all", "GET"),
                                    ("PUT", "/first", "GET"),
                                    ("GET", "/none", "POST"),
                                    ("POST", "/healthz", "GET, HEAD"),
                                    ("POST", "/jobs/some-id", "GET, HEAD, DELETE")):
            status, headers, body, _ = d.request(method, path, body=b"")
            what = "%s %s" % (method, path)
            check_problem(status, headers, body, 405, what,
                          detail="%s is not allowed here; use %s"
                          % (method, allow))
            check_eq(header(headers, "Allow"), allow, what + ": Allow")
            check_eq(body, dumps({
                "type": "about:blank", "title": "Method Not Allowed",
                "status": 405, "detail": "%s is not allowed here; use %s"
                % (method, allow)}), what + ": body")
        check_no_job_started(d, "after 405s")


def test_query_string_is_not_part_of_the_route():
    # Its arguments are parameters (test_params.py); an empty one is none.
    with Daemon(CONFIG) as d:
        status, headers, body, _ = d.request("GET", "/all?")
        check_json_response(status, headers, body, 200, "GET /all?")
        check_eq(body, b'{"results": ["mid result", "fast result"]}',
                 "GET /all? body")


# ---- request framing (smuggling guards, body size) --------------------------

def test_method_that_is_not_a_token_is_400():
    # MHD passes any bytes as the method; they must not reach the 405's
    # detail (not UTF-8: a 500) or the log.
    with Daemon(CONFIG) as d:
        for method in (b"P\xffST", b"GE(T", b"G\x7fET"):
            req = (method + b" /all HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Connection: close\r\n\r\n")
            status, headers, body = d.raw_request(req)
            check_problem(status, headers, body, 400, "method %r" % method,
                          detail="malformed request method")
        # A well-formed method this server does not know: 501 (RFC 9110
        # 9.1); a known one not allowed on the route is a 405.
        status, headers, body = d.raw_request(
            b"BREW /all HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: close\r\n\r\n")
        check_problem(status, headers, body, 501, "method BREW",
                      detail="unknown request method")
        status, headers, body = d.raw_request(
            b"PATCH /all HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Connection: close\r\n\r\n")
        check_problem(status, headers, body, 405, "method PATCH",
                      detail="PATCH is not allowed here; use GET")
        check_no_job_started(d, "after malformed methods")


def test_two_content_lengths_are_refused():
    with Daemon(CONFIG) as d:
        for lengths in ((2, 2), (2, 10)):
            req = ("POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %d\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n{}" % lengths).encode()
            status, headers, body = d.raw_request(req)
            check_problem(status, headers, body, 400,
                          "Content-Length: %d and %d" % lengths,
                          detail="more than one Content-Length header")
        check_no_job_started(d, "after two Content-Lengths")


def test_content_length_with_transfer_encoding_is_refused():
    with Daemon(CONFIG) as d:
        req = (b"POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\n"
               b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               b"2\r\n{}\r\n0\r\n\r\n")
        status, headers, body = d.raw_request(req)
        check_problem(status, headers, body, 400,
                      "Content-Length with Transfer-Encoding",
                      detail="both Content-Length and Transfer-Encoding")
        # Also with the headers the other way round.
        req = (b"POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Transfer-Encoding: chunked\r\nContent-Length: 7\r\n"
               b"Connection: close\r\n\r\n"
               b"2\r\n{}\r\n0\r\n\r\n")
        status, headers, body = d.raw_request(req)
        check_problem(status, headers, body, 400,
                      "Transfer-Encoding with Content-Length",
                      detail="both Content-Length and Transfer-Encoding")
        check_no_job_started(d, "after Content-Length + Transfer-Encoding")
        status, headers, body, _ = d.request("GET", "/healthz")
        check_eq(status, 200, "/healthz after the refused requests")


def test_unsupported_transfer_encoding_is_refused():
    with Daemon(CONFIG) as d:
        body = b"2\r\n{}\r\n0\r\n\r\n"
        # Without a final chunked, once, the length is unknown: 400 (RFC
        # 9112 6.3); framed, with a coding not implemented: 501 (6.1).
        unframed = "Transfer-Encoding must end in chunked, once"
        unknown = "unsupported transfer coding (only chunked is)"
        for codings, status_, detail in (
                (["gzip"], 400, unframed), (["identity"], 400, unframed),
                (["chunked", "chunked"], 400, unframed),
                (["chunked, gzip"], 400, unframed),
                (["gzip, chunked"], 501, unknown)):
            req = (b"POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                   b"".join(b"Transfer-Encoding: %s\r\n" % c.encode()
                            for c in codings) +
                   b"Connection: close\r\n\r\n" + body)
            status, headers, rbody = d.raw_request(req, timeout=5.0)
            check_problem(status, headers, rbody, status_,
                          "Transfer-Encoding: %s" % " + ".join(codings),
                          detail=detail)
        check_no_job_started(d, "after unsupported Transfer-Encodings")
        # A lone chunked is fine.
        req = (b"POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
               body)
        status, headers, rbody = d.raw_request(req, timeout=5.0)
        check_json_response(status, headers, rbody, 202,
                            "POST /none with a chunked body")


def test_body_over_64k_is_413():
    limit = 64 * 1024
    with Daemon(CONFIG) as d:
        # Declared too large: answered at once, without reading the body.
        req = ("POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (limit + 1)).encode()
        t0 = time.monotonic()
        status, headers, body = d.raw_request(req)
        elapsed = time.monotonic() - t0
        check_problem(status, headers, body, 413, "Content-Length 64K+1",
                      detail="request body too large")
        check(elapsed < latency_bound(2.0), "the 413 took %.2f s (it must "
              "not wait for the body)" % elapsed)

        # Chunked, too large once read.
        chunk = b"x" * 4096
        parts = [b"POST /none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"]
        for _ in range(limit // len(chunk) + 2):
            parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        parts.append(b"0\r\n\r\n")
        status, headers, body = d.raw_request(b"".join(parts))
        check_problem(status, headers, body, 413, "chunked body 72K",
                      detail="request body too large")
        check_no_job_started(d, "after 413s")

        # Exactly 64 KiB (an empty JSON object, padded) is fine.
        payload = b"{" + b" " * (limit - 2) + b"}"
        status, headers, body, _ = d.request(
            "POST", "/none", headers={"Content-Type": "application/json"},
            body=payload)
        check_json_response(status, headers, body, 202,
                            "POST /none with a 64 KiB body")


# ---- the log ----------------------------------------------------------------

def test_log_has_one_done_line_per_finished_job():
    with Daemon(CONFIG) as d:
        expected = {}	# id -> name, where the answers tell the id
        started = 0
        results = []

        def call(method, path):
            results.append((method, path) + d.request(method, path)[:3])

        threads = [threading.Thread(target=call, args=a) for a in
                   [("GET", "/all"), ("GET", "/first"), ("GET", "/any"),
                    ("POST", "/none"), ("GET", "/deadline"),
                    ("GET", "/all"), ("POST", "/none")]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        started = 2 + 3 + 2 + 2 + 2 + 2 + 2
        for method, path, status, headers, body in results:
            v = json.loads(body)
            for link in v.get("pending", []) + v.get("jobs", []):
                expected[link["id"]] = link["job"]
        check_eq(len(results), 7, "answers")
        wait_idle(d)
        # The lines are written before the jobs count as finished; give the
        # pipe a moment, then a little more to catch any extra line.
        deadline = time.monotonic() + 5.0
        while len(d.job_done_lines()) < started and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)

        done = d.job_done_lines()
        ids = [i for _, _, _, i in done]
        for i in set(ids):
            check_eq(ids.count(i), 1, "'done' lines for job id %s" % i)
        check_eq(len(done), started, "number of 'job NAME done' lines "
                 "(one per job started)")
        for _, name, secs, i in done:
            if i in expected:
                check_eq(name, expected[i], "job name logged for %s" % i)
        for i in expected:
            check(i in ids, "no 'done' line for job %s (%s)"
                  % (i, expected[i]))
        by_name = {}
        for _, name, secs, _ in done:
            by_name.setdefault(name, []).append(secs)
        durations = {"fast": 0.1, "mid": 0.2, "slow": 0.5, "long": 1.0}
        for name, secs in by_name.items():
            for s in secs:
                check_between(s, durations[name] - 0.01,
                              durations[name] + 0.3,
                              "logged run time of a %s job" % name)
        check_eq(sorted(by_name), ["fast", "long", "mid", "slow"],
                 "job names in the log")
        check_eq(len(job_end_lines(d)), started,
                 "job-end lines of any kind (no failures or cancels)")
        h = health(d)
        check_eq(h["jobs_finished"], started, "/healthz jobs_finished")


# ---- the registry -----------------------------------------------------------

def test_registry_retain_expires_finished_jobs():
    with Daemon(config(registry="retain = 1s")) as d:
        t0 = time.monotonic()
        status, headers, body, _ = d.request("GET", "/any")
        v = check_json_response(status, headers, body, 200, "GET /any")
        slow_id = v["pending"][0]["id"]
        # slow finishes 500 ms after the request, then stays >= 1 s.
        check_succeeded(wait_job_state(d, slow_id, "succeeded", 3.0),
                        "slow", "slow result")
        t_found = time.monotonic() - t0
        while True:
            status, headers, body, _ = d.request("GET", "/jobs/" + slow_id)
            now = time.monotonic() - t0
            if status == 404:
                break
            check_eq(status, 200, "GET /jobs/%s before expiry" % slow_id)
            if now > 6.0:
                fail("job %s still in the registry %.1f s after its "
                     "request; retain is 1 s" % (slow_id, now))
            time.sleep(0.05)
        check_problem(status, headers, body, 404, "expired job")
        log("  job seen succeeded at %.2f s, gone (404) at %.2f s after "
            "the request" % (t_found, now))
        # It finished at >= 0.5 s, so it may go at 1.5 s at the earliest;
        # the expiry sweep runs every second, so it is gone by about 2.5 s.
        check_between(now, 1.45, 4.0, "time from request to expiry")


def test_registry_full_gives_503_with_retry_after():
    extra = """
[job hold]
kind = sleep
duration = 1500ms
result = held

[route /hold]
method = POST
jobs = hold
wait = none

[route /hold2]
method = POST
jobs = hold hold
wait = none
"""
    with Daemon(config(registry="max_jobs = 16", extra=extra)) as d:
        t0 = time.monotonic()
        for i in range(15):
            status, headers, body, _ = d.request("POST", "/hold")
            check_json_response(status, headers, body, 202,
                                "POST /hold #%d" % (i + 1))
        # 15 live: a two-job route gets one in and not the other, so the
        # one started is cancelled and the request refused.
        status, headers, body, _ = d.request("POST", "/hold2")
        check_problem(status, headers, body, 503, "POST /hold2 (15 of 16)",
                      detail="too many jobs in flight; try again later")
        check_eq(header(headers, "Retry-After"), "1", "Retry-After")
        _, line, m = d.wait_for_log(JOB_END_RE, timeout=2.0,
                                    what="the cancelled job of /hold2")
        check_eq((m.group(1), m.group(2)), ("hold", "cancelled after"),
                 "the job of the refused /hold2 (%s)" % line)
        rec = job_record(d, m.group(4))
        check_eq(rec["state"], "cancelled", "state of the refused job")

        # The 16th live job evicts the cancelled (finished) one ...
        status, headers, body, _ = d.request("POST", "/hold")
        check_json_response(status, headers, body, 202, "POST /hold #16")
        status, headers, body, _ = d.request("GET", "/jobs/" + m.group(4))
        check_problem(status, headers, body, 404, "the evicted job")
        # ... and then it is full of running jobs.
        status, headers, body, _ = d.request("POST", "/hold")
        check_problem(status, headers, body, 503, "POST /hold #17",
                      detail="too many jobs in flight; try again later")
        check_eq(header(headers, "Retry-After"), "1", "Retry-After")
        check(time.monotonic() - t0 < 1.4, "filling the registry took too "
              "long (%.2f s) for the 1.5 s jobs to be still running"
              % (time.monotonic() - t0))
        h = health(d)
        check_eq(h["jobs_live"], 16, "/healthz jobs_live when full")

        # Once they finish, finished ones make room again.
        wait_idle(d, timeout=5.0)
        status, headers, body, _ = d.request("POST", "/hold")
        check_json_response(status, headers, body, 202,
                            "POST /hold after the jobs finished")
        d.stop()
        check_eq(sum(1 for _, n, _, _ in d.job_done_lines() if n == "hold"),
                 17, "'job hold done' lines")


# ---- stopping ---------------------------------------------------------------

def test_sigterm_drains_running_jobs_and_requests():
    with Daemon(CONFIG) as d:
        status, headers, body, _ = d.request("POST", "/none")
        v = check_json_response(status, headers, body, 202, "POST /none")
        long_id = v["jobs"][1]["id"]
        answer = {}

        def waiting_request():
            answer["r"] = d.request("GET", "/deadline")[:3]

        # A request that waits (the 250 ms deadline of /deadline) while
        # the daemon stops: it must still get its answer.
        t = threading.Thread(target=waiting_request)
        t.start()
        deadline = time.monotonic() + 5
        while True:	# until GET /deadline's two jobs exist too
            h = health(d)
            if h["jobs_live"] + h["jobs_finished"] >= 4:
                break
            check(time.monotonic() < deadline, "GET /deadline never came in")
            time.sleep(0.01)
        d.send_signal(signal.SIGTERM)
        rc, elapsed = d.wait_exit(timeout=10.0)
        t.join(10)
        log("  SIGTERM with a 1 s job running: exit %d after %.2f s"
            % (rc, elapsed))
        check_eq(rc, 0, "exit status after SIGTERM")
        # The 1 s job was started ~0.1 s before: it is waited for.
        check_between(elapsed, 0.5, 3.0, "SIGTERM to exit, draining a 1 s "
                      "job")
        status, headers, body = answer.get("r", (None, None, None))
        check_problem(status, headers, body, 504,
                      "the request waiting during the stop")
        lines = [l for _, l in d.log_lines()]
        done = [i for i, l in enumerate(lines)
                if "job long done" in l and long_id in l]
        stopped = [i for i, l in enumerate(lines) if l.endswith(" stopped")]
        check(len(done) == 1, "no 'job long done' line for %s; log:\n%s"
              % (long_id, d.log_text()))
        check(stopped and done[0] < stopped[0],
              "the job finished after 'stopped'; log:\n%s" % d.log_text())
        check(not any("cancelled" in l for l in lines),
              "jobs were cancelled although they finish within "
              "drain_timeout; log:\n%s" % d.log_text())


def test_sigterm_waits_for_a_gathering_request():
    with Daemon(CONFIG) as d:
        answer = {}

        def waiting_request():
            answer["r"] = d.request("GET", "/all")[:4]

        t = threading.Thread(target=waiting_request)
        t.start()
        d.wait_for_log(r"job fast done", timeout=5.0)	# it is in
        d.send_signal(signal.SIGTERM)
        rc, elapsed = d.wait_exit(timeout=10.0)
        t.join(10)
        check_eq(rc, 0, "exit status")
        check("r" in answer, "the waiting request got no answer")
        status, headers, body, took = answer["r"]
        check_json_response(status, headers, body, 200,
                            "GET /all during the stop")
        check_eq(body, b'{"results": ["mid result", "fast result"]}',
                 "GET /all during the stop")


def test_while_draining_open_connections_get_503_and_healthz_says_so():
    with Daemon(CONFIG) as d:
        conns = [http.client.HTTPConnection(HOST, d.port, timeout=5.0)
                 for _ in range(2)]
        try:
            for conn in conns:
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                check_eq(json.loads(resp.read())["status"], "ok", "status")
            status, _, _, _ = d.request("POST", "/none")	# a 1 s job
            check_eq(status, 202, "POST /none")
            d.send_signal(signal.SIGTERM)
            d.wait_for_log(r" info: Terminated: stopping$", timeout=5.0)
            # Keep-alive connections opened before still work, and are
            # told to close after their answer.
            conns[0].request("GET", "/all")
            resp = conns[0].getresponse()
            check_problem(resp.status, resp.headers, resp.read(), 503,
                          "GET /all while stopping",
                          detail="the daemon is stopping")
            check_eq(resp.headers.get("Retry-After"), "1", "Retry-After")
            check_eq(resp.headers.get("Connection"), "close",
                     "Connection while stopping")
            conns[1].request("GET", "/healthz")
            resp = conns[1].getresponse()
            v = json.loads(resp.read())
            check_eq((resp.status, v["status"]), (200, "stopping"),
                     "/healthz while stopping (%r)" % v)
            check_eq(resp.headers.get("Connection"), "close",
                     "Connection while stopping")
        finally:
            for conn in conns:
                conn.close()
        rc, elapsed = d.wait_exit(timeout=10.0)
        check_eq(rc, 0, "exit status")
        check_eq(len(d.job_done_lines()), 2, "jobs done (none started "
                 "while stopping)")


def test_drain_timeout_cancels_jobs_and_exits_promptly():
    extra = """
[job forever]
kind = sleep
duration = 20s
result = never

[route /forever]
jobs = forever
wait = all

[route /forever-bg]
method = POST
jobs = forever
wait = none
"""
    with Daemon(config(server="drain_timeout = 300ms", extra=extra)) as d:
        status, headers, body, _ = d.request("POST", "/forever-bg")
        v = check_json_response(status, headers, body, 202,
                                "POST /forever-bg")
        bg_id = v["jobs"][0]["id"]
        answer = {}

        def waiting_request():
            answer["r"] = d.request("GET", "/forever", timeout=15.0)[:3]

        t = threading.Thread(target=waiting_request)
        t.start()
        deadline = time.monotonic() + 5
        while health(d)["jobs_live"] < 2:
            check(time.monotonic() < deadline, "GET /forever never started")
            time.sleep(0.02)
        d.send_signal(signal.SIGTERM)
        rc, elapsed = d.wait_exit(timeout=10.0)
        t.join(10)
        log("  SIGTERM with 20 s jobs, drain_timeout 300 ms: exit %d after "
            "%.2f s" % (rc, elapsed))
        check_eq(rc, 0, "exit status")
        check_between(elapsed, 0.25, 3.0, "SIGTERM to exit")
        d.wait_for_log(r"drain timeout passed; cancelled 2 jobs",
                       timeout=0.1, what="the drain timeout")
        cancelled = [m for m in (JOB_END_RE.search(l)
                                 for _, l in d.log_lines()) if m]
        check_eq(sorted((m.group(1), m.group(2)) for m in cancelled),
                 [("forever", "cancelled after")] * 2, "job-end lines")
        check(any(m.group(4) == bg_id for m in cancelled),
              "the detached job %s was not cancelled" % bg_id)
        # The waiting request is answered, not dropped.
        check("r" in answer, "the waiting request got no answer")
        status, headers, body = answer["r"]
        p = check_problem(status, headers, body, 503,
                          "GET /forever cancelled at stop")
        check_eq([j.get("state") for j in p.get("jobs", [])], ["cancelled"],
                 "states in the 503 problem")


if __name__ == "__main__":
    run_tests(globals())
