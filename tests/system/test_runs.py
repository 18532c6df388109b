"""taskpoold system test: runs.

POST /jobs (ad-hoc runs), the wait policies and losers, deadlines (504)
against job failures (502), the async fallback of `Prefer: respond-async`
and /runs/{id}, Idempotency-Key, and GET /runs paging.  Each test starts
its own daemon with short sleep jobs.
"""

import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, check, check_between,  # noqa: E402
                            check_eq, check_problem, dumps, header, job_record,
                            log, need_exec, run_tests, wait_job_state)

INSTANCE = "runtest"
RUN_ID_RE = re.compile(r"^%s-[0-9a-f]{8}-r[0-9]+$" % INSTANCE)

CONFIG = """
[server]
instance = %s
max_body = 2K
max_run_jobs = 4

[registry]
max_runs = 16

[job fast]
kind = sleep
duration = 100ms
result = fast result

[job slow]
kind = sleep
duration = 1s
result = slow result

[job snooze]
kind = exec
command = /bin/sleep 5

[job boom]
kind = exec
command = /bin/sh -c "exit 3"

[job greet]
kind = exec
command = /usr/bin/printf "Hello, %%s" {name}
param.name = string max=20

[route /race]
jobs = slow fast
wait = any
losers = cancel

[route /greet]
method = POST
jobs = greet
""" % INSTANCE

JSON = {"Content-Type": "application/json"}


def post_jobs(d, run, headers=None, raw=None):
    """POST /jobs with run (a dict) as its body; (status, headers, value,
    elapsed), value parsed from JSON."""
    h = dict(JSON)
    h.update(headers or {})
    body = raw if raw is not None else json.dumps(run).encode()
    status, hdrs, data, elapsed = d.request("POST", "/jobs", headers=h,
                                            body=body)
    return status, hdrs, json.loads(data) if data else None, elapsed


def run_link(headers):
    """The run id of an answer's Link header."""
    m = re.match(r'^</runs/([^>]+)>; rel="monitor"$',
                 header(headers, "Link") or "")
    check(m is not None, "no run Link header: %r" % (dict(headers),))
    check(RUN_ID_RE.match(m.group(1)) is not None,
          "bad run id %r" % m.group(1))
    return m.group(1)


def wait_run_done(d, run_id, timeout=10.0):
    """Polls /runs/{id} until it is done; returns its record."""
    deadline = time.monotonic() + timeout
    while True:
        r = d.get_json("/runs/" + run_id)
        if r["state"] == "done":
            return r
        check(time.monotonic() < deadline, "run %s still %s after %.1f s"
              % (run_id, r["state"], timeout))
        time.sleep(0.01)


def jobs_known(d):
    h = d.get_json("/healthz")
    return h["jobs_live"] + h["jobs_finished"]


# ---- POST /jobs ---------------------------------------------------------------

def test_post_jobs_runs_configured_jobs_with_params():
    need_exec()	# greet is a program
    with Daemon(CONFIG) as d:
        status, headers, v, elapsed = post_jobs(d, {
            "jobs": [{"job": "fast"},
                     {"job": "greet", "params": {"name": "Ada"}}],
            "wait": "all", "timeout": "30s", "losers": "detach"})
        check_eq((status, v), (200, {"results": ["fast result",
                                                 "Hello, Ada"]}),
                 "POST /jobs all")
        check_between(elapsed, 0.09, 1.0, "POST /jobs all (100 ms job)")
        run_id = run_link(headers)
        r = d.get_json("/runs/" + run_id)
        check_eq((r["id"], r["route"], r["wait"], r["state"], r["status"],
                  r["answer"]),
                 (run_id, "/jobs", "all", "done", 200, v), "its run")
        check_eq([(j["job"], j["state"], j["params"]) for j in r["jobs"]],
                 [("fast", "succeeded", {}),
                  ("greet", "succeeded", {"name": "Ada"})], "its jobs")


def test_post_jobs_none_answers_202_with_links():
    with Daemon(CONFIG) as d:
        status, headers, v, elapsed = post_jobs(d, {
            "jobs": [{"job": "slow"}, {"job": "fast"}], "wait": "none"})
        check_eq(status, 202, "wait none")
        check(elapsed < 0.5, "wait none answers at once (%.3f s)" % elapsed)
        check_eq([j["job"] for j in v["jobs"]], ["slow", "fast"], "jobs")
        for j in v["jobs"]:
            check_eq(j["href"], "/jobs/" + j["id"], "href")
        run_id = run_link(headers)
        check_eq(header(headers, "Location"), "/runs/" + run_id,
                 "Location")
        wait_job_state(d, v["jobs"][0]["id"], ["succeeded"], 5.0)


def test_post_jobs_refuses_bad_bodies_before_starting_anything():
    with Daemon(CONFIG) as d:
        before = jobs_known(d)
        cases = [
            ({"jobs": [{"job": "fast"}], "priority": 1}, "/priority"),
            # A long name is cut at a character, never inside one.
            ({"jobs": [{"job": "fast"}], "p" * 63 + "\u00e9": 1},
             "/" + "p" * 63),
            ({"jobs": [{"job": "fast"}], "wait": "some"}, "/wait"),
            ({"jobs": [{"job": "fast"}], "timeout": "forever"}, "/timeout"),
            ({"jobs": [{"job": "fast"}], "losers": "drop"}, "/losers"),
            ({"jobs": []}, "/jobs"),
            ({"jobs": [{"job": "fast"}] * 5}, "/jobs"),
            ({"jobs": [{"job": "fast"}, {"job": "nope"}]}, "/jobs/1/job"),
            ({"jobs": [{"job": "greet"}]}, "/jobs/0/params/name"),
            ({"jobs": [{"job": "greet", "params": {"name": "x" * 21}}]},
             "/jobs/0/params/name"),
            ({"jobs": [{"job": "fast", "params": {"n": 1}}]},
             "/jobs/0/params/n"),
            ({"jobs": [{"job": "fast", "when": "now"}]}, "/jobs/0"),
        ]
        for run, pointer in cases:
            status, headers, v, _ = post_jobs(d, run)
            p = check_problem(status, headers, json.dumps(v), 400,
                              "POST %s" % json.dumps(run))
            check_eq(p["errors"][0]["pointer"], pointer,
                     "first error of %s" % json.dumps(run))
        # Not an object, not JSON, duplicate keys.
        for raw in (b"[]", b"{", b'{"jobs": [], "jobs": []}'):
            status, headers, v, _ = post_jobs(d, None, raw=raw)
            check_problem(status, headers, json.dumps(v), 400, raw)
        status, headers, body, _ = d.request(
            "POST", "/jobs", headers={"Content-Type": "text/plain"},
            body=b'{"jobs": [{"job": "fast"}]}')
        check_problem(status, headers, body, 415, "text/plain body")
        status, headers, body, _ = d.request(
            "POST", "/jobs", headers=JSON,
            body=b'{"jobs": [{"job": "fast"}], "pad": "' + b"x" * 3000 +
            b'"}')
        check_problem(status, headers, body, 413, "body over max_body")
        status, headers, body, _ = d.request("PUT", "/jobs", headers=JSON,
                                             body=b"{}")
        check_problem(status, headers, body, 405, "PUT /jobs")
        check_eq(jobs_known(d), before, "jobs started by refused runs")


# ---- policies and losers ------------------------------------------------------

def test_any_answers_with_the_fastest_even_if_listed_last():
    with Daemon(CONFIG) as d:
        status, _, v, elapsed = post_jobs(d, {
            "jobs": [{"job": "slow"}, {"job": "fast"}], "wait": "any"})
        check_eq((status, v["result"], v["job"]), (200, "fast result",
                                                  "fast"), "wait any")
        check_between(elapsed, 0.09, 0.6, "wait any (fast is 100 ms)")
        status, _, v, elapsed = post_jobs(d, {
            "jobs": [{"job": "slow"}, {"job": "fast"}], "wait": "first"})
        check_eq((status, v["result"], v["job"]), (200, "slow result",
                                                  "slow"), "wait first")
        check_between(elapsed, 0.95, 1.6, "wait first (slow is 1 s)")
        # Detached by default: the loser goes on and succeeds.
        loser = v["pending"][0]["id"]
        check_eq(wait_job_state(d, loser, ["succeeded"], 5.0)["result"],
                 "fast result", "the detached loser")


def check_cancelled_promptly(d, winner_id, loser_id, what):
    """The loser ends cancelled within 100 ms of the winner's finish."""
    def finished(r):
        t = r["finished"]
        return time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + \
            float("0" + t[19:-1])
    loser = wait_job_state(d, loser_id, ["cancelled"], 2.0)
    winner = job_record(d, winner_id)
    gap = finished(loser) - finished(winner)
    log("  %s: loser cancelled %.1f ms after the winner" % (what,
                                                             gap * 1e3))
    check_between(gap, 0.0, 0.1, "%s: loser cancelled after" % what)


def test_losers_cancel_stops_the_others_within_100ms():
    need_exec()	# snooze is a program
    with Daemon(CONFIG) as d:
        # A sleep job and a program (killed with SIGTERM).
        status, headers, v, _ = post_jobs(d, {
            "jobs": [{"job": "slow"}, {"job": "fast"}, {"job": "snooze"}],
            "wait": "any", "losers": "cancel"})
        check_eq((status, v["job"]), (200, "fast"), "any, losers cancel")
        r = d.get_json("/runs/" + run_link(headers))
        ids = [j["id"] for j in r["jobs"]]
        check_cancelled_promptly(d, ids[1], ids[0], "sleep loser")
        check_cancelled_promptly(d, ids[1], ids[2], "exec loser")
        # The route's own `losers = cancel`.
        status, headers, body, _ = d.request("GET", "/race")
        v = json.loads(body)
        check_eq((status, v["job"]), (200, "fast"), "GET /race")
        r = d.get_json("/runs/" + run_link(headers))
        check_cancelled_promptly(d, r["jobs"][1]["id"], r["jobs"][0]["id"],
                                 "route loser")


# ---- deadlines and failures ---------------------------------------------------

def test_deadline_gives_504_with_results_so_far_and_jobs_go_on():
    with Daemon(CONFIG) as d:
        status, headers, p, elapsed = post_jobs(d, {
            "jobs": [{"job": "fast"}, {"job": "slow"}],
            "timeout": "300ms"})
        check_between(elapsed, 0.28, 0.8, "deadline of 300 ms")
        p = check_problem(status, headers, json.dumps(p), 504, "deadline")
        fast, slow = p["jobs"]
        check_eq((fast["job"], fast["state"], fast["result"]),
                 ("fast", "succeeded", "fast result"), "the finished job")
        check_eq((slow["job"], slow["state"]), ("slow", "running"),
                 "the unfinished job")
        check_eq(p["pending"], [{"id": slow["id"], "job": "slow",
                                 "href": "/jobs/" + slow["id"]}], "pending")
        check_eq(wait_job_state(d, slow["id"], ["succeeded"], 5.0)["state"],
                 "succeeded", "the slow job goes on")
        r = d.get_json("/runs/" + run_link(headers))
        check_eq((r["status"], r["answer"]), (504, p), "the run's answer")


def test_deadline_with_losers_cancel_cancels_what_is_left():
    with Daemon(CONFIG) as d:
        status, headers, p, _ = post_jobs(d, {
            "jobs": [{"job": "fast"}, {"job": "slow"}],
            "timeout": "300ms", "losers": "cancel"})
        check_eq(status, 504, "deadline")
        check_eq(p["detail"], "the deadline of 0.300 s passed; unfinished "
                 "jobs are cancelled", "detail")
        wait_job_state(d, p["pending"][0]["id"], ["cancelled"], 2.0)


def test_a_failed_job_under_all_is_502_with_every_state():
    need_exec()	# boom is a program
    with Daemon(CONFIG) as d:
        status, headers, p, _ = post_jobs(d, {
            "jobs": [{"job": "fast"}, {"job": "boom"}]})
        p = check_problem(status, headers, json.dumps(p), 502, "boom")
        check_eq([(j["job"], j["state"]) for j in p["jobs"]],
                 [("fast", "succeeded"), ("boom", "failed")], "states")
        check_eq(p["jobs"][0]["result"], "fast result", "fast's result")
        check(isinstance(p["jobs"][1]["error"], str) and
              "3" in p["jobs"][1]["error"], "boom's error: %r" % p["jobs"])
        check("pending" not in p, "nothing pending: %r" % p)


# ---- Prefer: respond-async ----------------------------------------------------

def test_respond_async_falls_back_to_202_then_the_run_has_the_answer():
    with Daemon(CONFIG) as d:
        status, headers, v, elapsed = post_jobs(
            d, {"jobs": [{"job": "slow"}, {"job": "fast"}]},
            headers={"Prefer": "respond-async, wait=0.2"})
        check_eq(status, 202, "async fallback")
        check_between(elapsed, 0.18, 0.7, "answered after wait=0.2")
        check_eq(header(headers, "Preference-Applied"), "respond-async",
                 "Preference-Applied")
        location = header(headers, "Location")
        check(location is not None and location.startswith("/runs/"),
              "Location %r" % location)
        run_id = location[len("/runs/"):]
        check_eq((v["id"], v["href"], v["state"],
                  [j["job"] for j in v["jobs"]]),
                 (run_id, location, "running", ["slow", "fast"]), "202 body")
        r = d.get_json(location)
        check_eq((r["state"], r["status"], r["answer"]),
                 ("running", None, None), "the run while it runs")
        r = wait_run_done(d, run_id)
        check_eq((r["status"], r["answer"]),
                 (200, {"results": ["slow result", "fast result"]}),
                 "the run's answer")


def test_respond_async_gives_the_answer_when_done_in_time():
    with Daemon(CONFIG) as d:
        status, headers, v, elapsed = post_jobs(
            d, {"jobs": [{"job": "fast"}]},
            headers={"Prefer": "respond-async, wait=5"})
        check_eq((status, v), (200, {"results": ["fast result"]}),
                 "done within wait")
        check_between(elapsed, 0.09, 1.0, "answered when done")
        check_eq(header(headers, "Preference-Applied"), None,
                 "no Preference-Applied")
        # A route takes it too.
        status, headers, body, _ = d.request(
            "GET", "/race", headers={"Prefer": "respond-async, wait=0"})
        check_eq(status, 202, "GET /race async wait=0")
        r = wait_run_done(d, run_link_of_location(headers))
        check_eq((r["status"], r["answer"]["job"]), (200, "fast"),
                 "GET /race's run")
        # Without the header nothing changes.
        status, headers, body, _ = d.request("GET", "/race")
        check_eq((status, header(headers, "Preference-Applied")),
                 (200, None), "GET /race")


def run_link_of_location(headers):
    location = header(headers, "Location")
    check(location is not None and location.startswith("/runs/"),
          "Location %r" % location)
    return location[len("/runs/"):]


# ---- Idempotency-Key ----------------------------------------------------------

def test_idempotent_repeat_gets_the_same_run_and_starts_nothing():
    with Daemon(CONFIG) as d:
        run = {"jobs": [{"job": "slow"}]}
        key = {"Idempotency-Key": "order-17"}
        # While it runs: 202 to the same run.
        status, headers, v, _ = post_jobs(
            d, run, headers=dict(key, Prefer="respond-async, wait=0"))
        check_eq(status, 202, "first, async")
        run_id = run_link_of_location(headers)
        n = jobs_known(d)
        status, headers, v, _ = post_jobs(d, run, headers=key)
        check_eq((status, v["id"], header(headers, "Location")),
                 (202, run_id, "/runs/" + run_id), "repeat while running")
        check_eq(header(headers, "Idempotent-Replayed"), "true",
                 "Idempotent-Replayed")
        wait_run_done(d, run_id)
        # Once done: the original answer.
        status, headers, v, _ = post_jobs(d, run, headers=key)
        check_eq((status, v), (200, {"results": ["slow result"]}),
                 "repeat when done")
        check_eq(run_link(headers), run_id, "the same run")
        check_eq(jobs_known(d), n, "jobs started by the repeats")
        # The same key with another body.
        status, headers, p, _ = post_jobs(d, {"jobs": [{"job": "fast"}]},
                                          headers=key)
        check_problem(status, headers, json.dumps(p), 422, "another body")
        # A bad key.
        status, headers, p, _ = post_jobs(
            d, run, headers={"Idempotency-Key": "x" * 256})
        check_problem(status, headers, json.dumps(p), 400, "a long key")
        check_eq(jobs_known(d), n, "jobs started by refused repeats")


def test_idempotency_key_on_a_post_route():
    need_exec()	# greet is a program
    with Daemon(CONFIG) as d:
        key = {"Idempotency-Key": "greet-1", "Content-Type":
               "application/json"}
        status, headers, body, _ = d.request("POST", "/greet", headers=key,
                                             body=b'{"name": "Ada"}')
        check_eq((status, json.loads(body)), (200, {"results":
                                                   ["Hello, Ada"]}),
                 "first POST /greet")
        run_id = run_link(headers)
        n = jobs_known(d)
        status, headers, body, _ = d.request("POST", "/greet", headers=key,
                                             body=b'{"name": "Ada"}')
        check_eq((status, json.loads(body), run_link(headers)),
                 (200, {"results": ["Hello, Ada"]}, run_id), "repeat")
        check_eq(jobs_known(d), n, "jobs started by the repeat")
        # The query string is part of the request too.
        status, headers, body, _ = d.request("POST", "/greet?name=Bob",
                                             headers=key, body=b"")
        check_problem(status, headers, body, 422, "same key, other query")
        # A GET route ignores the header: GETs are safe to repeat anyway.
        status, headers, _, _ = d.request(
            "GET", "/race", headers={"Idempotency-Key": "greet-1"})
        check(run_link(headers) != run_id, "a GET is a run of its own")


def test_concurrent_repeats_start_one_run():
    with Daemon(CONFIG) as d:
        answers = []

        def call():
            # 409 while the first is starting its jobs: try again, as
            # its Retry-After says (at once here: it is microseconds).
            for _ in range(1000):
                a = post_jobs(d, {"jobs": [{"job": "fast"}]},
                              headers={"Idempotency-Key": "k"})
                if a[0] != 409:
                    answers.append(a)
                    return
                check_eq(header(a[1], "Retry-After"), "1", "409's header")
                time.sleep(0.001)
        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check_eq(len(answers), 8, "answers")
        runs = set(run_link(h) for _, h, _, _ in answers)
        check_eq(len(runs), 1, "runs for one key")
        check_eq(jobs_known(d), 1, "jobs started")


# ---- GET /runs ----------------------------------------------------------------

def test_runs_listing_pages_newest_first():
    with Daemon(CONFIG) as d:
        made = []
        for _ in range(12):
            status, headers, _, _ = post_jobs(d, {"jobs": [{"job": "fast"}],
                                                  "wait": "none"})
            made.append(run_link(headers))
        seen, cursor, pages = [], None, 0
        while True:
            path = "/runs?limit=5" + ("&cursor=" + cursor if cursor else "")
            v = d.get_json(path)
            seen += [r["id"] for r in v["runs"]]
            pages += 1
            cursor = v["next"]
            if cursor is None:
                break
        check_eq(seen, list(reversed(made)), "runs, newest first")
        check_eq(pages, 3, "pages of 5 over 12 runs")
        for path in ("/runs?limit=0", "/runs?limit=1001", "/runs?cursor=x",
                     "/runs?sort=asc"):
            status, headers, body, _ = d.request("GET", path)
            check_problem(status, headers, body, 400, path)


def test_an_evicted_run_is_404_that_says_it_may_have_expired():
    with Daemon(CONFIG) as d:
        first = None
        for i in range(17):	# max_runs = 16
            status, headers, _, _ = post_jobs(d, {"jobs": [{"job": "fast"}],
                                                  "wait": "none"})
            if first is None:
                first = run_link(headers)
            wait_run_done(d, run_link(headers))
        status, headers, body, _ = d.request("GET", "/runs/" + first)
        check_problem(status, headers, body, 404, "evicted run",
                      detail="no such run (it may have expired)")
        status, headers, body, _ = d.request("DELETE", "/runs/" + first)
        check_problem(status, headers, body, 405, "DELETE /runs/{id}")


if __name__ == "__main__":
    run_tests(globals())
