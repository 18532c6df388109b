"""taskpoold system test: 1,000 concurrent waiting requests.

A daemon with 2 HTTP threads and 2 workers serves a /tasks-like route of two
sleep jobs (1 s and 2 s).  1,000 clients, each on its own socket opened at
once (asyncio, one thread), send GET /tasks together: every one must be
answered with the exact body about 2 s after it was sent, and /healthz must
answer at once meanwhile.  If a waiting request held an HTTP thread, or a
job held a worker, this would take minutes, not seconds.
"""

import asyncio
import json
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, Skip, check, check_eq,  # noqa: E402
                            VALGRIND, fail, load_scale, log,
                            raise_nofile_limit, rss_kib, run_tests)

CLIENTS = load_scale(1000)	# 100 under valgrind
NEEDED_FDS = CLIENTS + 100
LOW, HIGH = 1.9, 4.0		# seconds from send to complete answer
HEALTH_MAX = 0.5

CONFIG = """
[server]
instance = conctest
threads = 2

[pool]
workers = 2

[job task1]
kind = sleep
duration = 1s
result = Task 1 done

[job task2]
kind = sleep
duration = 2s
result = Task 2 done

[route /tasks]
method = GET
jobs = task1 task2
wait = all
timeout = 30s
"""

EXPECTED_BODY = b'{"results": ["Task 1 done", "Task 2 done"]}'
REQUEST = (b"GET /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Connection: close\r\n\r\n")
HEALTH_REQUEST = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")


def split_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None, body
    status_line = head.split(b"\r\n", 1)[0].split(b" ")
    try:
        return int(status_line[1]), body
    except (IndexError, ValueError):
        return None, body


async def open_all(port, n):
    async def one():
        return await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                      timeout=20.0)
    results = await asyncio.gather(*(one() for _ in range(n)),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for r in results:
            if not isinstance(r, BaseException):
                r[1].close()
        fail("%d of %d connections failed, e.g. %r"
             % (len(errors), n, errors[0]))
    return results


async def read_answer(reader, writer, timeout):
    try:
        data = await asyncio.wait_for(reader.read(), timeout=timeout)
        return time.monotonic(), data
    except asyncio.TimeoutError:
        return time.monotonic(), None
    except OSError as e:
        return time.monotonic(), e
    finally:
        writer.close()


async def health_once(port):
    t0 = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                      timeout=5.0)
        try:
            w.write(HEALTH_REQUEST)
            data = await asyncio.wait_for(r.read(), timeout=5.0)
        finally:
            w.close()
    except (asyncio.TimeoutError, OSError) as e:
        fail("GET /healthz failed after %.2f s while %d requests waited: "
             "%r" % (time.monotonic() - t0, CLIENTS, e))
    elapsed = time.monotonic() - t0
    status, body = split_response(data)
    check_eq(status, 200, "GET /healthz status while waiting")
    return elapsed, json.loads(body)


async def probe_health(port, until, out):
    """GET /healthz every 100 ms until `until` (monotonic)."""
    while time.monotonic() < until:
        out.append(await health_once(port))
        await asyncio.sleep(0.1)


async def storm(port):
    conns = await open_all(port, CLIENTS)
    t_open = time.monotonic()
    sent = []
    for r, w in conns:
        w.write(REQUEST)
        sent.append(time.monotonic())
    t_all_sent = time.monotonic()
    readers = [asyncio.ensure_future(read_answer(r, w, HIGH + 20.0))
               for r, w in conns]
    # Probe /healthz while the requests wait: from just after they are
    # sent until the first 1 s jobs are about to finish.
    await asyncio.sleep(0.2)
    health = []
    await probe_health(port, min(sent) + 1.5, health)
    answers = await asyncio.gather(*readers)
    return t_open, t_all_sent, sent, answers, health


def need_fds():
    soft, hard = raise_nofile_limit()
    if soft < NEEDED_FDS:
        raise Skip("the open file limit is %d (hard %d); %d concurrent "
                   "sockets need about %d" % (soft, hard, CLIENTS,
                                             NEEDED_FDS))


def check_answers(d, sent, answers):
    """Asserts every answer is 200 with the exact body; returns latencies."""
    latencies = []
    bad = []
    for i, (t_sent, (t_done, data)) in enumerate(zip(sent, answers)):
        if data is None:
            bad.append("#%d: no answer within %.0f s" % (i, HIGH + 20))
            continue
        if isinstance(data, BaseException):
            bad.append("#%d: %r" % (i, data))
            continue
        status, body = split_response(data)
        if status != 200 or body != EXPECTED_BODY:
            bad.append("#%d: status %r, body %r" % (i, status, body))
            continue
        latencies.append(t_done - t_sent)
    if bad:
        fail("%d of %d requests failed, e.g.:\n    %s\nlog tail:\n%s"
             % (len(bad), len(sent), "\n    ".join(bad[:5]),
                "\n".join(d.log_text().splitlines()[-20:])))
    return latencies


def test_1000_concurrent_waiting_requests():
    need_fds()
    with Daemon(CONFIG) as d:
        t0 = time.monotonic()
        t_open, t_all_sent, sent, answers, health = asyncio.run(
            storm(d.port))
        log("  %d connections opened in %.3f s; requests written in %.3f s"
            % (CLIENTS, t_open - t0, t_all_sent - t_open))

        latencies = check_answers(d, sent, answers)
        latencies.sort()
        n = len(latencies)
        log("  latencies of %d requests: min %.3f s, median %.3f s, "
            "p99 %.3f s, max %.3f s" % (
                n, latencies[0], statistics.median(latencies),
                latencies[min(n - 1, int(n * 0.99))], latencies[-1]))
        log("  all answered %.3f s after the first was sent"
            % (max(t for t, _ in answers) - min(sent)))
        check_eq(n, CLIENTS, "answers")
        slow = [l for l in latencies if not LOW <= l <= HIGH]
        check(not slow, "%d requests outside [%.1f s, %.1f s] from send to "
              "answer (min %.3f s, max %.3f s)"
              % (len(slow), LOW, HIGH, latencies[0], latencies[-1]))

        check(health, "no /healthz probe ran while the requests waited")
        h_lat = [e for e, _ in health]
        max_live = max(v["jobs_live"] for _, v in health)
        log("  /healthz while waiting: %d probes, max %.3f s; "
            "jobs_live up to %d" % (len(health), max(h_lat), max_live))
        check(max(h_lat) < HEALTH_MAX, "/healthz took %.3f s while %d "
              "requests waited (limit %.1f s)" % (max(h_lat), CLIENTS,
                                                  HEALTH_MAX))
        # Every request's two jobs existed at once: nothing was serialised.
        check(max_live >= CLIENTS,
              "at most %d jobs were live at once while %d requests of 2 "
              "jobs waited" % (max_live, CLIENTS))

        v = d.get_json("/healthz")
        check_eq((v["jobs_live"], v["jobs_finished"]), (0, 2 * CLIENTS),
                 "/healthz (live, finished) after the storm")
        deadline = time.monotonic() + 5
        while len(d.job_done_lines()) < 2 * CLIENTS and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        check_eq(len(d.job_done_lines()), 2 * CLIENTS,
                 "'job NAME done' log lines")
        d.stop()


async def storm_and_stop(d):
    conns = await open_all(d.port, CLIENTS)
    sent = []
    for r, w in conns:
        w.write(REQUEST)
        sent.append(time.monotonic())
    readers = [asyncio.ensure_future(read_answer(r, w, HIGH + 20.0))
               for r, w in conns]
    # Stop while every request waits for its jobs (1 s and 2 s): once all
    # are in (the backlog of a quiesced daemon is reset, by design).
    while True:
        _, v = await health_once(d.port)
        if v["jobs_live"] + v["jobs_finished"] >= 2 * CLIENTS:
            break
        if time.monotonic() - min(sent) > 1.5:
            fail("only %d of %d requests came in within 1.5 s: %r"
                 % ((v["jobs_live"] + v["jobs_finished"]) // 2, CLIENTS, v))
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, min(sent) + 0.5 - time.monotonic()))
    t_signal = time.monotonic()
    d.send_signal(signal.SIGTERM)
    answers = await asyncio.gather(*readers)
    return t_signal, sent, answers


def test_sigterm_while_1000_requests_wait():
    """Nothing lost on shutdown: every waiting request gets its answer."""
    need_fds()
    with Daemon(CONFIG) as d:
        t_signal, sent, answers = asyncio.run(storm_and_stop(d))
        latencies = check_answers(d, sent, answers)
        rc, _ = d.wait_exit(timeout=15.0)
        elapsed = time.monotonic() - t_signal
        latencies.sort()
        log("  SIGTERM ~0.5 s into %d waiting requests: all answered "
            "(latency %.3f s .. %.3f s); exit %d %.3f s after the signal"
            % (CLIENTS, latencies[0], latencies[-1], rc, elapsed))
        check_eq(rc, 0, "exit status after SIGTERM")
        check(LOW <= latencies[0] and latencies[-1] <= HIGH,
              "latencies %.3f s .. %.3f s outside [%.1f s, %.1f s]"
              % (latencies[0], latencies[-1], LOW, HIGH))
        # The last 2 s jobs end ~1.5 s after the signal; then it exits.
        check(elapsed < HIGH + 1.0, "exit %.2f s after SIGTERM" % elapsed)
        check_eq(len(d.job_done_lines()), 2 * CLIENTS,
                 "'job NAME done' log lines (none cancelled)")

BODY_CLIENTS = 300
BODY_SIZE = 60000
BODY_CONFIG = """
[server]
instance = bodytest
threads = 2
connection_memory = 8K
drain_timeout = 0

[job long]
kind = sleep
duration = 30s
result = long

[route /upload]
method = POST
jobs = long
wait = all
timeout = 1m
"""


async def upload_and_wait(d, body):
    """BODY_CLIENTS POSTs of body, all waiting for their job; returns the
    open connections."""
    conns = await open_all(d.port, BODY_CLIENTS)
    head = ("POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % len(body)).encode()
    # One at a time, each in before the next: what is measured is what
    # waiting requests hold, not what uploads in flight hold.
    deadline = time.monotonic() + 30.0
    for i, (_, w) in enumerate(conns):
        w.write(head + body)
        await w.drain()
        while (await health_once(d.port))[1]["jobs_live"] <= i:
            if time.monotonic() > deadline:
                fail("only %d of %d uploads came in within 30 s"
                     % (i, BODY_CLIENTS))
    return conns


def under_sanitizer(pid):
    """True if the process runs with ASan or TSan, whose allocators keep
    freed memory (a quarantine), or under valgrind (whose RSS is its own),
    and so make RSS say nothing of ours."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps or VALGRIND


def rss_growth_with_waiting_uploads(body):
    with Daemon(BODY_CONFIG) as d:
        if under_sanitizer(d.proc.pid):
            raise Skip("RSS under a sanitizer counts its quarantine")
        before = rss_kib(d.proc.pid)

        async def run():
            conns = await upload_and_wait(d, body)
            after = rss_kib(d.proc.pid)
            d.send_signal(signal.SIGTERM)
            for r, w in conns:
                await read_answer(r, w, 10.0)
            return after
        after = asyncio.run(run())
        d.wait_exit(timeout=15.0)
    return after - before


def test_waiting_requests_hold_no_body():
    """A request's body is freed once its handler returns: 300 uploads of
    60 KB waiting for their jobs cost about what 300 empty ones do, not
    18 MB more."""
    need_fds()
    # A body is a route's parameters: an empty JSON object, padded.
    with_body = rss_growth_with_waiting_uploads(
        b"{" + b" " * (BODY_SIZE - 2) + b"}")
    without = rss_growth_with_waiting_uploads(b"")
    log("  RSS growth with %d waiting uploads: %d KiB with %d-byte bodies, "
        "%d KiB with empty ones" % (BODY_CLIENTS, with_body, BODY_SIZE,
                                    without))
    held = BODY_CLIENTS * BODY_SIZE // 1024
    check(with_body - without < held // 4,
          "the bodies cost %d KiB of RSS while waiting (all of them held "
          "would be %d KiB)" % (with_body - without, held))


if __name__ == "__main__":
    run_tests(globals())
