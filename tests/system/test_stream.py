"""taskpoold system test: streamed answers.

`Accept: application/x-ndjson` gives one JSON line per job as it finishes,
then a summary line; `Accept: text/event-stream` the same as Server-Sent
Events, read here by a real EventSource client (npm's `eventsource`, run
with node; tools/install-deps installs it under /opt/taskpoold-tools).  Timings show that each line leaves when its job finishes, not
when the slowest does.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, Skip, check, check_between,  # noqa
                            check_eq, fail, header, log, need_exec,
                            run_tests, wait_job_state)

CONFIG = """
[server]
instance = streamtest

[job fast]
kind = sleep
duration = 100ms
result = fast result

[job mid]
kind = sleep
duration = 500ms
result = mid result

[job slow]
kind = sleep
duration = 1s
result = slow result

[job boom]
kind = exec
command = /bin/false

[job lingering]
kind = sleep
duration = 4s
result = lingering result

[job big]
kind = exec
command = /bin/sh -c "head -c 1500000 /dev/zero | tr '\\\\0' a"
max_output = 2M

[route /both]
jobs = slow fast
wait = all
on_disconnect = cancel
"""

NDJSON = {"Accept": "application/x-ndjson"}


def open_stream(d, method, path, body=None, headers=None):
    """Sends the request; returns (connection, response, start time)."""
    h = dict(headers or NDJSON)
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    conn = http.client.HTTPConnection(HOST, d.port, timeout=30)
    start = time.monotonic()
    conn.request(method, path, body=body, headers=h)
    return conn, conn.getresponse(), start


def read_lines(resp, start):
    """Every line of an NDJSON stream: [(seconds since start, value)]."""
    lines = []
    while True:
        line = resp.readline()
        if not line:
            return lines
        check(line.endswith(b"\n"), "a line without its newline: %r" % line)
        lines.append((time.monotonic() - start, json.loads(line)))


def test_ndjson_lines_come_as_jobs_finish():
    with Daemon(CONFIG) as d:
        conn, resp, start = open_stream(d, "POST", "/jobs", {
            "jobs": [{"job": "slow"}, {"job": "fast"}, {"job": "mid"}]})
        check_eq(resp.status, 200, "status")
        check_eq(header(resp.headers, "Content-Type"),
                 "application/x-ndjson", "Content-Type")
        check_eq(header(resp.headers, "Transfer-Encoding"), "chunked",
                 "Transfer-Encoding")
        lines = read_lines(resp, start)
        conn.close()
        for t, v in lines:
            log("  %.3f s: %s" % (t, json.dumps(v)[:100]))
        check_eq(len(lines), 4, "lines: three jobs and the summary")
        (t0, fast), (t1, mid), (t2, slow), (t3, summary) = lines
        # The first line comes with the fastest job, not the slowest.
        check_between(t0, 0.09, 0.45, "fast's line")
        check_between(t1, 0.49, 0.85, "mid's line")
        check_between(t2, 0.99, 1.5, "slow's line")
        check_eq(fast, {"index": 1, "id": fast["id"], "job": "fast",
                        "state": "succeeded", "result": "fast result"},
                 "fast's line")
        check_eq((mid["index"], mid["job"]), (2, "mid"), "mid's line")
        check_eq((slow["index"], slow["job"], slow["result"]),
                 (0, "slow", "slow result"), "slow's line")
        check_eq(summary["status"], 200, "summary status")
        check_eq(summary["answer"], {"results": ["slow result",
                                                 "fast result",
                                                 "mid result"]},
                 "summary answer")
        check(t3 - t2 < 0.3, "the summary follows the last job")
        r = d.get_json("/runs/" + summary["run"])
        check_eq((r["status"], r["answer"]), (200, summary["answer"]),
                 "the run's answer")


def test_ndjson_ends_when_the_policy_is_met():
    with Daemon(CONFIG) as d:
        conn, resp, start = open_stream(d, "POST", "/jobs", {
            "jobs": [{"job": "slow"}, {"job": "fast"}], "wait": "any"})
        lines = read_lines(resp, start)
        conn.close()
        check_eq(len(lines), 2, "the winner's line and the summary")
        (t0, fast), (t1, summary) = lines
        check_eq(fast["job"], "fast", "the winner")
        check_between(t1, 0.09, 0.5, "stream ends with the winner")
        check_eq((summary["status"], summary["answer"]["job"]),
                 (200, "fast"), "summary")


def test_ndjson_deadline_and_failure_are_in_the_summary():
    with Daemon(CONFIG) as d:
        conn, resp, start = open_stream(d, "POST", "/jobs", {
            "jobs": [{"job": "fast"}, {"job": "slow"}],
            "timeout": "300ms"})
        lines = read_lines(resp, start)
        conn.close()
        check_eq([v.get("job") for _, v in lines], ["fast", None],
                 "fast's line, then the summary")
        summary = lines[-1][1]
        check_between(lines[-1][0], 0.28, 0.8, "the deadline ends it")
        check_eq((summary["status"], summary["answer"]["status"],
                  summary["answer"]["pending"][0]["job"]),
                 (504, 504, "slow"), "504 summary")
        conn, resp, start = open_stream(d, "POST", "/jobs", {
            "jobs": [{"job": "boom"}]})
        lines = read_lines(resp, start)
        conn.close()
        check_eq((lines[0][1]["job"], lines[0][1]["state"]),
                 ("boom", "failed"), "the failed job's line")
        check(isinstance(lines[0][1]["error"], str), "its error")
        check_eq(lines[1][1]["status"], 502, "502 summary")


def test_route_streams_and_a_client_that_leaves_cancels():
    with Daemon(CONFIG) as d:
        conn, resp, start = open_stream(d, "GET", "/both")
        line = resp.readline()
        t = time.monotonic() - start
        first = json.loads(line)
        check_eq(first["job"], "fast", "first line")
        check_between(t, 0.09, 0.5, "first line")
        # Leave before slow finishes: the route cancels it.
        run = d.get_json("/runs?limit=1")["runs"][0]["id"]
        slow_id = d.get_json("/runs/" + run)["jobs"][0]["id"]
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        wait_job_state(d, slow_id, ["cancelled"], 3.0)
        d.wait_for_log(r"client closed the connection", timeout=3.0)
        check_eq(d.get_json("/healthz")["status"], "ok", "still serving")


def test_a_client_leaving_a_finished_stream_leaves_detached_losers():
    """on_disconnect is about a client that gives up waiting: once the run
    is done, its losers are the `losers` setting's, even if the client
    leaves before it has read the whole stream.  The loser sleeps 4 s:
    big, a program, must win however loaded the machine is."""
    need_exec()	# big is a program
    with Daemon(CONFIG) as d:
        s = socket.socket()
        # A small window: the answer (1.5 MB twice) stays in the daemon.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, d.port))
        body = json.dumps({"jobs": [{"job": "big"}, {"job": "lingering"}],
                           "wait": "any", "losers": "detach",
                           "on_disconnect": "cancel"}).encode()
        s.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\n"
                  b"Accept: application/x-ndjson\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.monotonic() + 5.0
        while True:
            runs = d.get_json("/runs?limit=1")["runs"]
            if runs and runs[0]["state"] == "done":
                break
            check(time.monotonic() < deadline, "the run is not done")
            time.sleep(0.01)
        jobs = d.get_json("/runs/" + runs[0]["id"])["jobs"]
        check_eq([(j["job"], j["state"]) for j in jobs],
                 [("big", "succeeded"), ("lingering", "running")], "the run")
        # Gone with most of the stream unread: reset the connection.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        d.wait_for_log(r"client closed the connection during a streamed "
                       r"answer \(499\)", timeout=3.0)
        wait_job_state(d, jobs[1]["id"], ["succeeded"], 10.0)


def test_many_streams_at_once_each_complete():
    with Daemon(CONFIG) as d:
        results, errors = [], []

        def one():
            try:
                conn, resp, start = open_stream(d, "POST", "/jobs", {
                    "jobs": [{"job": "fast"}, {"job": "mid"}]})
                results.append(read_lines(resp, start))
                conn.close()
            except Exception as e:	# reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check_eq(errors, [], "errors")
        check_eq(len(results), 50, "streams")
        for lines in results:
            check_eq([v.get("job") for _, v in lines], ["fast", "mid", None],
                     "lines of one stream")
            check_eq(lines[-1][1]["status"], 200, "summary")


SSE_CLIENT = r"""
const { EventSource } = require('eventsource');
const es = new EventSource(process.argv[2]);
const start = Date.now();
const got = [];
function add(type, e) {
  got.push({type: type, t: (Date.now() - start) / 1000, data: JSON.parse(e.data)});
}
es.addEventListener('job', (e) => add('job', e));
es.addEventListener('summary', (e) => {
  add('summary', e);
  es.close();
  process.stdout.write(JSON.stringify(got));
});
es.onerror = (e) => {
  process.stderr.write('error: ' + JSON.stringify(e) + '\n');
  process.exit(2);
};
"""


def sse_client():
    """node and the `eventsource` module, or Skip (a failure under CI)."""
    node = shutil.which("node")
    prefix = os.path.join(os.environ.get("TASKPOOLD_NPM_PREFIX",
                                         "/opt/taskpoold-tools"),
                          "node_modules")
    if node is None or not os.path.isdir(os.path.join(prefix, "eventsource")):
        why = "node or the npm module eventsource is missing " \
              "(tools/install-deps installs them)"
        if os.environ.get("CI"):
            fail(why)
        raise Skip(why)
    return node, prefix


def test_sse_read_by_a_real_eventsource_client():
    node, prefix = sse_client()
    with Daemon(CONFIG) as d:
        script = os.path.join(d.tmpdir.name, "sse.js")
        with open(script, "w") as f:
            f.write(SSE_CLIENT)
        env = dict(os.environ, NODE_PATH=prefix)
        out = subprocess.run([node, script, "http://%s:%d/both" % (HOST,
                                                                   d.port)],
                             env=env, capture_output=True, timeout=30)
        check_eq(out.returncode, 0, "node client (stderr %r)" % out.stderr)
        events = json.loads(out.stdout)
        for e in events:
            log("  %.3f s: %s %s" % (e["t"], e["type"],
                                     json.dumps(e["data"])[:80]))
        check_eq([(e["type"], e["data"].get("job")) for e in events],
                 [("job", "fast"), ("job", "slow"), ("summary", None)],
                 "events")
        check_between(events[0]["t"], 0.05, 0.6, "fast's event")
        check_eq(events[2]["data"]["answer"],
                 {"results": ["slow result", "fast result"]}, "summary")


if __name__ == "__main__":
    run_tests(globals())
