"""taskpoold system test: kind exec runs real programs.

Each test runs small scripts (tests/system/exec/) or system programs behind
a route and checks what comes back: the result, the failure, the time out,
and what the child got (stdin, environment, descriptors).  The daemon must
leave nothing behind: no zombie, no descriptor, no process of a cancelled
job.  Parameters go in over HTTP (query string, JSON body, path segment)
and each value, injection attempts included, must reach the program as
exactly one literal argument (argv.py prints what it got) or be refused
with a 400.
"""

import json
import os
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, start_job as start, job_record as record,
                            wait_job_state as wait_state,
                            cancel_job as delete, check, check_between, check_eq,  # noqa: E402
                            check_problem, fd_count, need_exec, rss_kib, srcdir,
                            run_tests)

EXEC = os.path.join(srcdir(), "tests", "system", "exec")


def config(body, server=""):
    need_exec()	# every test here runs programs
    return "[server]\ninstance = exectest\n" + server + \
        body.replace("@EXEC@", EXEC)


def get(d, path, timeout=60.0):
    status, headers, body, elapsed = d.request("GET", path, timeout=timeout)
    return status, json.loads(body), elapsed


def only_job(answer):
    check_eq(len(answer["jobs"]), 1, "jobs in the problem")
    return answer["jobs"][0]


def children_of(pid):
    """Pids of pid's children, from every thread's children list."""
    kids = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            kids += f.read().split()
    return kids


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists("/proc/%d" % pid):
            return True
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ")[1].startswith("Z"):
                return True	# a zombie of the test's own making
        time.sleep(0.02)
    return False


def read_pid(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError("no pid in %s" % path)


# ---- records ----------------------------------------------------------------

def overlap(records):
    """The most records running at one instant (from started/finished)."""
    events = []
    for r in records:
        events.append((r["started"], 1))
        events.append((r["finished"], -1))
    events.sort(key=lambda e: (e[0], e[1]))	# an end before a start
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


# ---- parameters into argv ---------------------------------------------------

# argv.py prints its arguments as a JSON array.  `argv` takes a string
# without a pattern (so no leading '-' and no control character), both alone
# and inside a longer argument; `loose` takes anything a pattern of .* lets
# through; `typed` takes one value of each other type, all with defaults.
ARGV_CONFIG = """
[job argv]
kind = exec
output = json
command = @EXEC@/argv.py {v} "x {v} y"
param.v = string max=64

[job loose]
kind = exec
output = json
command = @EXEC@/argv.py {v}
param.v = string max=64 pattern=.*

[job typed]
kind = exec
output = json
command = @EXEC@/argv.py {n} {flag} {mode}
param.n = int min=-5 max=100 default=7
param.flag = bool default=false
param.mode = enum fast|slow default=fast

[route /argv]
jobs = argv
[route /argv/{v}]
jobs = argv
[route /argv-json]
method = POST
jobs = argv

[route /loose]
jobs = loose
[route /loose/{v}]
jobs = loose
[route /loose-json]
method = POST
jobs = loose

[route /typed]
jobs = typed
[route /typed-json]
method = POST
jobs = typed
"""

# What an attacker would try on a shell, and what a careless splitter or
# globber would mangle.  Each must arrive as itself, in one argument.
INJECTIONS = ["; rm -rf /", "$(id)", "`id`", "a b", '"quotes"', "'single'",
              "*", "~", "~root", "%00", "a;b|c&d>e<f", "$HOME", "\\", "{v}",
              "caf\u00e9", "x" * 64]

SOURCES = ("query", "json", "path")


def ask_with(d, route, source, params):
    """GET ROUTE?k=v, POST ROUTE-json {k: v} or GET ROUTE/v (one value):
    (status, headers, body)."""
    if source == "query":
        path = route + "?" + urllib.parse.urlencode(params,
                                                    quote_via=urllib.parse.quote)
        status, headers, body, _ = d.request("GET", path)
    elif source == "json":
        status, headers, body, _ = d.request(
            "POST", route + "-json", body=json.dumps(params),
            headers={"Content-Type": "application/json"})
    else:
        (value,) = params.values()
        path = route + "/" + urllib.parse.quote(value, safe="")
        status, headers, body, _ = d.request("GET", path)
    return status, headers, body


def argv_of(d, route, source, value):
    """The argv (after argv[0]) that the job got for v = value."""
    status, _, body = ask_with(d, route, source, {"v": value})
    check_eq(status, 200, "%s of %r via %s: status (body %r)"
             % (route, value, source, body))
    return json.loads(body)["results"][0]


def refused_400(d, route, source, value, reason):
    status, headers, body = ask_with(d, route, source, {"v": value})
    check_problem(status, headers, body, 400, "%s of %r via %s"
                  % (route, value, source),
                  detail="parameter 'v' %s" % reason)


def test_stdout_is_the_result_without_its_last_newline():
    with Daemon(config("""
[job hello]
kind = exec
command = /usr/bin/printf "hello %s\\n\\n" "big world"
[route /hello]
jobs = hello
""")) as d:
        status, answer, _ = get(d, "/hello")
        check_eq((status, answer), (200, {"results": ["hello big world\n"]}),
                 "answer")


def test_output_json_is_parsed():
    with Daemon(config("""
[job js]
kind = exec
output = json
command = /usr/bin/printf "{\\"a\\": [1, 2], \\"b\\": \\"x y\\"}\\n"
[route /js]
jobs = js
""")) as d:
        status, answer, _ = get(d, "/js")
        check_eq((status, answer),
                 (200, {"results": [{"a": [1, 2], "b": "x y"}]}), "answer")


def test_output_json_that_is_not_json_fails():
    with Daemon(config("""
[job js]
kind = exec
output = json
command = /usr/bin/printf "not json"
[route /js]
jobs = js
""")) as d:
        status, answer, _ = get(d, "/js")
        check_eq(status, 502, "status")
        job = only_job(answer)
        check_eq(job["state"], "failed", "state")
        check(job["error"].startswith("output is not JSON: "),
              "error: %r" % job["error"])


def test_exit_status_fails_with_the_tail_of_stderr():
    with Daemon(config("""
[job fail]
kind = exec
command = @EXEC@/fail.sh
[route /fail]
jobs = fail
""")) as d:
        status, answer, _ = get(d, "/fail")
        check_eq(status, 502, "status")
        check_eq(only_job(answer)["error"],
                 "exit status 3: first line of stderr\nsomething broke",
                 "error")


def test_killed_by_a_signal_names_it():
    with Daemon(config("""
[job kill]
kind = exec
command = @EXEC@/killself.sh
[route /kill]
jobs = kill
""")) as d:
        status, answer, _ = get(d, "/kill")
        check_eq((status, only_job(answer)["state"],
                  only_job(answer)["error"]),
                 (502, "failed", "killed by SIGKILL"), "answer")


def test_a_child_ignoring_sigterm_is_killed_after_kill_grace():
    with Daemon(config("""
[job stubborn]
kind = exec
command = @EXEC@/ignore_term.sh
env.PIDFILE = @DIR@/pid
timeout = 1s
kill_grace = 1s
[route /stubborn]
jobs = stubborn
timeout = 1m
""".replace("@DIR@", "/tmp/exec-test-%d" % os.getpid()))) as d:
        os.makedirs("/tmp/exec-test-%d" % os.getpid(), exist_ok=True)
        try:
            status, answer, elapsed = get(d, "/stubborn")
        finally:
            pidfile = "/tmp/exec-test-%d/pid" % os.getpid()
            pid = read_pid(pidfile)
            os.unlink(pidfile)
            os.rmdir(os.path.dirname(pidfile))
        check_eq(status, 504, "status")
        job = only_job(answer)
        check_eq((job["state"], job["error"]),
                 ("timed_out", "timed out after 1 s (killed by SIGKILL)"),
                 "record")
        check_between(elapsed, 1.9, 4.0, "timeout + kill_grace")
        check(wait_gone(pid, 5.0), "process %d is still there" % pid)
        check_eq(children_of(d.proc.pid), [], "children of the daemon")


def test_100_mib_of_output_is_cut_at_max_output_and_read_to_the_end():
    with Daemon(config("""
[job flood]
kind = exec
command = @EXEC@/flood.sh
max_output = 1M
timeout = 1m
[route /flood]
jobs = flood
timeout = 1m
""")) as d:
        before = rss_kib(d.proc.pid)
        status, _, body, _ = d.request("GET", "/flood", timeout=60.0)
        check_eq(status, 200, "status")
        result = json.loads(body)["results"][0]
        check_eq(len(result), 1 << 20, "result length")
        check_eq(result[:34], "0123456789abcdef\n" * 2, "start")
        grown = rss_kib(d.proc.pid) - before
        check(grown < 40 * 1024, "the daemon grew by %d KiB" % grown)
        _, _, m = d.wait_for_log(r"job flood done in \S+ s \(id ([^)]+)\)")
        status, rec, _ = get(d, "/jobs/" + m.group(1))
        check_eq((status, rec["state"], rec.get("truncated"),
                  len(rec["result"])),
                 (200, "succeeded", True, 1 << 20), "record")


def test_stdin_is_dev_null():
    with Daemon(config("""
[job stdin]
kind = exec
command = /usr/bin/readlink /proc/self/fd/0
[route /stdin]
jobs = stdin
""")) as d:
        check_eq(get(d, "/stdin")[:2], (200, {"results": ["/dev/null"]}),
                 "answer")


def test_the_environment_is_only_the_allow_list():
    os.environ["NOTIFY_SOCKET"] = "/run/not-for-children"
    os.environ["EXEC_TEST_SECRET"] = "leaked"
    try:
        d = Daemon(config("""
[job env]
kind = exec
command = /usr/bin/env
env.FOO = bar baz
env.LANG = C.UTF-8
[route /env]
jobs = env
"""))
        with d:
            status, answer, _ = get(d, "/env")
    finally:
        del os.environ["NOTIFY_SOCKET"]
        del os.environ["EXEC_TEST_SECRET"]
    check_eq(status, 200, "status")
    check_eq(sorted(answer["results"][0].split("\n")),
             ["FOO=bar baz", "LANG=C.UTF-8"], "environment")


def test_the_child_has_only_descriptors_0_1_2():
    with Daemon(config("""
[job fds]
kind = exec
command = /bin/sh -c "ls /proc/$$/fd"
[route /fds]
jobs = fds
""")) as d:
        check_eq(get(d, "/fds")[:2], (200, {"results": ["0\n1\n2"]}),
                 "answer")


def test_200_concurrent_jobs_leave_no_zombie_and_no_descriptor():
    with Daemon(config("""
[pool]
workers = 2
[job nap]
kind = exec
command = /bin/sleep 0.2
""" + "\n".join(
            "[route /n%d]\njobs = nap nap nap nap nap nap nap nap nap nap\n"
            % i for i in range(20)))) as d:
        fds = fd_count(d.proc.pid)	# no connection open yet
        answers = []

        def call(i):
            answers.append(get(d, "/n%d" % i)[:2])
        threads = [threading.Thread(target=call, args=(i,))
                   for i in range(20)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        check_eq(len(answers), 20, "answers")
        for status, answer in answers:
            check_eq((status, answer), (200, {"results": [""] * 10}),
                     "answer")
        check(elapsed < 10.0, "200 jobs of 0.2 s took %.1f s" % elapsed)
        check_eq(children_of(d.proc.pid), [], "children of the daemon")
        # The server closes each connection a moment after its client.
        deadline = time.monotonic() + 5.0
        while fd_count(d.proc.pid) != fds and time.monotonic() < deadline:
            time.sleep(0.02)
        check_eq(fd_count(d.proc.pid), fds, "descriptors of the daemon")


def test_stopping_the_daemon_cancels_a_running_job_and_ends_its_process():
    pidfile = "/tmp/exec-stop-%d.pid" % os.getpid()
    with Daemon(config("""
[job long]
kind = exec
command = @EXEC@/pid_sleep.sh
env.PIDFILE = %s
[route /long]
jobs = long
wait = none
""" % pidfile, server="drain_timeout = 0s\n")) as d:
        status, _, _, _ = d.request("GET", "/long")
        check_eq(status, 202, "status")
        pid = read_pid(pidfile)
        os.unlink(pidfile)
        d.stop()
        check(d.wait_for_log(r"job long cancelled after") is not None,
              "cancel logged")
        check(wait_gone(pid, 5.0), "process %d outlived the daemon" % pid)


def test_a_client_hanging_up_cancels_the_job_and_ends_its_process():
    pidfile = "/tmp/exec-gone-%d.pid" % os.getpid()
    with Daemon(config("""
[job long]
kind = exec
command = @EXEC@/pid_sleep.sh
env.PIDFILE = %s
[route /long]
jobs = long
timeout = 1m
on_disconnect = cancel
""" % pidfile)) as d:
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
        pid = read_pid(pidfile)
        os.unlink(pidfile)
        s.close()
        d.wait_for_log(r"job long cancelled after")
        check(wait_gone(pid, 5.0), "process %d still runs" % pid)
        check_eq(children_of(d.proc.pid), [], "children of the daemon")


# ---- parameters into argv ---------------------------------------------------

def test_query_values_reach_the_program_as_one_literal_argument():
    with Daemon(config(ARGV_CONFIG)) as d:
        for value in INJECTIONS + [""]:
            check_eq(argv_of(d, "/argv", "query", value),
                     [value, "x %s y" % value], "argv for %r" % value)


def test_json_values_reach_the_program_as_one_literal_argument():
    with Daemon(config(ARGV_CONFIG)) as d:
        for value in INJECTIONS + [""]:
            check_eq(argv_of(d, "/argv", "json", value),
                     [value, "x %s y" % value], "argv for %r" % value)


def test_path_values_reach_the_program_as_one_literal_argument():
    with Daemon(config(ARGV_CONFIG)) as d:
        for value in INJECTIONS:
            if "/" in value:
                continue	# not one segment: see the test below
            check_eq(argv_of(d, "/argv", "path", value),
                     [value, "x %s y" % value], "argv for %r" % value)


def test_a_leading_dash_is_refused_without_a_pattern():
    with Daemon(config(ARGV_CONFIG)) as d:
        for source in SOURCES:
            for value in ("-rf", "--help", "-"):
                refused_400(d, "/argv", source, value,
                            "may not start with '-'")


def test_a_leading_dash_that_a_pattern_allows_arrives_literally():
    with Daemon(config(ARGV_CONFIG)) as d:
        for source in SOURCES:
            for value in ("-rf", "--help=x y", "-"):
                check_eq(argv_of(d, "/loose", source, value), [value],
                         "argv for %r via %s" % (value, source))


def test_control_characters_are_refused_without_a_pattern():
    with Daemon(config(ARGV_CONFIG)) as d:
        for source in ("query", "json"):
            for value in ("a\nb", "a\rb", "\t", "a\x1bb", "a\x7fb"):
                refused_400(d, "/argv", source, value,
                            "may not hold control characters")


def test_a_newline_that_a_pattern_allows_arrives_literally():
    with Daemon(config(ARGV_CONFIG)) as d:
        for source in ("query", "json"):
            for value in ("a\nb", "line\n; id\n", "\t-x\r\n"):
                check_eq(argv_of(d, "/loose", source, value), [value],
                         "argv for %r via %s" % (value, source))


def test_a_nul_is_refused_even_where_a_pattern_allows_anything():
    with Daemon(config(ARGV_CONFIG)) as d:
        for route in ("/argv", "/loose"):
            refused_400(d, route, "query", "a\x00b",
                        "may not hold a NUL character")
            status, headers, body = ask_with(d, route, "json",
                                             {"v": "a\x00b"})
            check_eq(status, 400, "%s: \\u0000 in JSON (body %r)"
                     % (route, body))
            # A C string of the path would end at the NUL: the job would
            # get "a" for "a\0b".
            for value in ("a\x00b", "\x00"):
                status, headers, body = ask_with(d, route, "path",
                                                 {"v": value})
                check_problem(status, headers, body, 400,
                              "%s/%r" % (route, value),
                              detail="the path holds an encoded NUL (%00)")


def test_a_slash_cannot_be_part_of_a_path_segment():
    # The path is percent-decoded before it is matched, so %2F is a '/' and
    # the path has one more segment: no route matches, nothing runs.
    with Daemon(config(ARGV_CONFIG)) as d:
        for value in ("a/b", "; rm -rf /", "/"):
            status, headers, body = ask_with(d, "/argv", "path",
                                             {"v": value})
            check_problem(status, headers, body, 404, "/argv/%r" % value)


def test_int_bool_and_enum_values_reach_the_program_as_text():
    with Daemon(config(ARGV_CONFIG)) as d:
        for source in ("query", "json"):
            for params, argv in (
                    ({}, ["7", "false", "fast"]),
                    ({"n": -5, "flag": True, "mode": "slow"},
                     ["-5", "true", "slow"]),
                    ({"n": 100, "flag": False}, ["100", "false", "fast"])):
                if source == "query":
                    params = {k: str(v).lower() for k, v in params.items()}
                status, _, body = ask_with(d, "/typed", source, params)
                check_eq((status, json.loads(body)),
                         (200, {"results": [argv]}),
                         "%r via %s" % (params, source))


def test_wrong_int_bool_and_enum_values_are_refused():
    with Daemon(config(ARGV_CONFIG)) as d:
        for params, reason in (
                ({"n": "101"}, "parameter 'n' "),
                ({"n": "7; id"}, "parameter 'n' "),
                ({"flag": "maybe"}, "parameter 'flag' "),
                ({"mode": "fast slow"}, "parameter 'mode' ")):
            status, headers, body = ask_with(d, "/typed", "query", params)
            p = check_problem(status, headers, body, 400, "%r" % params)
            check(p["detail"].startswith(reason), "detail %r" % p["detail"])


# ---- DELETE /jobs/{id}, max_concurrent, coalesce ----------------------------

def pid_config(pidfile, extra=""):
    return config("""
[job long]
kind = exec
command = @EXEC@/pid_sleep.sh
env.PIDFILE = %s
%s
[route /long]
method = POST
jobs = long
wait = none
""" % (pidfile, extra))


def test_delete_ends_a_running_program_with_sigterm():
    pidfile = "/tmp/exec-delete-%d.pid" % os.getpid()
    with Daemon(pid_config(pidfile)) as d:
        job_id = start(d, "/long")
        pid = read_pid(pidfile)
        os.unlink(pidfile)
        t0 = time.monotonic()
        delete(d, job_id)
        r = wait_state(d, job_id, ("cancelled", "failed", "succeeded"))
        check_eq((r["state"], r["result"]), ("cancelled", None), "record")
        check_between(time.monotonic() - t0, 0.0, 1.0, "SIGTERM")
        check(wait_gone(pid, 5.0), "process %d still runs" % pid)
        check_eq(children_of(d.proc.pid), [], "children of the daemon")


def test_delete_of_a_child_ignoring_sigterm_kills_it_after_kill_grace():
    pidfile = "/tmp/exec-delete-%d.pid" % os.getpid()
    with Daemon(pid_config(pidfile, "kill_grace = 1s\n").replace(
            "pid_sleep.sh", "ignore_term.sh")) as d:
        job_id = start(d, "/long")
        pid = read_pid(pidfile)
        os.unlink(pidfile)
        t0 = time.monotonic()
        delete(d, job_id)
        r = wait_state(d, job_id, ("cancelled", "failed", "succeeded"))
        check_eq(r["state"], "cancelled", "record")
        check_between(time.monotonic() - t0, 0.95, 3.0, "kill_grace 1s")
        check(wait_gone(pid, 5.0), "process %d still runs" % pid)
        check_eq(children_of(d.proc.pid), [], "children of the daemon")


def test_delete_of_a_queued_program_cancels_it_before_it_starts():
    pidfile = "/tmp/exec-delete-%d.pid" % os.getpid()
    with Daemon(pid_config(pidfile, "max_concurrent = 1\n")) as d:
        first, second = start(d, "/long"), start(d, "/long")
        pid = read_pid(pidfile)
        os.unlink(pidfile)
        check_eq(record(d, second)["state"], "queued", "the second")
        r = delete(d, second)
        check_eq((r["state"], r["started"]), ("cancelled", None),
                 "cancelled at once, never started")
        check_eq(record(d, first)["state"], "running", "the first")
        check(not os.path.exists(pidfile), "the second never ran")
        delete(d, first)
        wait_state(d, first, ("cancelled",))
        check(wait_gone(pid, 5.0), "process %d still runs" % pid)


def test_max_concurrent_2_runs_6_programs_2_at_a_time_in_arrival_order():
    with Daemon(config("""
[job nap]
kind = exec
command = /bin/sleep 0.5
max_concurrent = 2
[route /nap]
method = POST
jobs = nap
wait = none
""")) as d:
        t0 = time.monotonic()
        ids = [start(d, "/nap") for _ in range(6)]
        states = [record(d, i)["state"] for i in ids]
        check_eq(states[2:], ["queued"] * 4,
                 "the last four are listed queued (%r)" % states)
        done = [wait_state(d, i, ("succeeded",), timeout=15) for i in ids]
        elapsed = time.monotonic() - t0
        check_eq(overlap(done), 2, "at most two ran at once")
        started = [r["started"] for r in done]
        check_eq(started, sorted(started), "started in arrival order")
        check_between(elapsed, 1.45, 4.0, "three waves of 0.5 s")
        check_eq(children_of(d.proc.pid), [], "children of the daemon")


COALESCE = """
[job echo]
kind = exec
command = @EXEC@/slow_echo.sh {v}
param.v = string max=16
coalesce = yes
[route /echo]
method = POST
jobs = echo
wait = none
"""


def test_coalesce_joins_a_running_program_with_the_same_params():
    with Daemon(config(COALESCE)) as d:
        first = start(d, "/echo?v=a")
        second = start(d, "/echo?v=a")
        r2 = record(d, second)
        check_eq((r2.get("joined"), r2["params"]), (first, {"v": "a"}),
                 "the second names the first")
        check_eq(len(children_of(d.proc.pid)), 1, "programs running")
        r1 = wait_state(d, first, ("succeeded",))
        r2 = wait_state(d, second, ("succeeded",))
        check_eq((r1["result"], r2["result"]), ("a", "a"), "one result")


def test_coalesce_runs_a_program_per_distinct_params():
    with Daemon(config(COALESCE)) as d:
        first = start(d, "/echo?v=a")
        other = start(d, "/echo?v=b")
        r = record(d, other)
        check("joined" not in r, "other params join nothing: %r" % r)
        check_eq(r["state"], "running", "it runs on its own")
        check_eq(len(children_of(d.proc.pid)), 2, "programs running")
        check_eq(wait_state(d, first, ("succeeded",))["result"], "a",
                 "the first's result")
        check_eq(wait_state(d, other, ("succeeded",))["result"], "b",
                 "the other's result")


if __name__ == "__main__":
    run_tests(globals())
