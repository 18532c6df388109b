"""taskpoold system test: jobs of kind plugin behind routes.

The plugins are the examples and tests/plugins/testjobs.c, built for the
tests against the in-tree header ($TASKPOOLD_PLUGINDIR).  greet and
count_primes take their parameters over HTTP (query string and JSON body);
the testjobs functions take none.  A running plugin is cancelled through
DELETE /jobs/{id} and a route's on_disconnect = cancel, and sees its flag;
a queued one is cancelled before it starts.
"""

import os
import json
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, EX_CONFIG, HOST, check,  # noqa: E402
                            check_eq, check_problem, run_cli, run_tests)

PLUGINS = os.environ.get("TASKPOOLD_PLUGINDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "plugins")


def plugin_job(name, library, function, extra=""):
    return ("[job %s]\nkind = plugin\nlibrary = %s/%s\nfunction = %s\n%s\n"
            % (name, PLUGINS, library, function, extra))


CONFIG = (
    "[server]\ninstance = plugintest\n\n"
    + plugin_job("greet", "greet.so", "greet",
                 "param.name = string max=32 default=world "
                 "pattern=[A-Za-z ]+")
    + plugin_job("count_primes", "count_primes.so", "count_primes",
                 "param.n = int min=1 max=100000000")
    + plugin_job("waiter", "testjobs.so", "wait_cancel",
                 "timeout = 1m\nmax_concurrent = 1")
    + plugin_job("fail", "testjobs.so", "fail")
    + plugin_job("wait_cancel", "testjobs.so", "wait_cancel",
                 "timeout = 1m")
    + plugin_job("wait_short", "testjobs.so", "wait_cancel",
                 "timeout = 200ms")
    + plugin_job("stubborn", "testjobs.so", "stubborn")
    + "[route /greet]\njobs = greet\n\n"
      "[route /greet-json]\nmethod = POST\njobs = greet\n\n"
      "[route /count]\njobs = count_primes\n\n"
      "[route /wait]\nmethod = POST\njobs = waiter\nwait = none\n\n"
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


def start(d, path):
    """POSTs a wait = none route; returns its one job's id."""
    status, _, body, _ = d.request("POST", path, body=b"")
    check_eq(status, 202, "POST %s (body %r)" % (path, body))
    return json.loads(body)["jobs"][0]["id"]


def delete(d, job_id):
    """DELETE /jobs/ID, asserting 202; returns the record it answers."""
    status, _, body, _ = d.request("DELETE", "/jobs/" + job_id)
    check_eq(status, 202, "DELETE /jobs/%s (body %r)" % (job_id, body))
    return json.loads(body)


def answer(d, method, path, body=None):
    """(status, decoded body) of one request; a body goes as JSON."""
    headers = {}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    status, _, data, _ = d.request(method, path, headers=headers, body=body)
    return status, json.loads(data)


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


# ---- parameters -------------------------------------------------------------

def test_greet_takes_its_name_from_the_query_string():
    with Daemon(CONFIG) as d:
        check_eq(answer(d, "GET", "/greet?name=Ann%20Lee"),
                 (200, {"results": [{"greeting": "Hello, Ann Lee"}]}),
                 "GET /greet?name=Ann%20Lee")


def test_greet_takes_its_name_from_a_json_body():
    with Daemon(CONFIG) as d:
        check_eq(answer(d, "POST", "/greet-json", {"name": "Bob"}),
                 (200, {"results": [{"greeting": "Hello, Bob"}]}),
                 "POST /greet-json")


def test_greet_refuses_a_name_outside_its_pattern():
    with Daemon(CONFIG) as d:
        status, headers, body, _ = d.request("GET", "/greet?name=R2D2")
        check_problem(status, headers, body, 400, "name=R2D2",
                      detail="parameter 'name' does not match the pattern "
                      "[A-Za-z ]+")


def test_count_primes_counts_the_primes_up_to_n():
    with Daemon(CONFIG) as d:
        for n, primes in ((1, 0), (2, 1), (100, 25), (1000000, 78498)):
            check_eq(answer(d, "GET", "/count?n=%d" % n),
                     (200, {"results": [{"n": n, "primes": primes}]}),
                     "GET /count?n=%d" % n)


def test_count_primes_refuses_n_out_of_range():
    with Daemon(CONFIG) as d:
        for n in ("0", "-1", "100000001", "99999999999999999999", "1e6",
                  "ten"):
            status, headers, body, _ = d.request("GET", "/count?n=" + n)
            p = check_problem(status, headers, body, 400, "n=%s" % n)
            check(p["detail"].startswith("parameter 'n' "),
                  "n=%s: detail %r" % (n, p["detail"]))
        status, headers, body, _ = d.request("GET", "/count")
        check_problem(status, headers, body, 400, "no n")


# ---- DELETE /jobs/{id} ------------------------------------------------------

def test_delete_of_a_running_plugin_ends_it_cancelled():
    with Daemon(CONFIG) as d:
        job_id = start(d, "/wait")
        job_state(d, job_id, ("running",))
        t0 = time.monotonic()
        delete(d, job_id)
        rec = job_state(d, job_id, ("cancelled", "succeeded", "failed"))
        check_eq((rec["state"], rec["result"]), ("cancelled", None),
                 "the record (the plugin's value is dropped)")
        check(time.monotonic() - t0 < 1.0, "the plugin saw its flag late")
        # It returned: its worker and its max_concurrent slot are free.
        job_state(d, start(d, "/wait"), ("running",))


def test_delete_of_a_queued_plugin_cancels_it_before_it_starts():
    with Daemon(CONFIG) as d:
        first, second = start(d, "/wait"), start(d, "/wait")
        job_state(d, first, ("running",))
        check_eq(d.get_json("/jobs/" + second)["state"], "queued",
                 "the second")
        rec = delete(d, second)
        check_eq((rec["state"], rec["started"]), ("cancelled", None),
                 "cancelled at once, never started")
        check_eq(d.get_json("/jobs/" + first)["state"], "running",
                 "the first")
        delete(d, first)
        job_state(d, first, ("cancelled",))


if __name__ == "__main__":
    run_tests(globals())
