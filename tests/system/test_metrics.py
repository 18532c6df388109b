"""taskpoold system test: GET /metrics, Prometheus text format 0.0.4.

After a known sequence of requests (routes that succeed, fail and time
out, 404s, 405s, refused bodies, framing the server refuses itself, a
client that hangs up while it waits), the scrape is parsed with a real
parser (Debian's python3-prometheus-client) and every series touched has
its exact count: requests by route template, method and status,
rejections by reason, job durations by job and outcome, disconnects, and
the gauges.  A scrape counts the scrapes before it; series of routes and
jobs that a reload removed stay.
"""

import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, EXIT_HARD_ERROR, HOST, check,  # noqa: E402
                            check_eq, fail, log, need_exec, read_response,
                            run_tests, srcdir)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's package installs into its python3's dist-packages, which a
    # python3 of another origin (pyenv, a venv) does not search.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        log("prometheus_client is missing: apt-get install "
            "python3-prometheus-client (tools/install-deps does)")
        sys.exit(EXIT_HARD_ERROR)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXEC = os.path.join(srcdir(), "tests", "system", "exec")
WAIT = 10.0	# seconds for what the test waits on (a loaded CI machine)

CONFIG = """
[server]
instance = mtest
threads = 2

[pool]
workers = 3

[job ok]
kind = sleep
result = ok
param.name = string max=16

[job bad]
kind = exec
command = @EXEC@/fail.sh

[job stuck]
kind = exec
command = /bin/sleep 30
timeout = 300ms

[job slow]
kind = sleep
duration = 30s
result = slow

[job echo]
kind = sleep
result = echo
param.text = string max=16

[route /ok/{name}]
jobs = ok

[route /fail]
jobs = bad

[route /stuck]
jobs = stuck

[route /slow]
jobs = slow
on_disconnect = cancel

[route /echo]
method = POST
jobs = echo
""".replace("@EXEC@", EXEC)

# Every family the daemon declares, with its type as the parser names it
# (a counter's family name loses its _total).
FAMILIES = {
    "taskpoold_http_requests": "counter",
    "taskpoold_http_rejections": "counter",
    "taskpoold_http_client_disconnects": "counter",
    "taskpoold_http_waiting_connections": "gauge",
    "taskpoold_job_duration_seconds": "histogram",
    "taskpoold_pool_workers": "gauge",
    "taskpoold_pool_busy_workers": "gauge",
    "taskpoold_pool_queue_depth": "gauge",
    "taskpoold_registry_jobs": "gauge",
    "process_start_time_seconds": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
}


class Scraper:
    """GET /metrics, parsed; counts its own scrapes, which the daemon
    counts too."""

    def __init__(self, d):
        self.d = d
        self.scrapes = 0

    def __call__(self):
        status, headers, body, _ = self.d.request("GET", "/metrics")
        self.scrapes += 1
        check_eq(status, 200, "GET /metrics status (body %r)" % body)
        check_eq(headers.get("Content-Type"), CONTENT_TYPE,
                 "GET /metrics Content-Type")
        return parse(body.decode())

    def until(self, pred, what):
        """Scrapes until pred(metrics) holds; returns the metrics."""
        deadline = time.monotonic() + WAIT
        while True:
            m = self()
            if pred(m):
                return m
            if time.monotonic() > deadline:
                fail("%s: not within %.0f s" % (what, WAIT))
            time.sleep(0.02)


def parse(text):
    """{family name: (type, {(sample name, ((label, value), ...)): value})}
    from the real parser, labels in the order of the text; a sample seen
    twice is an error."""
    out = {}
    for fam in text_string_to_metric_families(text):
        check(fam.name not in out, "family %s twice" % fam.name)
        samples = {}
        for s in fam.samples:
            key = (s.name, tuple(s.labels.items()))
            check(key not in samples, "sample %r twice" % (key,))
            samples[key] = s.value
        out[fam.name] = (fam.type, samples)
    return out


def series(m, family, sample=None, **fixed):
    """{label values in label order: value} of one sample name of a family,
    for the samples whose labels include `fixed`."""
    typ, samples = m[family]
    sample = sample or (family + "_total" if typ == "counter" else family)
    out = {}
    for (name, labels), value in samples.items():
        d = dict(labels)
        if name != sample or any(d.get(k) != v for k, v in fixed.items()):
            continue
        out[tuple(v for k, v in labels if k not in fixed)] = value
    return out


def value(m, family, **labels):
    return series(m, family, **labels).get((), None)


def hang_up_while_waiting(d, scrape):
    """GET /slow, wait until it waits (suspended), then close."""
    s = socket.create_connection((HOST, d.port), timeout=WAIT)
    try:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        scrape.until(lambda m: value(m, "taskpoold_http_waiting_connections")
                     == 1, "the /slow request waiting")
    finally:
        s.close()
    return scrape.until(
        lambda m: series(m, "taskpoold_http_client_disconnects") ==
        {("/slow",): 1} and value(m, "taskpoold_registry_jobs",
                                  state="live") == 0,
        "the hang-up counted and its job cancelled")


def raw(d, data):
    status, _, _ = d.raw_request(data)
    return status


def known_sequence(d, scrape):
    """The requests whose counts test_exact_counts expects."""
    for name in ("a", "b", "c"):
        check_eq(d.request("GET", "/ok/" + name)[0], 200, "GET /ok/" + name)
    status, _, body, _ = d.request("GET", "/fail")
    check_eq(status, 502, "GET /fail")
    bad_id = re.search(rb'"id": "([^"]+)"', body).group(1).decode()
    check_eq(d.request("GET", "/stuck")[0], 504, "GET /stuck")
    for path in ("/nowhere", "/ok/a/b"):
        check_eq(d.request("GET", path)[0], 404, "GET " + path)
    check_eq(d.request("POST", "/fail")[0], 405, "POST /fail")
    check_eq(d.request("FROB", "/ok/a")[0], 501, "FROB /ok/a")
    check_eq(d.request("POST", "/echo", headers={
        "Content-Type": "text/plain"}, body="hi")[0], 415, "POST text")
    check_eq(d.request("POST", "/echo", headers={
        "Content-Type": "application/json"}, body="{")[0], 400,
        "POST bad JSON")
    check_eq(d.request("GET", "/ok/a%00b")[0], 400, "GET with %00")
    check_eq(raw(d, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1"
                 b"\r\nContent-Length: 1\r\n\r\nx"), 400, "two lengths")
    check_eq(raw(d, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100000\r\n\r\n"), 413, "a large body")
    check_eq(d.request("GET", "/jobs/nope")[0], 404, "GET /jobs/nope")
    check_eq(d.request("DELETE", "/jobs/" + bad_id)[0], 409,
             "DELETE of a finished job")
    check_eq(d.request("GET", "/healthz")[0], 200, "GET /healthz")
    status, headers, body, _ = d.request("HEAD", "/metrics")
    check_eq((status, headers.get("Content-Type"), body),
             (200, CONTENT_TYPE, b""), "HEAD /metrics")
    status, headers, _, _ = d.request("POST", "/metrics")
    check_eq((status, headers.get("Allow")), (405, "GET, HEAD"),
             "POST /metrics")
    return hang_up_while_waiting(d, scrape)


def check_histogram(m, job, outcome, count, low, high):
    """One label set of the job histogram: buckets cumulative up to +Inf,
    which is _count; _sum within [low, high] seconds."""
    fam = "taskpoold_job_duration_seconds"
    buckets = series(m, fam, fam + "_bucket", job=job, outcome=outcome)
    bounds = sorted(buckets, key=lambda le: float(le[0]))
    counts = [buckets[b] for b in bounds]
    check(counts == sorted(counts), "%s/%s buckets not cumulative: %r"
          % (job, outcome, buckets))
    check_eq(bounds[-1], ("+Inf",), "%s/%s last bucket" % (job, outcome))
    check_eq(counts[-1], count, "%s/%s +Inf bucket" % (job, outcome))
    check_eq(value(m, fam, sample=fam + "_count", job=job,
                   outcome=outcome), count, "%s/%s _count" % (job, outcome))
    total = value(m, fam, sample=fam + "_sum", job=job, outcome=outcome)
    check(low <= total <= high, "%s/%s _sum %r outside [%r, %r]"
          % (job, outcome, total, low, high))


def test_exact_counts_after_a_known_sequence():
    need_exec()	# /stuck's job is a program
    t0 = time.time()
    with Daemon(CONFIG) as d:
        scrape = Scraper(d)
        known_sequence(d, scrape)
        before = scrape.scrapes
        m = scrape()
        check_eq({k: v for k, v in FAMILIES.items() if k in m}, FAMILIES,
                 "families and their types")
        check_eq(series(m, "taskpoold_http_requests"), {
            ("/ok/{name}", "GET", "200"): 3,
            ("/fail", "GET", "502"): 1,
            ("/stuck", "GET", "504"): 1,
            ("unmatched", "GET", "404"): 2,
            ("/fail", "POST", "405"): 1,
            ("unmatched", "other", "501"): 1,
            ("/echo", "POST", "415"): 1,
            ("/echo", "POST", "400"): 1,
            ("unmatched", "GET", "400"): 1,
            ("unmatched", "POST", "400"): 1,
            ("unmatched", "POST", "413"): 1,
            ("/jobs/{id}", "GET", "404"): 1,
            ("/jobs/{id}", "DELETE", "409"): 1,
            ("/healthz", "GET", "200"): 1,
            ("/metrics", "HEAD", "200"): 1,
            ("/metrics", "POST", "405"): 1,
            ("/metrics", "GET", "200"): before,
        }, "requests by route, method and code")
        check_eq(series(m, "taskpoold_http_rejections"), {
            ("not_found",): 2,
            ("method_not_allowed",): 2,
            ("unknown_method",): 1,
            ("unsupported_media_type",): 1,
            ("bad_json",): 1,	# the route's body is not JSON
            ("nul_in_path",): 1,
            ("bad_framing",): 1,
            ("body_too_large",): 1,
            ("unknown_job",): 1,
            ("job_finished",): 1,
        }, "rejections by reason")
        check_eq(series(m, "taskpoold_http_client_disconnects"),
                 {("/slow",): 1}, "client disconnects by route")
        check_eq(value(m, "taskpoold_http_waiting_connections"), 0,
                 "waiting connections")
        fam = "taskpoold_job_duration_seconds"
        check_eq(series(m, fam, fam + "_count"), {
            ("ok", "succeeded"): 3, ("bad", "failed"): 1,
            ("stuck", "timed_out"): 1, ("slow", "cancelled"): 1,
        }, "finished jobs by job and outcome")
        check_histogram(m, "ok", "succeeded", 3, 0, 1.0)
        check_histogram(m, "bad", "failed", 1, 0, WAIT)
        check_histogram(m, "stuck", "timed_out", 1, 0.3, WAIT)
        check_histogram(m, "slow", "cancelled", 1, 0, WAIT)
        check_eq(series(m, "taskpoold_registry_jobs"),
                 {("live",): 0, ("finished",): 6}, "registry")
        check_eq([value(m, "taskpoold_pool_" + g) for g in
                  ("workers", "busy_workers", "queue_depth")], [3, 0, 0],
                 "pool workers, busy, queued")
        start = value(m, "process_start_time_seconds")
        check(t0 - 1 <= start <= time.time(), "start time %r, test began "
              "%r" % (start, t0))
        check(value(m, "process_resident_memory_bytes") > 1 << 20,
              "resident memory")
        check(value(m, "process_cpu_seconds") > 0, "CPU seconds")
        # The scrape above is counted in the next one.
        m = scrape()
        check_eq(series(m, "taskpoold_http_requests", route="/metrics",
                        method="GET"), {("200",): before + 1},
                 "the scrapes before this one")
        d.stop()


RELOADED = """
[server]
instance = mtest

[job renamed]
kind = sleep
result = renamed

[route /new]
jobs = renamed
"""


def test_series_of_routes_and_jobs_gone_on_reload_stay():
    with Daemon(CONFIG) as d:
        scrape = Scraper(d)
        check_eq(d.request("GET", "/ok/x")[0], 200, "GET /ok/x")
        n = len(d.log_lines())
        Daemon.write_config(RELOADED, d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, what="the reload")
        check_eq(d.request("GET", "/new")[0], 200, "GET /new")
        check_eq(d.request("GET", "/ok/x")[0], 404, "GET /ok/x again")
        m = scrape()
        check_eq(series(m, "taskpoold_http_requests", method="GET"), {
            ("/ok/{name}", "200"): 1, ("/new", "200"): 1,
            ("unmatched", "404"): 1,
        }, "requests before and after the reload")
        fam = "taskpoold_job_duration_seconds"
        check_eq(series(m, fam, fam + "_count"), {
            ("ok", "succeeded"): 1, ("renamed", "succeeded"): 1,
        }, "jobs before and after the reload")
        d.stop()


if __name__ == "__main__":
    run_tests(globals())
