"""taskpoold system test: the command line, config checking, signals and
reload."""

import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, EX_CONFIG, EX_USAGE, HOST,  # noqa: E402
                            check, check_eq, latency_bound, load_scale, log,
                            run_cli, run_tests, shipped_config_path)

OPTIONS = ("-c", "-l", "-t", "-v", "-h", "-V")

SMALL_CONFIG = """\
[server]
instance = clitest

[job j]
kind = sleep
duration = 100ms
result = %(result)s

[job slowj]
kind = sleep
duration = 800ms
result = %(slow)s

[route /r]
jobs = j

[route /slow]
jobs = slowj
%(more)s"""


def small_config(result="old result", slow="old slow", more=""):
    return SMALL_CONFIG % {"result": result, "slow": slow, "more": more}


def write_temp(tmpdir, name, text):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_usage(text, what):
    check(text.startswith("usage: taskpoold"), "%s: no usage text: %r"
          % (what, text))
    for opt in OPTIONS:
        check(re.search(r"^\s+%s\b" % re.escape(opt), text, re.M),
              "%s: usage does not describe %s:\n%s" % (what, opt, text))


# ---- options ----------------------------------------------------------------

def test_help_prints_usage_and_exits_0():
    rc, out, err = run_cli(["-h"])
    check_eq(rc, 0, "taskpoold -h exit status")
    check_usage(out, "taskpoold -h (stdout)")
    check_eq(err, "", "taskpoold -h stderr")


def test_version():
    rc, out, err = run_cli(["-V"])
    check_eq(rc, 0, "taskpoold -V exit status")
    check_eq(out, "taskpoold 0.1.0\n", "taskpoold -V output")
    check_eq(err, "", "taskpoold -V stderr")


def test_long_options_are_the_short_ones():
    for args, short in ((["--help"], ["-h"]), (["--version"], ["-V"])):
        check_eq(run_cli(args), run_cli(short), " ".join(args))
    path = shipped_config_path()
    rc, out, err = run_cli(["--test", "--config=" + path,
                            "--listen", "127.0.0.1:0", "--verbose"])
    check_eq((rc, out, err), (0, "%s: configuration OK\n" % path, ""),
             "taskpoold --test --config=FILE --listen ADDR --verbose")
    rc, out, err = run_cli(["--test", "--config", path, "--listen=nope"])
    check_eq(rc, 64, "--listen=nope exit status (EX_USAGE)")
    check("-l nope: expected ADDRESS:PORT" in err, "--listen=nope: %r" % err)
    rc, out, err = run_cli(["--bogus"])
    check_eq(rc, 64, "--bogus exit status (EX_USAGE)")
    check_usage(err[err.index("usage:"):], "--bogus (stderr)")


def test_check_shipped_config():
    path = shipped_config_path()
    rc, out, err = run_cli(["-t", "-c", path])
    check_eq(rc, 0, "taskpoold -t -c %s exit status (stderr %r)"
             % (path, err))
    check_eq(out, "%s: configuration OK\n" % path, "taskpoold -t output")
    check_eq(err, "", "taskpoold -t stderr")
    # -l is checked too, and a good one changes nothing.
    rc, out, err = run_cli(["-t", "-c", path, "-l", "127.0.0.1:0"])
    check_eq((rc, out), (0, "%s: configuration OK\n" % path),
             "taskpoold -t -l 127.0.0.1:0")


# (config text, line, reason): the reason is the whole message after
# "FILE:LINE: ".
BAD_CONFIGS = [
    ("[server]\nlisten = 127.0.0.1:8080\n[bogus]\n", 3,
     "unknown section [bogus] (expected [server], [pool], [registry], "
     "[log], [auth], [store], [job NAME] or [route PATH])"),
    ("[pool]\nworkers = 0\n", 2,
     "bad value '0' for workers (expected 1 to 1024)"),
    ("# a comment\n\n[job j]\nkind = sleep\nduration = 30\n", 5,
     "bad value '30' for duration (expected a duration up to 7d, e.g. 1s "
     "or 250ms)"),
    ("[job j]\nkind = sleep\nduration = 1s\n\n[route /r]\nwait = all\n"
     "jobs = j nope\n", 7, "route '/r' names unknown job 'nope'"),
    ("; comment\n[job j]\nduration = 1s\n", 2, "job 'j' has no kind"),
    ("[server]\nthreads = 2\nthis is not ini\n", 3,
     "syntax error (expected '[section]', 'key = value' or a comment)"),
    ("[server]\nthreads = 2\nthreads = 3\n", 3,
     "key 'threads' is set twice in this section"),
    ("[job j]\nkind = teleport\n", 2,
     "unknown job kind 'teleport' (known: sleep, exec, http, plugin)"),
    ("[job j]\nkind = sleep\n\n[route /healthz]\njobs = j\n", 4,
     "route path '/healthz' is reserved for the daemon's own API"),
    ("[job j]\nkind = sleep\n[route /r]\nwait = sometimes\njobs = j\n", 4,
     "bad value 'sometimes' for wait (expected all, first, any or none)"),
    ("[server]\nlisten = localhost:8080\n", 2,
     "bad value 'localhost:8080' for listen (expected ADDRESS:PORT with a "
     "numeric address, e.g. 127.0.0.1:8080 or [::1]:8080, or "
     "https://ADDRESS:PORT)"),
    ("[server]\n[log]\n[server]\n", 3, "section [server] appears twice"),
    ("[server\nthreads = 2\n", 1, "section header without ']'"),
    ("[registry]\nmax_jobs = 16\n[job j]\nkind = sleep\n[route /r]\njobs = "
     + " ".join(["j"] * 17) + "\n", 6,
     "route '/r' starts 17 jobs a request, more than max_jobs = 16 (line 2) "
     "holds"),
]


def test_check_bad_configs_report_file_line_reason():
    with tempfile.TemporaryDirectory(prefix="taskpoold-test-") as tmp:
        for n, (text, line, reason) in enumerate(BAD_CONFIGS):
            path = write_temp(tmp, "bad%d.conf" % n, text)
            rc, out, err = run_cli(["-t", "-c", path])
            what = "taskpoold -t on %r" % text
            check_eq(rc, EX_CONFIG, what + ": exit status (stderr %r)" % err)
            check_eq(out, "", what + ": stdout")
            lines = err.splitlines()
            check_eq(len(lines), 1, what + ": stderr lines %r" % lines)
            expected = "%s:%d: %s" % (path, line, reason)
            check(lines[0].endswith(" error: " + expected),
                  "%s:\n  expected '... error: %s'\n  got      %r"
                  % (what, expected, lines[0]))
        # A file that cannot be read: FILE: reason, no line.
        missing = os.path.join(tmp, "missing.conf")
        rc, out, err = run_cli(["-t", "-c", missing])
        check_eq(rc, EX_CONFIG, "taskpoold -t on a missing file")
        check(err.rstrip("\n").endswith(
            " error: %s: No such file or directory" % missing),
            "missing file: stderr %r" % err)
        # Without -t a bad config stops the start-up the same way.
        path = write_temp(tmp, "bad-start.conf", BAD_CONFIGS[1][0])
        rc, out, err = run_cli(["-c", path, "-l", "127.0.0.1:0"])
        check_eq(rc, EX_CONFIG, "starting with a bad config")
        check("%s:2: bad value '0' for workers" % path in err,
              "starting with a bad config: stderr %r" % err)


def test_bad_usage_exits_64():
    path = shipped_config_path()
    for args in (["-x"], ["--bogus"], ["extra"], ["-c", path, "extra"],
                 ["-t", "-c", path, "more", "args"], ["-c"], ["-l"]):
        rc, out, err = run_cli(args)
        what = "taskpoold %s" % " ".join(args)
        check_eq(rc, EX_USAGE, what + ": exit status (stderr %r)" % err)
        check_eq(out, "", what + ": stdout")
        check("usage: taskpoold" in err, what + ": no usage on stderr: %r"
              % err)


def test_bad_listen_option_exits_64():
    path = shipped_config_path()
    for listen in ("nonsense", "127.0.0.1", "localhost:8080",
                   "127.0.0.1:99999", "127.0.0.1:-1", ":8080",
                   "127.0.0.1:", "[::1:8080", "999.1.1.1:80"):
        for extra in (["-t"], []):
            args = extra + ["-c", path, "-l", listen]
            rc, out, err = run_cli(args)
            what = "taskpoold %s" % " ".join(args)
            check_eq(rc, EX_USAGE, what + ": exit status (stderr %r)" % err)
            check("-l %s: expected ADDRESS:PORT" % listen in err,
                  what + ": stderr %r" % err)


def test_verbose_logs_debug():
    with Daemon(small_config(), extra_args=["-v"]) as d:
        d.wait_for_log(r" debug: ", timeout=5.0, what="a debug line with -v")
    with Daemon(small_config()) as d:
        d.request("GET", "/r")
        d.stop()
        check(not any(" debug: " in l for _, l in d.log_lines()),
              "debug lines without -v:\n%s" % d.log_text())


def test_port_in_use_fails_to_start():
    with Daemon(small_config()) as a:
        rc, out, err = run_cli(["-c", a.config_path, "-l",
                                "127.0.0.1:%d" % a.port], timeout=10.0)
        check(rc not in (0, None), "a second daemon on port %d exited %r"
              % (a.port, rc))
        check("cannot listen" in err, "no 'cannot listen' in %r" % err)
        status, _, _, _ = a.request("GET", "/healthz")
        check_eq(status, 200, "the first daemon still serves")


# ---- signals ----------------------------------------------------------------

def stop_with(sig, name):
    with Daemon(small_config()) as d:
        status, _, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["old result"]}'),
                 "GET /r")
        t0 = time.monotonic()
        rc = d.stop(sig, timeout=10.0)
        elapsed = time.monotonic() - t0
        log("  %s: exit %d after %.3f s" % (name, rc, elapsed))
        check(elapsed < latency_bound(3.0), "%s took %.2f s to stop an idle "
              "daemon" % (name, elapsed))
        d.wait_for_log(r" info: %s: stopping$" % name, timeout=0.1,
                       what="'%s: stopping'" % name)
        d.wait_for_log(r" info: stopped$", timeout=0.1, what="'stopped'")
        with socket.socket() as s:
            s.settimeout(2)
            check(s.connect_ex((HOST, d.port)) != 0,
                  "port %d still accepts after the stop" % d.port)


def test_sigterm_stops_with_exit_0():
    stop_with(signal.SIGTERM, "Terminated")


def test_sigint_stops_with_exit_0():
    stop_with(signal.SIGINT, "Interrupt")


def test_sigterm_as_connections_close_exits_0_every_time():
    """The stop must not race the HTTP threads: SIGTERM lands while they
    handle clients hanging up.  (libmicrohttpd's own thread pool aborted
    here about once in 1,500 stops: "Failed to remove listen FD from epoll
    set".)"""
    rounds = load_scale(100, floor=10)	# each start is seconds under valgrind
    t0 = time.monotonic()
    for i in range(rounds):
        with Daemon(small_config()) as d:
            conns = [socket.create_connection((HOST, d.port), timeout=10)
                     for _ in range(8)]
            for c in conns:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for c in conns:
                check(c.recv(4096).startswith(b"HTTP/1.1 200 "),
                      "round %d: /healthz not 200" % i)
            for c in conns:
                c.close()
            d.stop(signal.SIGTERM, timeout=10.0)
    log("  %d stops as 8 clients hung up, all exit 0 (%.1f s)"
        % (rounds, time.monotonic() - t0))


def test_sighup_reloads_the_config():
    with Daemon(small_config()) as d:
        status, headers, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["old result"]}'),
                 "GET /r before the reload")
        status, _, _, _ = d.request("GET", "/added")
        check_eq(status, 404, "GET /added before the reload")

        # A request in flight across the reload keeps its old config.
        answer = {}

        def in_flight():
            answer["r"] = d.request("GET", "/slow")[:3]

        t = threading.Thread(target=in_flight)
        t.start()
        deadline = time.monotonic() + 5
        while d.get_json("/healthz")["jobs_live"] < 1:
            check(time.monotonic() < deadline, "GET /slow never came in")
            time.sleep(0.01)

        n = len(d.log_lines())
        d.write_config(small_config(
            result="new result", slow="new slow",
            more="\n[route /added]\nmethod = POST\njobs = j slowj\n"
                 "wait = any\n"), d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded .*: 2 jobs, 3 routes$", start=n,
                       timeout=5.0, what="the reload")
        status, headers, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["new result"]}'),
                 "GET /r after the reload")
        status, headers, body, _ = d.request("POST", "/added")
        check_eq(status, 200, "POST /added after the reload (body %r)"
                 % body)
        check(body.startswith(b'{"result": "new result", "job": "j", '),
              "POST /added body %r" % body)
        t.join(10)
        check_eq(answer.get("r", (None, None, None))[::2],
                 (200, b'{"results": ["old slow"]}'),
                 "the request in flight across the reload")
        d.stop()


def test_sighup_keeps_the_instance_name_of_job_ids():
    # Job ids carry the instance name so that a balancer can route
    # /jobs/{id} to its owner: a reload must not change it (the daemon
    # says so in its log), only a restart does.
    with Daemon(small_config()) as d:
        done_re = r" info: job j done in [0-9.]+ s \(id ([^)]+)\)$"
        status, _, body, _ = d.request("GET", "/r")
        check_eq(status, 200, "GET /r")
        before = d.wait_for_log(done_re, timeout=5.0)[2].group(1)
        check(before.startswith("clitest-"), "job id %r" % before)
        n = len(d.log_lines())
        d.write_config(small_config().replace("instance = clitest",
                                              "instance = renamed"),
                       d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" warning: reload: instance name changes only on "
                       r"restart$", start=n, timeout=5.0,
                       what="the restart-only warning")
        d.wait_for_log(r" info: reloaded ", start=n, timeout=5.0,
                       what="the reload")
        n = len(d.log_lines())
        status, _, body, _ = d.request("GET", "/r")
        check_eq(status, 200, "GET /r after the reload")
        after = d.wait_for_log(done_re, start=n, timeout=5.0)[2].group(1)
        check_eq(after.rsplit("-", 1)[0], before.rsplit("-", 1)[0],
                 "id prefix (instance-boot) of a job started after the "
                 "reload (ids %s then %s)" % (before, after))
        d.stop()


def test_sighup_with_a_broken_file_keeps_the_old_config():
    with Daemon(small_config()) as d:
        status, _, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["old result"]}'),
                 "GET /r")
        n = len(d.log_lines())
        broken = small_config(result="broken result").replace(
            "[route /slow]", "[route /slow]\nwait = whenever")
        line = broken.splitlines().index("wait = whenever") + 1
        d.write_config(broken, d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: SIGHUP: reloading ", start=n, timeout=5.0,
                       what="the reload attempt")
        d.wait_for_log(r" error: %s:%d: bad value 'whenever' for wait" %
                       (re.escape(d.config_path), line), start=n,
                       timeout=5.0, what="the error with file and line")
        d.wait_for_log(r" warning: reload refused; the running "
                       r"configuration stays$", start=n, timeout=5.0,
                       what="the refusal")
        check(d.running(), "the daemon exited on a bad reload")
        status, _, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["old result"]}'),
                 "GET /r after the refused reload")
        status, _, body, _ = d.request("GET", "/slow")
        check_eq((status, body), (200, b'{"results": ["old slow"]}'),
                 "GET /slow after the refused reload")

        # A file that is gone is refused too; then a good one is taken.
        os.unlink(d.config_path)
        n = len(d.log_lines())
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r"reload refused", start=n, timeout=5.0,
                       what="the refusal of a missing file")
        status, _, body, _ = d.request("GET", "/r")
        check_eq(body, b'{"results": ["old result"]}', "GET /r")
        d.write_config(small_config(result="fixed"), d.config_path)
        n = len(d.log_lines())
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, timeout=5.0,
                       what="the reload of the fixed file")
        status, _, body, _ = d.request("GET", "/r")
        check_eq((status, body), (200, b'{"results": ["fixed"]}'),
                 "GET /r after the fixed reload")
        d.stop()


MANY_CONFIG = """\
[registry]
max_jobs = %(max_jobs)d
retain = %(retain)s

[log]
jobs = no

[job z]
kind = sleep

[route /many]
jobs = %(jobs)s
wait = all
"""


def many_config(max_jobs, retain="1h", per_request=64):
    """A route that starts per_request zero-length jobs a request."""
    return MANY_CONFIG % {"max_jobs": max_jobs, "retain": retain,
                          "jobs": " ".join(["z"] * per_request)}


def finish_jobs(d, requests, per_request):
    """Runs requests calls of /many and waits until all their jobs are
    listed as finished; returns how many that is."""
    for i in range(requests):
        status, _, body, _ = d.request("GET", "/many")
        check_eq(status, 200, "GET /many #%d (body %r)" % (i, body[:200]))
    total = requests * per_request
    deadline = time.monotonic() + 10
    while d.get_json("/healthz")["jobs_finished"] != total:
        check(time.monotonic() < deadline, "%d jobs never all finished "
              "(healthz: %r)" % (total, d.get_json("/healthz")))
        time.sleep(0.01)
    return total


def reload_with(d, text):
    n = len(d.log_lines())
    d.write_config(text, d.config_path)
    d.send_signal(signal.SIGHUP)
    d.wait_for_log(r" info: reloaded ", start=n, timeout=5.0,
                   what="the reload")
    return n


def test_sighup_lowering_max_jobs_drops_finished_jobs_to_it_at_once():
    # Before, each later request evicted one record: the registry stayed
    # over its new bound until as many requests had come.
    with Daemon(many_config(1000)) as d:
        total = finish_jobs(d, 10, 64)
        n = reload_with(d, many_config(16, per_request=16))
        health = d.get_json("/healthz")
        check_eq((health["jobs_live"], health["jobs_finished"]), (0, 16),
                 "live and finished jobs right after the reload")
        d.wait_for_log(r" info: reload: %d finished jobs dropped to fit "
                       r"max_jobs 16$" % (total - 16), start=n, timeout=5.0,
                       what="the eviction's log line")
        # The bound holds from there on: a request's jobs replace the
        # oldest records, they do not pile up.
        status, _, _, _ = d.request("GET", "/many")
        check_eq(status, 200, "GET /many after the reload")
        check_eq(d.get_json("/healthz")["jobs_finished"] <= 16, True,
                 "at most max_jobs records after a request")
        d.stop()


def test_expiry_of_10000_records_takes_batches_5ms_apart_not_a_tick_each():
    # The registry expires at most 4,096 records a timer tick (a second),
    # then comes back 5 ms later while there are more.  10,048 records made
    # due at once (retain lowered to 0 by a reload) must all go well within
    # one tick of the first ones going; a tick each would take 2 s.
    with Daemon(many_config(20000)) as d:
        total = finish_jobs(d, 157, 64)
        check(total > 2 * 4096, "%d records need three batches" % total)
        reload_with(d, many_config(20000, retain="0"))
        deadline = time.monotonic() + 10
        first_drop = None
        while True:
            left = d.get_json("/healthz")["jobs_finished"]
            now = time.monotonic()
            if left < total and first_drop is None:
                first_drop = now
            if left == 0:
                break
            check(now < deadline, "%d of %d records left 10 s after the "
                  "reload" % (left, total))
            time.sleep(0.002)
        took = now - first_drop
        log("  %d records expired %.3f s after the first ones went"
            % (total, took))
        check(took < 0.9, "expiring %d records took %.3f s from the first "
              "batch: a tick (1 s) per 4,096" % (total, took))
        d.stop()


if __name__ == "__main__":
    run_tests(globals())
