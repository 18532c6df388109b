"""taskpoold system test: what every kind of job gets from the daemon.

DELETE /jobs/{id} (cancellation), max_concurrent (excess instances wait
queued, in arrival order) and coalesce (a request joins a live instance
with the same parameters), on sleep jobs: the kinds' own cancellation is
tested with each kind.  Waits are bounded by events (a job's record
changing state), never by sleeps.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, start_job as start, job_record as record,
                            wait_job_state as wait_state, check, check_between,  # noqa: E402
                            check_eq, check_problem, run_tests)

CONFIG = """
[server]
instance = jobstest

[job long]
kind = sleep
duration = 30s
result = long result

[job short]
kind = sleep
duration = 50ms
result = short result

[job limited]
kind = sleep
duration = 1s
result = limited result
max_concurrent = 2

[job single]
kind = sleep
duration = 30s
result = single result
max_concurrent = 1

[job shared]
kind = sleep
duration = 1500ms
result = shared result
coalesce = yes

[route /long]
method = POST
jobs = long
wait = none

[route /short]
jobs = short

[route /limited]
method = POST
jobs = limited
wait = none

[route /single]
method = POST
jobs = single
wait = none

[route /shared]
method = POST
jobs = shared
wait = none
"""


def delete(d, job_id):
    status, headers, body, _ = d.request("DELETE", "/jobs/" + job_id)
    return status, headers, body


# ---- DELETE /jobs/{id} ------------------------------------------------------

def test_delete_cancels_a_running_sleep_at_once():
    with Daemon(CONFIG) as d:
        job_id = start(d, "/long")
        check_eq(record(d, job_id)["state"], "running", "before DELETE")
        status, headers, body = delete(d, job_id)
        check_eq(status, 202, "DELETE (body %r)" % body)
        r = json.loads(body)
        check_eq(r["id"], job_id, "the answer is the job's record")
        check_eq(r["state"], "cancelled", "a sleep is cancelled at once")
        check_eq(record(d, job_id)["state"], "cancelled", "the record")
        d.wait_for_log(r"job long cancelled after .* \(id %s\)" % job_id,
                       what="the cancelled job's log line")


def test_delete_of_a_finished_job_is_409():
    with Daemon(CONFIG) as d:
        status, _, body, _ = d.request("GET", "/short")
        check_eq(status, 200, "GET /short")
        job_id = start(d, "/long")
        check_eq(delete(d, job_id)[0], 202, "first DELETE")
        status, headers, body = delete(d, job_id)
        check_problem(status, headers, body, 409, "second DELETE",
                      detail="the job has already finished (cancelled)")


def test_delete_of_an_unknown_job_is_404():
    with Daemon(CONFIG) as d:
        status, headers, body = delete(d, "jobstest-00000000-1")
        check_problem(status, headers, body, 404, "DELETE unknown id")


# ---- max_concurrent ---------------------------------------------------------

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


def test_max_concurrent_2_runs_6_requests_2_at_a_time_in_arrival_order():
    with Daemon(CONFIG) as d:
        t0 = time.monotonic()
        ids = [start(d, "/limited") for _ in range(6)]
        states = [record(d, i)["state"] for i in ids]
        check_eq(states.count("running") + states.count("succeeded"), 2,
                 "two run while the others wait (%r)" % states)
        check_eq(states[2:], ["queued"] * 4,
                 "the last four are listed queued")
        done = [wait_state(d, i, ("succeeded",), timeout=15) for i in ids]
        elapsed = time.monotonic() - t0
        check_eq(overlap(done), 2, "at most two ran at once")
        started = [r["started"] for r in done]
        check_eq(started, sorted(started), "started in arrival order")
        # Three waves of 1 s.
        check_between(elapsed, 2.95, 5.0, "six jobs, two at a time")


def test_a_queued_job_is_cancelled_at_once_and_the_rest_go_on():
    with Daemon(CONFIG) as d:
        ids = [start(d, "/limited") for _ in range(4)]
        check_eq(record(d, ids[3])["state"], "queued", "the fourth")
        status, _, body = delete(d, ids[3])
        check_eq(status, 202, "DELETE of a queued job")
        r = json.loads(body)
        check_eq(r["state"], "cancelled", "cancelled at once")
        check_eq(r["started"], None, "it never started")
        for i in ids[:3]:
            wait_state(d, i, ("succeeded",), timeout=15)
        check_eq(record(d, ids[3])["state"], "cancelled", "still cancelled")


def test_a_cancelled_running_job_lets_the_next_one_in_at_once():
    with Daemon(CONFIG) as d:
        first, second = start(d, "/single"), start(d, "/single")
        check_eq(record(d, second)["state"], "queued", "the second waits")
        check_eq(delete(d, first)[0], 202, "DELETE the first")
        # The cancel let it in before DELETE was answered.
        check_eq(record(d, second)["state"], "running", "the second")
        check_eq(delete(d, second)[0], 202, "DELETE the second")


# ---- coalesce ---------------------------------------------------------------

def test_coalesce_joins_a_running_twin_and_shares_its_result():
    with Daemon(CONFIG) as d:
        first = start(d, "/shared")
        second = start(d, "/shared")
        r2 = record(d, second)
        check_eq(r2.get("joined"), first, "the second names the first")
        check("joined" not in record(d, first), "the first joined nothing")
        r1 = wait_state(d, first, ("succeeded",))
        r2 = wait_state(d, second, ("succeeded",))
        check_eq(r2["result"], "shared result", "the joiner's result")
        check_eq(r1["result"], r2["result"], "one result for both")
        d.wait_for_log(r"job shared done .*\(id %s\)" % first,
                       what="the twin's line")
        # Once the twin is done, a new request runs on its own.
        third = start(d, "/shared")
        check("joined" not in record(d, third), "no live twin: runs")


def test_cancelling_a_joiner_leaves_its_twin_running():
    with Daemon(CONFIG) as d:
        first = start(d, "/shared")
        second = start(d, "/shared")
        status, _, body = delete(d, second)
        check_eq(status, 202, "DELETE the joiner")
        check_eq(json.loads(body)["state"], "cancelled", "joiner cancelled")
        check_eq(record(d, first)["state"], "running", "the twin goes on")
        check_eq(wait_state(d, first, ("succeeded",))["result"],
                 "shared result", "the twin's result")
        check_eq(record(d, second)["state"], "cancelled", "still cancelled")


run_tests(globals())
