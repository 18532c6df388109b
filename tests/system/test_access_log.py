"""taskpoold system test: the access log.

With `[log] access_log = yes`, each request logs one line once it is over:

    access: CLIENT STATUS BYTES DURATIONms METHOD TARGET

The target is the path and query string, escaped (%XX) so that nothing a
client sends can break the line or forge a field; a query value is shown
only for a parameter that the route's jobs declare and none as secret
(or a listing's own), "***" otherwise.  No header and no body is logged:
a secret value and an Authorization header never appear anywhere in the
daemon's output, whatever the answer (200, 400, 404, 405, 413, a stream,
a client that hangs up, the 503 of a stop).
"""

import http.client
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (HOST, Daemon, check, check_eq,  # noqa: E402
                            fail, read_response, run_tests)

SECRET = "hunter2-s3cr3t"
BEARER = "Bearer xyz-t0ken-never-logged"

CONFIG = """
[server]
max_body = 1K
drain_timeout = 0

[log]
access_log = yes

[job greet]
kind = sleep
duration = 0
result = hello
param.name = string
param.times = int min=1 max=5 default=1
param.token = string secret

[job nap]
kind = sleep
duration = 300ms
result = rested
param.token = string secret

[job long]
kind = sleep
duration = 30s
result = never
param.token = string secret

[route /greet/{name}]
method = GET
jobs = greet
wait = all

[route /nap]
jobs = nap
wait = all

[route /long]
jobs = long
wait = all
timeout = 60s
on_disconnect = cancel

[route /mixed]
jobs = greet long
wait = all
timeout = 60s
on_disconnect = cancel
"""

# The fields of an access line, in the plain or the journal form.
ACCESS_RE = re.compile(r"^(?:\S+ |<6>)info: access: (\S+) (\d{3}) (\d+) "
                       r"(\d+\.\d{3})ms (\S+) (\S+)$")


def send(d, method, target, headers=None, body=None):
    """One request on a fresh connection: (status, body, client port)."""
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(HOST, d.port, timeout=30)
    try:
        conn.connect()
        port = conn.sock.getsockname()[1]
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, port
    except (OSError, http.client.HTTPException) as e:
        fail("%s %s: %r; log:\n%s" % (method, target, e, d.log_text()))
    finally:
        conn.close()


def access_line(d, method, target, start=0, timeout=10.0):
    """Waits for the access line of method and target (as logged);
    returns (client, status, bytes, ms)."""
    pattern = re.compile(r"access: \S+ \d{3} \d+ [0-9.]+ms %s %s$"
                         % (re.escape(method), re.escape(target)))
    _, line, _ = d.wait_for_log(pattern, timeout=timeout, start=start,
                                what="the access line of %s %s"
                                % (method, target))
    m = ACCESS_RE.match(line)
    check(m is not None, "an access line out of form: %r" % line)
    return m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4))


def check_request(d, method, target, logged, expect_status, headers=None,
                  body=None):
    """Sends a request; asserts its status and its exact line (the
    client's address and port, the status, the bytes of the body that
    came); returns the line's milliseconds."""
    start = len(d.log_lines())
    status, data, port = send(d, method, target, headers, body)
    check_eq(status, expect_status, "%s %s status (body %r)"
             % (method, target, data))
    client, lstatus, nbytes, ms = access_line(d, method, logged, start)
    check_eq((client, lstatus, nbytes),
             ("127.0.0.1:%d" % port, status,
              0 if method == "HEAD" else len(data)),
             "the access line of %s %s" % (method, target))
    return ms


def check_nothing_leaked(d):
    """Neither the secret nor the bearer token is anywhere in the log,
    and every access line is in form."""
    text = "\n".join(line for _, line in d.log_lines())
    check(SECRET not in text, "the secret is in the log:\n" + text)
    check("xyz-t0ken" not in text, "the Authorization header is in the "
          "log:\n" + text)
    for _, line in d.log_lines():
        if " access: " in line or ">info: access: " in line:
            check(ACCESS_RE.match(line), "an access line out of form: %r"
                  % line)


def test_lines_show_each_answer_with_secrets_left_out():
    s = SECRET
    with Daemon(CONFIG) as d:
        check_request(d, "GET", "/greet/bob?times=2&token=" + s,
                      "/greet/bob?times=2&token=***", 200)
        # Refused parameters (400), the wrong method (405): still hidden.
        check_request(d, "GET", "/greet/bob?times=9&token=" + s,
                      "/greet/bob?times=9&token=***", 400)
        check_request(d, "POST", "/greet/bob?token=" + s,
                      "/greet/bob?token=***", 405)
        # A name no job declares may be a secret misspelt: hidden.
        check_request(d, "GET", "/greet/bob?tokn=" + s + "&flag",
                      "/greet/bob?tokn=***&flag", 400)
        # No route: no value is known to be harmless.
        check_request(d, "GET", "/nothere?token=" + s + "&page=2",
                      "/nothere?token=***&page=***", 404)
        # Refused by the server before any route is looked at (413).
        check_request(d, "POST", "/greet/bob?times=1&token=" + s,
                      "/greet/bob?times=***&token=***", 413,
                      headers={"Content-Type": "application/json"},
                      body=json.dumps({"pad": "x" * 2048}))
        # A listing's own parameters are shown.
        check_request(d, "GET", "/jobs?limit=5&state=running&job=greet",
                      "/jobs?limit=5&state=running&job=greet", 200)
        check_request(d, "HEAD", "/healthz", "/healthz", 200)
        # Secrets in a body and an Authorization header: never logged.
        check_request(d, "POST", "/jobs", "/jobs", 200, headers={
            "Content-Type": "application/json", "Authorization": BEARER},
            body=json.dumps({"jobs": [{"job": "greet", "params": {
                "name": "x", "token": s}}]}))
        check_request(d, "GET", "/greet/bob?token=" + s,
                      "/greet/bob?token=***", 200,
                      headers={"Authorization": BEARER})
        # A stream: the line comes at its end, with every byte counted.
        check_request(d, "GET", "/greet/bob?times=3&token=" + s,
                      "/greet/bob?times=3&token=***", 200,
                      headers={"Accept": "application/x-ndjson"})
        # The time is from the request to its end: a 300 ms job.
        ms = check_request(d, "GET", "/nap?token=" + s, "/nap?token=***",
                           200)
        check(300.0 <= ms < 10000.0, "GET /nap took %.3f ms" % ms)
        d.stop()
        check_nothing_leaked(d)


def test_bytes_that_could_break_the_line_are_escaped():
    with Daemon(CONFIG) as d:
        # Quote, newline, backslash, space, '*', '%', '#', non-ASCII and a
        # forged field, decoded by the server, escaped again in the line.
        check_request(d, "GET", "/x%22y%0Az%5C%20w%2A%25%23%C3%A9",
                      "/x%22y%0Az%5C%20w%2A%25%23%C3%A9", 404)
        check_request(d, "GET", "/a%20200%200%200.000ms%20GET%20/forged",
                      "/a%20200%200%200.000ms%20GET%20/forged", 404)
        # A query's separators inside a name or a value stay inside.
        check_request(d, "GET", "/jobs?limit=1&job=a%26state%3D%2A%2A%2A",
                      "/jobs?limit=1&job=a%26state%3D%2A%2A%2A", 200)
        d.stop()
        check_nothing_leaked(d)
        lines = [line for _, line in d.log_lines() if "access: " in line]
        check_eq(len(lines), 3, "access lines (nothing forged):\n%s"
                 % "\n".join(lines))


def first_chunk(s):
    """The data of a chunked answer's first chunk, read from socket s."""
    buf = b""
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            size, sep2, data = rest.partition(b"\r\n")
            if sep2 and len(data) >= int(size, 16):
                return data[:int(size, 16)]
        chunk = s.recv(65536)
        check(chunk, "the connection closed before the first chunk: %r"
              % buf)
        buf += chunk


def wait_live(d, n):
    deadline = time.monotonic() + 10.0
    while d.get_json("/healthz")["jobs_live"] != n:
        check(time.monotonic() < deadline, "jobs_live never reached %d" % n)
        time.sleep(0.01)


def test_a_client_that_hangs_up_and_the_stop_s_503():
    with Daemon(CONFIG) as d:
        request = ("GET /long?token=%s HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: %s\r\n\r\n" % (SECRET, BEARER)).encode()
        start = len(d.log_lines())
        with socket.create_connection((HOST, d.port)) as s:
            s.sendall(request)
            wait_live(d, 1)
        _, status, nbytes, _ = access_line(d, "GET", "/long?token=***",
                                           start)
        check_eq((status, nbytes), (499, 0), "a client that hung up")
        wait_live(d, 0)		# on_disconnect = cancel

        # A stream left after its first line: 499, with that line's bytes.
        start = len(d.log_lines())
        with socket.create_connection((HOST, d.port), timeout=30) as s:
            s.sendall(request.replace(b"/long?", b"/mixed?name=a&")
                      .replace(b"\r\n\r\n",
                               b"\r\nAccept: application/x-ndjson\r\n\r\n"))
            first = first_chunk(s)
            check(b'"job": "greet"' in first, "the first line: %r" % first)
        _, status, nbytes, _ = access_line(
            d, "GET", "/mixed?name=a&token=***", start)
        check_eq((status, nbytes), (499, len(first)),
                 "a client that left a stream after its first line")
        wait_live(d, 0)

        # Waiting when the daemon stops (drain_timeout = 0): answered.
        start = len(d.log_lines())
        with socket.create_connection((HOST, d.port), timeout=30) as s:
            s.sendall(request)
            wait_live(d, 1)
            d.stop()
            status, _, body = read_response(s)
        _, lstatus, nbytes, _ = access_line(d, "GET", "/long?token=***",
                                            start)
        check_eq((lstatus, nbytes), (status, len(body)),
                 "the answer at the stop (%d)" % status)
        check_nothing_leaked(d)


def test_off_by_default_and_a_reload_turns_it_on():
    off = CONFIG.replace("access_log = yes\n", "")
    with Daemon(off) as d:
        check_eq(send(d, "GET", "/greet/bob?token=x")[0], 200, "GET")
        check_eq(send(d, "GET", "/nothere")[0], 404, "GET /nothere")
        n = len(d.log_lines())
        d.write_config(CONFIG, d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, what="the reload")
        check_request(d, "GET", "/greet/al?token=x", "/greet/al?token=***",
                      200)
        n = len(d.log_lines())
        d.write_config(off, d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, what="the reload")
        check_eq(send(d, "GET", "/greet/cy?token=x")[0], 200, "GET")
        d.stop()
        lines = [line for _, line in d.log_lines() if "access: " in line]
        check_eq(len(lines), 1, "access lines, only while it was on:\n%s"
                 % "\n".join(lines))


def test_journal_form():
    with Daemon(CONFIG, journal=True) as d:
        start = len(d.log_lines())
        status, data, port = send(d, "GET", "/greet/bob?token=" + SECRET)
        check_eq(status, 200, "GET")
        _, line, _ = d.wait_for_log(r"access: ", start=start,
                                    what="the access line")
        check(re.match(r"^<6>info: access: 127\.0\.0\.1:%d 200 %d "
                       r"\d+\.\d{3}ms GET /greet/bob\?token=\*\*\*$"
                       % (port, len(data)), line), "journal form: %r" % line)
        d.stop()
        check_nothing_leaked(d)


if __name__ == "__main__":
    run_tests(globals())
