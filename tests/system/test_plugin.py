"""taskpoold system test: jobs of kind plugin behind routes.

The plugins are the examples and tests/plugins/testjobs.c, built for the
tests against the in-tree header ($TASKPOOLD_PLUGINDIR).  Parameters over
HTTP come with the params work; until then the jobs here take none:
greet greets the world, and the testjobs functions need no parameter.
TODO(lead, once params and DELETE /jobs/{id} land): greet with ?name=,
count_primes with ?n=, and a cancel through DELETE /jobs/{id}; the cancel
here goes through a route's on_disconnect = cancel.
"""

import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, EX_CONFIG, HOST, check,  # noqa: E402
                            check_eq, run_cli, run_tests)

PLUGINS = os.environ.get("TASKPOOLD_PLUGINDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "plugins")


def plugin_job(name, library, function, extra=""):
    return ("[job %s]\nkind = plugin\nlibrary = %s/%s\nfunction = %s\n%s\n"
            % (name, PLUGINS, library, function, extra))


CONFIG = (
    "[server]\ninstance = plugintest\n\n"
    + plugin_job("greet", "greet.so", "greet")
    + plugin_job("fail", "testjobs.so", "fail")
    + plugin_job("wait_cancel", "testjobs.so", "wait_cancel",
                 "timeout = 1m")
    + plugin_job("wait_short", "testjobs.so", "wait_cancel",
                 "timeout = 200ms")
    + plugin_job("stubborn", "testjobs.so", "stubborn")
    + "[route /greet]\njobs = greet\n\n"
      "[route /fail]\njobs = fail\n\n"
      "[route /short]\njobs = wait_short\n\n"
      "[route /cancel]\njobs = wait_cancel\ntimeout = 1m\n"
      "on_disconnect = cancel\n\n"
      "[route /start]\nmethod = POST\njobs = stubborn\nwait = none\n")


def job_state(d, job_id, until, timeout=10.0):
    """Polls GET /jobs/ID until its state is in `until`; the record."""
    deadline = time.monotonic() + timeout
    while True:
        rec = d.get_json("/jobs/" + job_id)
        if rec["state"] in until:
            return rec
        check(time.monotonic() < deadline, "job %s still %s after %.0f s"
              % (job_id, rec["state"], timeout))
        time.sleep(0.01)


def test_greet_answers_with_its_json_value():
    with Daemon(CONFIG) as d:
        status, _, body, _ = d.request("GET", "/greet")
        check_eq((status, body),
                 (200, b'{"results": [{"greeting": "Hello, world"}]}'),
                 "GET /greet")
        d.stop()


def test_a_plugin_error_fails_the_job_with_its_message():
    with Daemon(CONFIG) as d:
        status, _, body, _ = d.request("GET", "/fail")
        check_eq(status, 502, "GET /fail status (body %r)" % body)
        check(b'"state": "failed", "error": "no such thing: fail"' in body,
              "GET /fail body %r" % body)
        d.stop()


def test_timeout_ends_the_job_and_frees_its_worker():
    with Daemon(CONFIG + "\n[pool]\nworkers = 1\n") as d:
        status, _, body, elapsed = d.request("GET", "/short")
        check_eq(status, 504, "GET /short status (body %r)" % body)
        check(b'"state": "timed_out", "error": "timed out"' in body,
              "GET /short body %r" % body)
        check(elapsed < 2.0, "timed out after %.2f s, timeout 200ms"
              % elapsed)
        # wait_cancel returns only once it saw its flag: the only worker
        # is free again for the next job.
        status, _, body, _ = d.request("GET", "/greet", timeout=10.0)
        check_eq(status, 200, "GET /greet on the one worker (body %r)"
                 % body)
        d.stop()


def test_client_gone_cancels_a_running_plugin_which_sees_its_flag():
    with Daemon(CONFIG) as d:
        s = socket.create_connection((HOST, d.port), timeout=10)
        s.sendall(b"GET /cancel HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while d.get_json("/healthz")["jobs_live"] < 1:
            check(time.monotonic() < deadline, "GET /cancel never started")
            time.sleep(0.01)
        s.close()
        d.wait_for_log(
            r" info: job wait_cancel cancelled after ", timeout=10.0,
            what="the cancel of wait_cancel")
        d.stop()


def test_a_plugin_built_for_another_abi_is_refused_by_taskpoold_t():
    with Daemon(CONFIG) as d:	# for its temporary directory
        path = os.path.join(d.tmpdir.name, "bad.conf")
        d.write_config("[job x]\nkind = plugin\nlibrary = %s/abi_other.so\n"
                       "function = echo\n" % PLUGINS, path)
        rc, out, err = run_cli(["-t", "-c", path])
        check_eq(rc, EX_CONFIG, "taskpoold -t exit status (stderr %r)"
                 % err)
        check_eq(err.rstrip("\n").split(" ", 1)[1],
                 "error: %s:1: job 'x': %s/abi_other.so was built for "
                 "plugin ABI 2, this taskpoold has ABI 1 (rebuild it "
                 "against its taskpoold/job.h)" % (path, PLUGINS),
                 "taskpoold -t stderr")
        check_eq(out, "", "taskpoold -t stdout")


def test_reload_keeps_a_running_job_on_its_old_function():
    with Daemon(CONFIG) as d:
        status, _, body, _ = d.request("POST", "/start")
        check_eq(status, 202, "POST /start status (body %r)" % body)
        job_id = re.search(rb'"id": "([^"]+)"', body).group(1).decode()
        job_state(d, job_id, ("running",))
        n = len(d.log_lines())
        # Same job name, another function: only new instances use it.
        d.write_config(CONFIG.replace("function = stubborn",
                                      "function = fail"), d.config_path)
        d.send_signal(signal.SIGHUP)
        d.wait_for_log(r" info: reloaded ", start=n, timeout=5.0,
                       what="the reload")
        rec = job_state(d, job_id, ("succeeded", "failed"))
        check_eq((rec["state"], rec["result"]), ("succeeded", "done anyway"),
                 "the job started before the reload")
        status, _, body, _ = d.request("POST", "/start")
        new_id = re.search(rb'"id": "([^"]+)"', body).group(1).decode()
        rec = job_state(d, new_id, ("succeeded", "failed"))
        check_eq((rec["state"], rec["error"]),
                 ("failed", "no such thing: stubborn"),
                 "a job started after the reload")
        d.stop()


if __name__ == "__main__":
    run_tests(globals())
