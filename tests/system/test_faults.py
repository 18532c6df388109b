"""taskpoold system test: faults the daemon must come through whole.

Each test brings about one fault: a program that crashes, hangs past its
timeout or floods both output pipes; an upstream that resets the
connection, never answers, or answers garbage; 1,000 clients that hang up
while they wait; SIGTERM with 500 clients waiting; reloads racing requests.
After each, the daemon must answer the seed route /tasks exactly, and its
RSS and open descriptors (sockets included) must come back to where they
were before the fault: descriptors exactly, RSS within 10 % or 2 MiB
(check_resources_back in taskpoold_test.py), polled from /proc with a
deadline.  The figures go to the log.

Covered elsewhere, and not repeated here: a program killed by SIGKILL
(test_exec.py names the signal), one that ignores SIGTERM past its timeout
(test_exec.py, kill_grace), 100 MiB on stdout alone (test_exec.py, cut at
max_output), one hanging upstream's timeout (test_http.py), hang-ups
counted as 499s (test_disconnect.py), SIGTERM as 2,000 answers fall due
(test_stop.py).

Under valgrind (TASKPOOLD_VALGRIND=1) the client counts are a tenth
(load_scale) and the job durations stay: the bounds are about them.
"""

import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (  # noqa: E402
    Daemon, EX_CONFIG, HOST, Skip, TestFailure, VALGRIND, VALGRIND_SLOWDOWN,
    check, check_eq, check_resources_back, fail, load_scale, log, need_exec,
    quiet_resources, raise_nofile_limit, run_cli, run_tests, srcdir)
from upstream import Upstream  # noqa: E402

# The seed route of the shipped config, in every config here.
SEED = """
[job task1]
kind = sleep
duration = 1s
result = Task 1 done

[job task2]
kind = sleep
duration = 2s
result = Task 2 done

[route /tasks]
jobs = task1 task2
wait = all
timeout = 30s
"""
TASKS_BODY = b'{"results": ["Task 1 done", "Task 2 done"]}'


# glibc's malloc keeps freed memory for reuse; with its default dynamic
# mmap threshold even a freed 1 MiB result stays in an arena, and RSS shows
# the high-water mark, not what is live.  A fixed threshold gives large
# blocks back to the kernel when freed, and trimming returns the top of the
# heap: RSS then follows the live memory.  Set for every daemon here.
MALLOC_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536:"
              "glibc.malloc.trim_threshold=131072"}


def config(body, server=""):
    """The config of a fault test: [registry] retain = 0 drops each job's
    record when it ends, so that what the fault's jobs leave behind is not
    their records (up to max_jobs of them, results included) but a leak."""
    return "[server]\ninstance = faulttest\n" + server + \
        "[registry]\nretain = 0\n" + SEED + body


def check_tasks(d):
    """The seed route answers exactly, as before the fault."""
    status, _, body, elapsed = d.request("GET", "/tasks", timeout=60.0)
    check_eq((status, body), (200, TASKS_BODY), "GET /tasks after the fault")
    return elapsed


def before_fault(d):
    """The level to come back to: taken after one /tasks (the first
    request's one-time allocations are not a fault's)."""
    check_tasks(d)
    return quiet_resources(d.proc.pid)


def after_fault(d, before, what):
    check_tasks(d)
    return check_resources_back(d.proc.pid, before, what)


def get_all(d, path, n, timeout=60.0):
    """n concurrent GETs of path (threads): [(status, parsed body)]."""
    out = [None] * n

    def one(i):
        status, _, body, _ = d.request("GET", path, timeout=timeout)
        out[i] = (status, json.loads(body))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    check(all(o is not None for o in out), "a GET %s got no answer" % path)
    return out


def children_of(pid):
    kids = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            kids += f.read().split()
    return kids


def wait_no_children(pid, timeout=10.0):
    deadline = time.monotonic() + timeout * VALGRIND_SLOWDOWN
    while children_of(pid):
        check(time.monotonic() < deadline, "the daemon still has children "
              "%r" % children_of(pid))
        time.sleep(0.02)


def need_fds(n):
    soft, hard = raise_nofile_limit()
    if soft < n + 100:
        raise Skip("the open file limit is %d (hard %d); %d sockets need "
                   "about %d" % (soft, hard, n, n + 100))


def need_libcurl():
    """Skips unless the build has the http kind (without libcurl, -t
    refuses an http job: EX_CONFIG)."""
    with tempfile.TemporaryDirectory(prefix="taskpoold-test-") as tmp:
        path = os.path.join(tmp, "taskpoold.conf")
        with open(path, "w") as f:
            f.write(config("[job j]\nkind = http\nurl = http://127.0.0.1:1/"
                           "\n"))
        rc, _, err = run_cli(["-t", "-c", path])
    if rc == EX_CONFIG:
        raise Skip("built without libcurl (no http kind): %s" % err.strip())
    check_eq(rc, 0, "taskpoold -t of an http job (stderr %r)" % err)


# ---- programs ---------------------------------------------------------------

def test_programs_that_crash_are_failed_and_leave_nothing():
    need_exec()
    rounds = load_scale(20, floor=3)
    with Daemon(env=MALLOC_ENV, config_text=config("""
[job segv]
kind = exec
command = /bin/sh -c "kill -SEGV $$"
[job abort]
kind = exec
command = /bin/sh -c "kill -ABRT $$"
[route /segv]
jobs = segv
[route /abort]
jobs = abort
""")) as d:
        before = before_fault(d)
        for path, sig in (("/segv", "SIGSEGV"), ("/abort", "SIGABRT")):
            for status, answer in get_all(d, path, rounds):
                job = answer["jobs"][0]
                check_eq((status, job["state"], job["error"]),
                         (502, "failed", "killed by " + sig), path)
        wait_no_children(d.proc.pid)
        after_fault(d, before, "%d SIGSEGV and %d SIGABRT programs"
                    % (rounds, rounds))


def test_programs_that_hang_past_their_timeout_are_ended():
    need_exec()
    n = load_scale(20, floor=3)
    with Daemon(env=MALLOC_ENV, config_text=config("""
[job hang]
kind = exec
command = /bin/sleep 600
timeout = 1s
[route /hang]
jobs = hang
timeout = 1m
""")) as d:
        before = before_fault(d)
        t0 = time.monotonic()
        for status, answer in get_all(d, "/hang", n):
            job = answer["jobs"][0]
            check_eq((status, job["state"], job["error"]),
                     (504, "timed_out",
                      "timed out after 1 s (killed by SIGTERM)"),
                     "/hang")
        log("  %d hanging programs timed out, all answered in %.2f s"
            % (n, time.monotonic() - t0))
        wait_no_children(d.proc.pid)
        after_fault(d, before, "%d programs past their 1 s timeout" % n)


def test_programs_flooding_stdout_and_stderr_at_once_are_read_to_the_end():
    need_exec()
    # Both pipes full at once: a reader that drained one and then the
    # other would hang until the timeout.  50 MiB each, cut at max_output.
    n = load_scale(4, floor=1)
    with Daemon(env=MALLOC_ENV, config_text=config("""
[job flood]
kind = exec
command = /bin/sh -c "(yes err | head -c 52428800 >&2) & \
yes 0123456789abcdef | head -c 52428800; wait"
max_output = 1M
timeout = 5m
[route /flood]
jobs = flood
timeout = 5m
""")) as d:
        before = before_fault(d)
        t0 = time.monotonic()
        for status, answer in get_all(d, "/flood", n, timeout=300.0):
            check_eq(status, 200, "/flood status")
            check_eq(len(answer["results"][0]), 1 << 20, "result length")
        log("  %d programs of 2 x 50 MiB read in %.2f s"
            % (n, time.monotonic() - t0))
        wait_no_children(d.proc.pid)
        after_fault(d, before, "%d programs flooding 2 x 50 MiB" % n)


# ---- upstreams --------------------------------------------------------------

def test_upstreams_that_reset_hang_or_answer_garbage_fail_their_jobs():
    need_libcurl()
    n = load_scale(20, floor=3)
    with Upstream() as up:
        with Daemon(env=MALLOC_ENV, config_text=config("""
[job reset]
kind = http
url = URL/reset
retries = 0
[job hang]
kind = http
url = URL/hang
timeout = 1s
[job garbage]
kind = http
url = URL/garbage
retries = 0
[route /reset]
jobs = reset
[route /hang]
jobs = hang
[route /garbage]
jobs = garbage
""".replace("URL", up.url("")))) as d:
            before = before_fault(d)
            for path, status_expected, state in (
                    ("/reset", 502, "failed"), ("/hang", 504, "timed_out"),
                    ("/garbage", 502, "failed")):
                answers = get_all(d, path, n)
                for status, answer in answers:
                    job = answer["jobs"][0]
                    check_eq((status, job["state"]), (status_expected, state),
                             "%s (error %r)" % (path, job.get("error")))
                log("  %s: %d x %d %s: %s" % (path, n, status_expected, state,
                                              answers[0][1]["jobs"][0]
                                              .get("error")))
            after_fault(d, before, "%d upstreams each resetting, hanging "
                        "and answering garbage" % n)


# ---- clients ----------------------------------------------------------------

async def hang_up_while_waiting(d, n):
    """n clients send GET /long, wait until all n are in, then close."""
    async def one():
        return await asyncio.wait_for(asyncio.open_connection(HOST, d.port),
                                      timeout=30.0)
    conns = await asyncio.gather(*(one() for _ in range(n)))
    for _, w in conns:
        w.write(b"GET /long HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for _, w in conns:
        await w.drain()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, wait_health, d,
                               lambda v: v["jobs_live"] >= n, 60.0,
                               "all %d requests in" % n)
    for _, w in conns:
        w.close()
    for _, w in conns:
        try:
            await w.wait_closed()
        except OSError:
            pass


def wait_health(d, pred, timeout, what):
    deadline = time.monotonic() + timeout * VALGRIND_SLOWDOWN
    while True:
        v = d.get_json("/healthz")
        if pred(v):
            return v
        if time.monotonic() > deadline:
            fail("%s: not within %.0f s; /healthz says %r"
                 % (what, timeout, v))
        time.sleep(0.05)


def test_1000_clients_hanging_up_mid_wait_give_everything_back():
    n = load_scale(1000, floor=50)
    need_fds(n)
    with Daemon(env=MALLOC_ENV, config_text=config("""
[job long]
kind = sleep
duration = 30s
result = long
[route /long]
jobs = long
timeout = 1m
on_disconnect = cancel
""", server="threads = 2\n")) as d:
        before = before_fault(d)
        t0 = time.monotonic()
        asyncio.run(hang_up_while_waiting(d, n))
        v = wait_health(d, lambda v: v["jobs_live"] == 0 and
                        v["clients_gone"] >= n, 30.0,
                        "every job of a gone client cancelled")
        check_eq(v["clients_gone"], n, "clients_gone")
        log("  %d clients hung up; all jobs cancelled %.2f s after the "
            "first connect" % (n, time.monotonic() - t0))
        after_fault(d, before, "%d clients hanging up mid-wait" % n)


# ---- stop and reload --------------------------------------------------------

async def wait_then_stop(d, n, stop_within):
    """n clients wait on /long (30 s jobs), 2 on /tasks; SIGTERM once all
    are in; returns ({status or how it ended: count}, /tasks answers,
    the exit status, seconds from SIGTERM to exit)."""
    async def connect():
        return await asyncio.wait_for(asyncio.open_connection(HOST, d.port),
                                      timeout=30.0)

    async def answer(r, w):
        try:
            data = await asyncio.wait_for(r.read(), timeout=120.0)
        except (asyncio.TimeoutError, OSError) as e:
            return "error %s" % type(e).__name__, b""
        finally:
            w.close()
        if not data:
            return "closed", b""
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    conns = await asyncio.gather(*(connect() for _ in range(n + 2)))
    for i, (_, w) in enumerate(conns):
        path = "/tasks" if i < 2 else "/long"
        w.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                 "\r\n\r\n" % path).encode())
    for _, w in conns:
        await w.drain()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, wait_health, d,
                               lambda v: v["jobs_live"] >= n + 4, 60.0,
                               "all %d requests in" % (n + 2))
    tasks = [asyncio.ensure_future(answer(r, w)) for r, w in conns]
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc, _ = await loop.run_in_executor(None, d.wait_exit, stop_within)
    elapsed = time.monotonic() - t0
    results = await asyncio.gather(*tasks)
    counts = {}
    for status, _ in results[2:]:
        counts[status] = counts.get(status, 0) + 1
    return counts, results[:2], rc, elapsed


def test_sigterm_with_500_waiting_answers_every_client_and_exits_0():
    # drain_timeout = 3s: /tasks (2 s) is drained and answered in full; the
    # 30 s jobs are cancelled at the drain's end and their clients get 503.
    n = load_scale(500, floor=50)
    need_fds(n)
    stop_within = 3.0 + 10.0 * VALGRIND_SLOWDOWN
    with Daemon(env=MALLOC_ENV, config_text=config("""
[job long]
kind = sleep
duration = 30s
result = long
[route /long]
jobs = long
timeout = 1m
""", server="drain_timeout = 3s\n")) as d:
        before = before_fault(d)
        counts, tasks, rc, elapsed = asyncio.run(
            wait_then_stop(d, n, stop_within))
        log("  SIGTERM with %d waiting: exit %r after %.2f s; answers %r; "
            "/tasks %r; before: RSS %d KiB, %d descriptors"
            % (n, rc, elapsed, counts, [t[0] for t in tasks], before[0],
               before[1]))
        check_eq(rc, 0, "exit status")
        check(elapsed <= stop_within, "exit %.2f s after SIGTERM (bound "
              "%.1f s)" % (elapsed, stop_within))
        check_eq(tasks, [(200, TASKS_BODY)] * 2, "/tasks during the drain")
        check_eq(counts, {503: n}, "the waiting clients' answers")


def test_requests_racing_20_reloads_all_get_their_answer():
    # Each reload switches /fast's result between two values; an answer
    # must be one of them, whole, and every request must get one.
    template = config("""
[job fast]
kind = sleep
duration = 20ms
result = RESULT
[route /fast]
jobs = fast
""")
    reloads = 20
    clients = 4
    with Daemon(template.replace("RESULT", "even"), env=MALLOC_ENV) as d:
        before = before_fault(d)
        stop = threading.Event()
        answers = []
        errors = []

        def client():
            while not stop.is_set():
                try:
                    status, _, body, _ = d.request("GET", "/fast")
                    answers.append((status, body))
                except AssertionError as e:
                    errors.append(str(e))
                    return
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        try:
            start = 0
            for i in range(1, reloads + 1):
                sent = len(answers)
                d.write_config(template.replace(
                    "RESULT", "odd" if i % 2 else "even"), d.config_path)
                d.send_signal(signal.SIGHUP)
                d.wait_for_log(r" info: reloaded ", start=start,
                               timeout=10.0 * VALGRIND_SLOWDOWN,
                               what="reload %d" % i)
                start = len(d.log_lines())
                # Requests in flight across each reload, however loaded
                # the machine: the next waits for answers to this one's.
                deadline = time.monotonic() + 30.0 * VALGRIND_SLOWDOWN
                while len(answers) < sent + clients and not errors:
                    check(time.monotonic() < deadline, "no answers after "
                          "reload %d" % i)
                    time.sleep(0.005)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        check_eq(errors, [], "requests that got no answer")
        good = {(200, b'{"results": ["even"]}'), (200, b'{"results": '
                                                     b'["odd"]}')}
        bad = [a for a in answers if a not in good]
        check_eq(bad[:5], [], "wrong answers during the reloads")
        log("  %d requests during %d reloads, all answered" %
            (len(answers), reloads))
        after_fault(d, before, "%d requests racing %d reloads"
                    % (len(answers), reloads))


# ---- valgrind itself --------------------------------------------------------

def test_under_valgrind_a_leak_or_an_uninitialised_read_fails_the_test():
    # The valgrind mode must be able to fail: a plugin job that loses a
    # block, and one that branches on uninitialised memory
    # (tests/plugins/testjobs.c), must each fail the daemon's stop with
    # valgrind's report.
    if not VALGRIND:
        raise Skip("only under valgrind (TASKPOOLD_VALGRIND=1)")
    plugins = os.environ.get("TASKPOOLD_PLUGINDIR") or os.path.join(
        srcdir(), "tests", "plugins")
    for function, marker in (("leak", "are definitely lost"),
                             ("uninit", "Conditional jump or move depends "
                              "on uninitialised value")):
        with Daemon(config("""
[job j]
kind = plugin
library = %s/testjobs.so
function = %s
[route /j]
jobs = j
""" % (plugins, function))) as d:
            status, _, body, _ = d.request("GET", "/j")
            check_eq(status, 200, "GET /j (%s; body %r)" % (function, body))
            try:
                d.stop()
            except TestFailure as e:
                check("valgrind found errors" in str(e) and marker in str(e),
                      "%s: the failure is not valgrind's report of it: %s"
                      % (function, e))
                log("  %s: valgrind's report failed the test, as it must"
                    % function)
            else:
                fail("%s: valgrind found nothing" % function)


if __name__ == "__main__":
    run_tests(globals())
