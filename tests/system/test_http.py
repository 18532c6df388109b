"""taskpoold system test: kind http against a real upstream.

Each test starts an upstream (upstream.py, on threads of this process) and
a daemon whose jobs call it, then asks a route and checks what the job came
to: its result (JSON when the upstream says JSON, else text), its failure
(the status and the first 512 bytes), its timeout, its retries (the
upstream counts the requests it saw), its cancellation.  Built without
libcurl, the daemon refuses an http job at load: that is checked instead
and the rest skipped.  Parameters go in over HTTP and the upstream's
/echo shows what it got: the URL's exact bytes (each value
percent-encoded), a header, a JSON body with the value as a JSON string.
"""

import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, start_job as start, job_record as record,
                            wait_job_state as wait_state,
                            cancel_job as delete, EX_CONFIG, HOST, Skip,  # noqa: E402
                            check, check_between, check_eq, check_problem,
                            log, run_cli, run_tests, VALGRIND)
from upstream import RefusingPort, Upstream  # noqa: E402

NO_LIBCURL = "taskpoold was built without libcurl: http jobs are not available"


def config(jobs):
    """A config of the given [job] sections, each behind a route of its
    name (/NAME, wait = all)."""
    text = "[server]\ninstance = httptest\n\n"
    for name, keys in jobs.items():
        text += "[job %s]\nkind = http\n%s\n" % (name, keys)
        text += "[route /%s]\njobs = %s\n\n" % (name, name)
    return text


def check_config(text):
    """taskpoold -t on a file of text: (exit status, stderr)."""
    with tempfile.TemporaryDirectory(prefix="taskpoold-test-") as tmp:
        path = os.path.join(tmp, "taskpoold.conf")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run_cli(["-t", "-c", path])
    return rc, err


def built_with_libcurl():
    rc, err = check_config(config({"j": "url = http://127.0.0.1:1/\n"}))
    if rc == 0:
        return True
    check_eq(rc, EX_CONFIG, "exit status of -t without libcurl")
    check(NO_LIBCURL in err, "no libcurl: stderr says why: %r" % err)
    return False


LIBCURL = None


def need_libcurl():
    global LIBCURL
    if LIBCURL is None:
        LIBCURL = built_with_libcurl()
    if not LIBCURL:
        raise Skip("built without libcurl")


def ask(d, name, timeout=30.0):
    """GET /NAME: (status, decoded body, elapsed)."""
    status, headers, body, elapsed = d.request("GET", "/" + name,
                                               timeout=timeout)
    log("  GET /%s: %d in %.3f s: %s" % (name, status, elapsed, body[:300]))
    return status, json.loads(body), elapsed


def ask_result(d, name):
    status, v, elapsed = ask(d, name)
    check_eq(status, 200, "GET /%s status" % name)
    check_eq(list(v), ["results"], "GET /%s keys" % name)
    return v["results"][0], elapsed


def ask_failure(d, name, status, state):
    """The route's problem for its one job: (that job's error, elapsed)."""
    got, v, elapsed = ask(d, name)
    check_eq(got, status, "GET /%s status" % name)
    check_eq(v["jobs"][0]["state"], state, "GET /%s job state" % name)
    return v["jobs"][0]["error"], elapsed


# A job that sends v into the URL's path and query, a header and a JSON
# body (n alongside, an int), behind GET /p?v=... and POST /p-json.
PARAMS_JOB = """
[job p]
kind = http
url = URL/{v}?q={v}&n={n}
method = POST
header.X-Value = {v}
body = {"v": {v}, "n": {n}, "list": [{v}]}
param.v = string max=64
param.n = int min=-9 max=9 default=3

[job loose]
kind = http
url = URL
header.X-Value = {v}
param.v = string max=64 pattern=.*

[route /p]
jobs = p
[route /p-json]
method = POST
jobs = p
[route /loose]
jobs = loose
"""

# Characters that mean something in a URL, a header or JSON.
VALUES = ["a b", "a/b", "../../etc", "?x=1&y=2", "#frag", "%41", "a+b",
          "caf\u00e9", '"quoted"', "back\\\\slash", "{v}", "$(id)", ";",
          "'", "<>", "~_.-", "x" * 64]


def echo_of(d, source, v, n=None):
    """What the upstream's /echo got for v (and n) sent via source."""
    params = {"v": v} if n is None else {"v": v, "n": n}
    if source == "query":
        status, _, body, _ = d.request("GET", "/p?" + urllib.parse.urlencode(
            params, quote_via=urllib.parse.quote))
    else:
        status, _, body, _ = d.request(
            "POST", "/p-json", body=json.dumps(params),
            headers={"Content-Type": "application/json"})
    check_eq(status, 200, "%r via %s (body %r)" % (v, source, body))
    return json.loads(body)["results"][0]


# ---- results ----------------------------------------------------------------

def test_json_response_is_the_result_as_json():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\n" % up.url("/json"),
            "p": "url = %s\n" % up.url("/problem")})) as d:
        result, _ = ask_result(d, "j")
        check_eq(result, {"answer": 42, "list": [1, "two"]}, "result")
        result, _ = ask_result(d, "p")
        check_eq(result, {"title": "x"}, "application/problem+json result")


def test_text_response_is_the_result_as_text():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "t": "url = %s\n" % up.url("/text"),
            "latin1": "url = %s\n" % up.url("/bad-utf8"),
            "empty": "url = %s\n" % up.url("/empty"),
            "head": "url = %s\nmethod = HEAD\n" % up.url("/json")})) as d:
        check_eq(ask_result(d, "t")[0], "hello\n", "text result")
        check_eq(ask_result(d, "latin1")[0], "caf\ufffd!",
                 "invalid UTF-8 replaced")
        check_eq(ask_result(d, "empty")[0], "", "204 result")
        check_eq(ask_result(d, "head")[0], "", "HEAD result")


def test_response_that_says_json_but_is_not_fails():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\n" % up.url("/not-json")})) as d:
        error, _ = ask_failure(d, "j", 502, "failed")
        check(error.startswith("the response says it is JSON but is not"),
              "error: %r" % error)


def test_request_sends_method_headers_and_json_body():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nmethod = PUT\nheader.X-Token = s3cret\n"
                 'body = {"a": [1, true], "b": "c"}\n' % up.url("/echo")})) \
            as d:
        echo, _ = ask_result(d, "j")
        check_eq(echo["method"], "PUT", "method")
        check_eq(echo["headers"].get("x-token"), "s3cret", "X-Token")
        check_eq(echo["headers"].get("content-type"), "application/json",
                 "Content-Type")
        check_eq(json.loads(echo["body"]), {"a": [1, True], "b": "c"}, "body")


# ---- failures ---------------------------------------------------------------

def test_non_2xx_fails_with_status_and_first_512_bytes():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 3\n" % up.url("/status/500")})) as d:
        error, _ = ask_failure(d, "j", 502, "failed")
        body = ("status 500: " + "y" * 600)[:512]
        check_eq(error, "HTTP 500: " + body, "error")
        check_eq(up.hits("/status/500"), 1, "a 500 is not retried")


def test_response_past_max_response_fails():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\n" % up.url("/huge"),
            "unsized": "url = %s\nmax_response = 100K\n"
                       % up.url("/huge-unsized")})) as d:
        error, _ = ask_failure(d, "j", 502, "failed")
        check_eq(error, "HTTP 200: the response is larger than "
                 "max_response (1048576 bytes)", "error")
        error, _ = ask_failure(d, "unsized", 502, "failed")
        check_eq(error, "HTTP 200: the response is larger than "
                 "max_response (102400 bytes)", "error")


def test_hanging_upstream_times_out_at_the_job_timeout():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\ntimeout = 1s\nretries = 3\n" % up.url("/hang")})) \
            as d:
        error, elapsed = ask_failure(d, "j", 504, "timed_out")
        check_eq(error, "timed out", "error")
        check_between(elapsed, 0.95, 2.5, "1 s job timeout")
        check_eq(up.hits("/hang"), 1, "the job's timeout ends its retries")


def test_refused_connection_fails_fast():
    need_libcurl()
    with RefusingPort() as port, Daemon(config({
            "once": "url = %s\n" % port.url("/"),
            "thrice": "url = %s\nretries = 2\nretry_base = 10ms\n"
                      % port.url("/")})) as d:
        error, elapsed = ask_failure(d, "once", 502, "failed")
        check("Couldn't connect" in error or "Failed to connect" in error,
              "error: %r" % error)
        check_between(elapsed, 0.0, 1.0, "refused")
        error, elapsed = ask_failure(d, "thrice", 502, "failed")
        check_between(elapsed, 0.0, 1.0, "refused, 2 retries of <= 20 ms")


# ---- retries ----------------------------------------------------------------

def test_503_twice_then_200_is_retried_and_succeeds():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 3\n" % up.url("/flaky/a")})) as d:
        result, elapsed = ask_result(d, "j")
        check_eq(result, {"attempt": 3}, "result")
        check_eq(up.hits("/flaky/a"), 3, "requests the upstream saw")
        # Two waits of full jitter below 100 ms and 200 ms.
        check_between(elapsed, 0.0, 1.5, "two retries")


def test_retries_exhausted_fail_with_the_last_status():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 1\n" % up.url("/flaky/b")})) as d:
        error, _ = ask_failure(d, "j", 502, "failed")
        check_eq(error, "HTTP 503: busy", "error")
        check_eq(up.hits("/flaky/b"), 2, "requests the upstream saw")


def test_retry_after_seconds_is_honoured():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 1\n" % up.url("/retry-after/a")})) \
            as d:
        result, elapsed = ask_result(d, "j")
        check_eq(result, "ok", "result")
        check_between(elapsed, 0.95, 2.5, "Retry-After: 1")


def test_retry_after_date_is_honoured():
    need_libcurl()
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 1\n" % up.url("/retry-date/a")})) as d:
        result, elapsed = ask_result(d, "j")
        check_eq(result, "ok", "result")
        # A date 2 s ahead, in whole seconds: 1 to 2 s from now, and the
        # retry at that date, not up to a second after it (libcurl's
        # CURLINFO_RETRY_AFTER counts from time(NULL), in whole seconds).
        check_between(elapsed, 0.95, 2.6, "Retry-After: date + 2 s")


def test_retry_after_past_the_timeout_fails_at_once():
    need_libcurl()
    if VALGRIND:
        raise Skip("under valgrind the first transfer alone outlasts the "
                   "500 ms timeout that must be shorter than Retry-After")
    with Upstream() as up, Daemon(config({
            "j": "url = %s\nretries = 1\ntimeout = 500ms\n"
                 % up.url("/retry-after/b")})) as d:
        error, elapsed = ask_failure(d, "j", 502, "failed")
        check_eq(error, "HTTP 503: later (no time left for a retry)", "error")
        check_between(elapsed, 0.0, 0.45, "no wait")


# ---- cancellation -----------------------------------------------------------

def test_client_hang_up_cancels_a_hanging_transfer():
    need_libcurl()
    cfg = config({"j": "url = %s\n" % "URL"}).replace(
        "jobs = j\n", "jobs = j\non_disconnect = cancel\n")
    with Upstream() as up, Daemon(cfg.replace("URL", up.url("/hang"))) as d:
        s = socket.create_connection((HOST, d.port))
        s.sendall(b"GET /j HTTP/1.1\r\nHost: t\r\n\r\n")
        check(up.wait_hits("/hang", 1, 10.0), "the upstream got the request")
        t0 = time.monotonic()
        s.close()
        d.wait_for_log(r" info: job j cancelled after ", timeout=10.0)
        log("  cancelled %.3f s after the hang-up" % (time.monotonic() - t0))


def test_stop_cancels_a_hanging_transfer():
    need_libcurl()
    cfg = config({"j": "url = URL\n"}).replace(
        "jobs = j\n", "jobs = j\nwait = none\n").replace(
        "[server]\n", "[server]\ndrain_timeout = 100ms\n")
    with Upstream() as up, Daemon(cfg.replace("URL", up.url("/hang"))) as d:
        status, _, body, _ = d.request("GET", "/j")
        check_eq(status, 202, "wait = none")
        check(up.wait_hits("/hang", 1, 10.0), "the upstream got the request")
        t0 = time.monotonic()
        d.stop()
        check_between(time.monotonic() - t0, 0.0, 5.0, "stop")
        check(" info: job j cancelled after " in d.log_text(),
              "the job was cancelled:\n" + d.log_text())


# ---- parameters -------------------------------------------------------------

def test_values_reach_the_url_percent_encoded():
    need_libcurl()
    with Upstream() as up, Daemon(PARAMS_JOB.replace(
            "URL", up.url("/echo"))) as d:
        for source in ("query", "json"):
            for v in VALUES:
                enc = urllib.parse.quote(v, safe="")	# RFC 3986 unreserved
                check_eq(echo_of(d, source, v)["path"],
                         "/echo/%s?q=%s&n=3" % (enc, enc),
                         "URL for %r via %s" % (v, source))


def test_values_reach_a_header_as_they_are():
    need_libcurl()
    with Upstream() as up, Daemon(PARAMS_JOB.replace(
            "URL", up.url("/echo"))) as d:
        for source in ("query", "json"):
            for v in VALUES:
                got = echo_of(d, source, v)["headers"]["x-value"]
                # http.server reads header bytes as Latin-1.
                check_eq(got.encode("latin-1").decode(), v,
                         "X-Value for %r via %s" % (v, source))


def test_values_reach_the_json_body_as_json_strings():
    need_libcurl()
    with Upstream() as up, Daemon(PARAMS_JOB.replace(
            "URL", up.url("/echo"))) as d:
        for source in ("query", "json"):
            for v in VALUES:
                body = json.loads(echo_of(d, source, v, n=-9)["body"])
                check_eq(body, {"v": v, "n": -9, "list": [v]},
                         "body for %r via %s" % (v, source))


def test_a_header_value_with_a_newline_fails_the_job():
    need_libcurl()
    with Upstream() as up, Daemon(PARAMS_JOB.replace(
            "URL", up.url("/echo"))) as d:
        status, _, body, _ = d.request(
            "GET", "/loose?v=" + urllib.parse.quote("a\r\nX-Evil: 1"))
        check_eq(status, 502, "status (body %r)" % body)
        job = json.loads(body)["jobs"][0]
        check_eq((job["state"], job["error"]),
                 ("failed", "header X-Value: its value holds a control "
                  "character"), "record")
        check_eq(up.hits("/echo"), 0, "nothing was sent")


def test_a_header_injection_without_a_pattern_is_refused():
    need_libcurl()
    with Upstream() as up, Daemon(PARAMS_JOB.replace(
            "URL", up.url("/echo"))) as d:
        status, headers, body, _ = d.request(
            "GET", "/p?v=" + urllib.parse.quote("a\r\nX-Evil: 1"))
        check_problem(status, headers, body, 400, "CR LF in v",
                      detail="parameter 'v' may not hold control characters")
        check_eq(up.hits("/echo"), 0, "nothing was sent")


# ---- DELETE /jobs/{id} ------------------------------------------------------

HANG_JOB = """
[job hang]
kind = http
url = URL
max_concurrent = 1
[route /hang]
method = POST
jobs = hang
wait = none
"""


def test_delete_aborts_a_running_transfer_at_once():
    need_libcurl()
    with Upstream() as up, Daemon(HANG_JOB.replace(
            "URL", up.url("/hang"))) as d:
        job_id = start(d, "/hang")
        check(up.wait_hits("/hang", 1, 10.0), "the upstream got the request")
        t0 = time.monotonic()
        delete(d, job_id)
        r = wait_state(d, job_id, ("cancelled", "failed", "timed_out"))
        check_eq((r["state"], r["result"]), ("cancelled", None), "record")
        check_between(time.monotonic() - t0, 0.0, 1.0, "the abort")


def test_delete_of_a_queued_transfer_cancels_it_before_it_starts():
    need_libcurl()
    with Upstream() as up, Daemon(HANG_JOB.replace(
            "URL", up.url("/hang"))) as d:
        first, second = start(d, "/hang"), start(d, "/hang")
        check(up.wait_hits("/hang", 1, 10.0), "the upstream got the first")
        check_eq(record(d, second)["state"], "queued", "the second")
        r = delete(d, second)
        check_eq((r["state"], r["started"]), ("cancelled", None),
                 "cancelled at once, never started")
        check_eq(record(d, first)["state"], "running", "the first")
        delete(d, first)
        wait_state(d, first, ("cancelled",))
        check_eq(up.hits("/hang"), 1, "the second was never sent")


# ---- load -------------------------------------------------------------------

def test_url_that_is_not_http_is_refused_at_load():
    need_libcurl()
    for url, why in (("ftp://127.0.0.1/x", "is not http or https"),
                     ("127.0.0.1/x", "bad url")):
        rc, err = check_config(config({"j": "url = %s\n" % url}))
        check_eq(rc, EX_CONFIG, "exit status for url %s" % url)
        check("taskpoold.conf:4: job 'j': " in err and why in err,
              "stderr for url %s: %r" % (url, err))


if __name__ == "__main__":
    run_tests(globals())
