"""taskpoold system test: clients that hang up while they wait.

A suspended connection holds no thread, and libmicrohttpd does not look at
it until it is resumed; the HTTP threads watch those sockets themselves.
1,000 clients send a request whose jobs take 30 s, then close their sockets
at once: the daemon must notice every one (counted in /healthz as
clients_gone, logged like nginx's 499), and the route's on_disconnect says
what becomes of their jobs: they go on (detach) or end cancelled (cancel).
"""

import asyncio
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, HOST, Skip, check, check_eq,  # noqa: E402
                            fail, log, raise_nofile_limit, run_tests)

CLIENTS = 1000
NEEDED_FDS = 1100
NOTICE_WITHIN = 10.0	# seconds for all hang-ups to be seen (loaded CI)

CONFIG = """
[server]
instance = gonetest
threads = 2

[job long]
kind = sleep
duration = 30s
result = long done

[route /detach]
jobs = long long
wait = all
timeout = 1m
on_disconnect = detach

[route /cancel]
jobs = long long
wait = all
timeout = 1m
on_disconnect = cancel
"""

GONE_LINE = " info: GET %s: client closed the connection while waiting (499)"


def need_fds():
    soft, hard = raise_nofile_limit()
    if soft < NEEDED_FDS:
        raise Skip("the open file limit is %d (hard %d); %d sockets need "
                   "about %d" % (soft, hard, CLIENTS, NEEDED_FDS))


def wait_health(d, pred, timeout, what):
    """Polls /healthz until pred(value) holds; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        v = d.get_json("/healthz")
        if pred(v):
            return v
        if time.monotonic() > deadline:
            fail("%s: not within %.0f s; /healthz says %r"
                 % (what, timeout, v))
        time.sleep(0.05)


async def send_then_close(port, path, d):
    """Opens CLIENTS connections, sends the request on each, waits until
    every request's jobs are live (so every connection is suspended), then
    closes them all."""
    async def one():
        return await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                      timeout=20.0)
    conns = await asyncio.gather(*(one() for _ in range(CLIENTS)))
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
    for _, w in conns:
        w.write(request)
    for _, w in conns:
        await w.drain()
    await asyncio.get_running_loop().run_in_executor(
        None, wait_health, d, lambda v: v["jobs_live"] >= 2 * CLIENTS,
        NOTICE_WITHIN, "all %d requests in" % CLIENTS)
    for _, w in conns:
        w.close()
    for _, w in conns:
        try:
            await w.wait_closed()
        except OSError:
            pass


def hang_up_all(d, path):
    t0 = time.monotonic()
    asyncio.run(send_then_close(d.port, path, d))
    v = wait_health(d, lambda v: v["clients_gone"] >= CLIENTS,
                    NOTICE_WITHIN, "%d hang-ups counted" % CLIENTS)
    log("  %s: %d clients closed; all counted %.2f s after they were sent"
        % (path, CLIENTS, time.monotonic() - t0))
    check_eq(v["clients_gone"], CLIENTS, "clients_gone")
    check_logged(d, GONE_LINE % path, CLIENTS, "499 log lines")
    return v


DROPPED_RE = re.compile(r" warning: log: (\d+) lines dropped$", re.M)


def check_logged(d, text, expected, what):
    """Asserts that `expected` lines of text were logged.  A burst of
    thousands of lines may overflow the log's queue (by design: no thread
    waits for stderr), which then says how many it dropped: every line
    must be seen or counted there, and at least one seen."""
    deadline = time.monotonic() + NOTICE_WITHIN
    while True:
        log_text = d.log_text()
        seen = log_text.count(text)
        dropped = sum(int(n) for n in DROPPED_RE.findall(log_text))
        if seen + dropped >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if dropped:
        log("  %s: %d seen, %d lines of the log dropped in the burst"
            % (what, seen, dropped))
    check(seen > 0 and seen <= expected and seen + dropped >= expected,
          "%s: %d seen and %d dropped, expected %d"
          % (what, seen, dropped, expected))


def test_hang_ups_are_counted_and_detached_jobs_go_on():
    need_fds()
    with Daemon(CONFIG) as d:
        v = hang_up_all(d, "/detach")
        check_eq(v["jobs_live"], 2 * CLIENTS, "jobs still live (detached)")
        # Still running a moment later: nothing cancelled them.
        time.sleep(0.2)
        check_eq(d.get_json("/healthz")["jobs_live"], 2 * CLIENTS,
                 "jobs live 0.2 s after the hang-ups")
        check(" cancelled after " not in d.log_text(),
              "a detached job was cancelled")
        d.stop(timeout=30.0)


def test_hang_ups_cancel_the_jobs_when_the_route_says_so():
    need_fds()
    with Daemon(CONFIG) as d:
        hang_up_all(d, "/cancel")
        v = wait_health(d, lambda v: v["jobs_live"] == 0, NOTICE_WITHIN,
                        "every job of a gone client ended")
        check_eq(v["jobs_finished"], 2 * CLIENTS, "jobs finished")
        check_logged(d, " info: job long cancelled after ", 2 * CLIENTS,
                     "'job long cancelled' log lines")
        # A client that stays is not touched: its answer still comes.
        status, _, body, _ = d.request("GET", "/healthz")
        check_eq(status, 200, "GET /healthz after the hang-ups")
        d.stop()


if __name__ == "__main__":
    run_tests(globals())
