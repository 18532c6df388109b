"""taskpoold system test: stopping while thousands of answers fall due.

Each round starts a daemon, has 2,000 clients wait on a route whose jobs
end about when SIGTERM comes (with no drain time), so that the timer
thread completes runs and hands answers over while the main thread cancels
the rest and stops the server: the window in which a publisher used to
touch freed HTTP threads.  Every round must exit 0 with every client
answered (200, or 503 for a cancelled run) and, in the sanitizer builds,
no report.  TASKPOOLD_STOP_ROUNDS sets the rounds (.ci/run runs 50 under
AddressSanitizer; make check runs a few).

A second SIGTERM during the drain ends it at once: the jobs still running
are cancelled, their clients answered, and the daemon exits 0.
"""

import asyncio
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, Skip, check, check_eq,  # noqa: E402
                            fail, log, raise_nofile_limit, run_tests)

CLIENTS = 2000
NEEDED_FDS = 2200
ROUNDS = int(os.environ.get("TASKPOOLD_STOP_ROUNDS", "4"))

RACE_CONFIG = """
[server]
instance = stoptest
threads = 2
drain_timeout = 0

[job a]
kind = sleep
duration = 1s
result = a

[job b]
kind = sleep
duration = 1020ms
result = b

[route /ab]
jobs = a b
wait = all
timeout = 30s
"""

REQUEST = b"GET /ab HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def need_fds():
    soft, hard = raise_nofile_limit()
    if soft < NEEDED_FDS:
        raise Skip("the open file limit is %d (hard %d); %d sockets need "
                   "about %d" % (soft, hard, CLIENTS, NEEDED_FDS))


async def read_status(reader, writer):
    try:
        data = await asyncio.wait_for(reader.read(), timeout=30.0)
    except (asyncio.TimeoutError, OSError) as e:
        return repr(e)
    finally:
        writer.close()
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return repr(data[:80])


async def wait_and_stop(d, offset):
    """CLIENTS requests in, then SIGTERM `offset` s after the first was
    sent; returns each client's status."""
    async def one():
        return await asyncio.wait_for(asyncio.open_connection(HOST, d.port),
                                      timeout=20.0)
    conns = await asyncio.gather(*(one() for _ in range(CLIENTS)))
    t0 = time.monotonic()
    for _, w in conns:
        w.write(REQUEST)
    readers = [asyncio.ensure_future(read_status(r, w)) for r, w in conns]
    # Every request in first: a quiesced daemon resets the backlog.
    while True:
        v = await asyncio.get_running_loop().run_in_executor(
            None, d.get_json, "/healthz")
        if v["jobs_live"] + v["jobs_finished"] >= 2 * CLIENTS:
            break
        if time.monotonic() - t0 > 10.0:
            fail("only %r of %d jobs in after 10 s" % (v, 2 * CLIENTS))
        await asyncio.sleep(0.02)
    await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
    d.send_signal(signal.SIGTERM)
    return await asyncio.gather(*readers)


def test_sigterm_as_2000_answers_fall_due_exits_0_every_round():
    need_fds()
    statuses = {}
    for i in range(ROUNDS):
        # From before the jobs end to after: the stop meets answers
        # being handed over at a different point each round.
        offset = 0.95 + 0.1 * (i % 4) / 3
        with Daemon(RACE_CONFIG) as d:
            got = asyncio.run(wait_and_stop(d, offset))
            rc, _ = d.wait_exit(timeout=30.0)
            check_eq(rc, 0, "round %d: exit status" % i)
        bad = [s for s in got if s not in (200, 503)]
        check(not bad, "round %d: %d clients not answered 200 or 503, "
              "e.g. %r" % (i, len(bad), bad[:3]))
        for s in got:
            statuses[s] = statuses.get(s, 0) + 1
    log("  %d rounds of %d clients: %r" % (ROUNDS, CLIENTS, statuses))


SLOW_CONFIG = """
[server]
instance = stoptest
drain_timeout = 1m

[job slow]
kind = sleep
duration = 1m
result = slow

[route /slow]
jobs = slow
wait = all
timeout = 2m
"""


async def second_sigterm(d):
    r, w = await asyncio.open_connection(HOST, d.port)
    w.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reader = asyncio.ensure_future(read_status(r, w))
    while d.get_json("/healthz")["jobs_live"] == 0:
        await asyncio.sleep(0.02)
    d.send_signal(signal.SIGTERM)
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: d.wait_for_log(r" info: Terminated: stopping$", 10.0))
    t = time.monotonic()
    d.send_signal(signal.SIGTERM)
    return t, await reader


def test_second_sigterm_during_the_drain_stops_at_once():
    with Daemon(SLOW_CONFIG) as d:
        t, status = asyncio.run(second_sigterm(d))
        rc, _ = d.wait_exit(timeout=10.0)
        elapsed = time.monotonic() - t
        log("  exit %d %.3f s after the second SIGTERM" % (rc, elapsed))
        check_eq(rc, 0, "exit status")
        check(elapsed < 3.0, "exit %.2f s after the second SIGTERM (the "
              "drain_timeout is 1 minute)" % elapsed)
        check_eq(status, 503, "the waiting client's answer")
        check(" cancelled after " in d.log_text(), "the job was not "
              "cancelled; log:\n%s" % d.log_text())
        d.wait_for_log(r"second signal", timeout=1.0,
                       what="the log line about the second signal")


if __name__ == "__main__":
    run_tests(globals())
