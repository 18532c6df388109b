"""taskpoold system test: GET /jobs, the listing of job instances.

Newest first, filtered by state and job, paged with `limit` and an opaque
`next` cursor that stays put while records are added and expire; bad
parameters are 400.  Records are made through routes of short sleep jobs
(wait = none, so that each answer gives the ids in creation order); the
waits are bounded by events (a listing or a record changing), never by
sleeps.
"""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskpoold_test import (Daemon, check, check_eq, check_problem,  # noqa: E402
                            fail, header, log, run_tests, start_job,
                            wait_job_state, cancel_job)

PER_REQUEST = 10

CONFIG = """
[server]
instance = listtest
drain_timeout = 1s

[registry]
max_jobs = %(max_jobs)d
retain = %(retain)s

[log]
jobs = no

[job tick]
kind = sleep
duration = 1ms
result = tock

[job long]
kind = sleep
duration = 60s
result = long result

[job single]
kind = sleep
duration = 60s
result = single result
max_concurrent = 1

[route /ticks]
method = POST
jobs = %(ticks)s
wait = none

[route /tick]
method = POST
jobs = tick
wait = none

[route /long]
method = POST
jobs = long
wait = none

[route /single]
method = POST
jobs = single
wait = none
"""


def config(max_jobs=100000, retain="1h"):
    return CONFIG % {"max_jobs": max_jobs, "retain": retain,
                     "ticks": " ".join(["tick"] * PER_REQUEST)}


# ---- helpers ----------------------------------------------------------------

def make_ticks(d, n):
    """Starts n tick jobs, PER_REQUEST a request; their ids, oldest first."""
    ids = []
    check_eq(n % PER_REQUEST, 0, "make_ticks: n")
    for i in range(n // PER_REQUEST):
        status, _, body, _ = d.request("POST", "/ticks", body=b"")
        check_eq(status, 202, "POST /ticks #%d (body %r)" % (i, body))
        ids += [link["id"] for link in json.loads(body)["jobs"]]
    return ids


def list_jobs(d, **params):
    """GET /jobs with params (a list value repeats the parameter): the
    parsed answer, after checking its shape."""
    query = urllib.parse.urlencode(params, doseq=True)
    path = "/jobs" + ("?" + query if query else "")
    status, headers, body, _ = d.request("GET", path)
    check_eq(status, 200, "GET %s (body %r)" % (path, body[:300]))
    check_eq(header(headers, "Content-Type"), "application/json",
             "GET %s: Content-Type" % path)
    v = json.loads(body)
    check_eq(sorted(v.keys()), ["jobs", "next"], "GET %s: keys" % path)
    check(v["next"] is None or isinstance(v["next"], str),
          "GET %s: next %r" % (path, v["next"]))
    return v


def ids_of(answer):
    return [r["id"] for r in answer["jobs"]]


def wait_until_none_live(d, job, timeout=10.0):
    """Polls the listing until no instance of job is queued or running."""
    deadline = time.monotonic() + timeout
    while list_jobs(d, job=job, state="queued,running", limit=1)["jobs"]:
        check(time.monotonic() < deadline, "%s jobs still live after "
              "%.1f s" % (job, timeout))
        time.sleep(0.01)


def page_all(d, limit, **params):
    """Follows `next` to the end; returns the pages' id lists."""
    pages = []
    cursor = None
    while True:
        p = dict(params, limit=limit)
        if cursor is not None:
            p["cursor"] = cursor
        v = list_jobs(d, **p)
        pages.append(ids_of(v))
        cursor = v["next"]
        if cursor is None:
            return pages
        check(len(pages) < 10000, "paging does not end")


def check_bad(d, query, what, detail=None):
    status, headers, body, _ = d.request("GET", "/jobs?" + query)
    return check_problem(status, headers, body, 400,
                         "GET /jobs?%s (%s)" % (query, what), detail=detail)


# ---- the tests --------------------------------------------------------------

def test_500_records_page_by_50_newest_first_without_duplicate_or_gap():
    with Daemon(config()) as d:
        t0 = time.monotonic()
        ids = make_ticks(d, 500)
        wait_until_none_live(d, "tick")
        log("  500 records made and finished in %.2f s"
            % (time.monotonic() - t0))
        t0 = time.monotonic()
        pages = page_all(d, 50)
        log("  10 pages read in %.3f s" % (time.monotonic() - t0))
        check_eq([len(p) for p in pages], [50] * 10, "page sizes")
        listed = [i for p in pages for i in p]
        check_eq(len(set(listed)), 500, "distinct records listed")
        check_eq(listed, ids[::-1], "the records, newest first")
        # A record is exactly what GET /jobs/{id} shows.
        v = list_jobs(d, limit=3)
        for rec in v["jobs"]:
            check_eq(rec, d.get_json("/jobs/" + rec["id"]),
                     "listed record of %s" % rec["id"])
            check_eq((rec["job"], rec["state"], rec["result"]),
                     ("tick", "succeeded", "tock"), "record %s" % rec["id"])
        # The default limit is 50.
        v = list_jobs(d)
        check_eq(ids_of(v), ids[:-51:-1], "GET /jobs without limit")


def test_pages_stay_put_while_records_are_added():
    with Daemon(config()) as d:
        older = make_ticks(d, 100)
        first = list_jobs(d, limit=30)
        check_eq(ids_of(first), older[:-31:-1], "the first page")
        newer = make_ticks(d, 50)
        rest = page_all(d, 30, cursor=first["next"])
        check_eq([i for p in rest for i in p], older[-31::-1],
                 "the later pages, after 50 records were added")
        check_eq(ids_of(list_jobs(d, limit=50)), newer[::-1],
                 "a new listing starts with the new records")


def test_pages_stay_put_while_records_expire():
    # Newest first: 20 ticks, 5 long-running, 20 ticks.  The first page
    # ends among the newer ticks; once every tick has expired (retain
    # 1 s), the cursor's own record among them, the next page starts
    # below it with the long ones.
    with Daemon(config(retain="1s")) as d:
        older = make_ticks(d, 20)
        longs = [start_job(d, "/long") for _ in range(5)]
        newer = make_ticks(d, 20)
        first = list_jobs(d, limit=15)
        check_eq(ids_of(first), newer[:-16:-1], "the first page")
        gone = newer[5]	# the cursor's record
        deadline = time.monotonic() + 10.0
        while True:
            status, headers, body, _ = d.request("GET", "/jobs/" + gone)
            if status == 404:
                break
            check_eq(status, 200, "GET /jobs/%s before it expires" % gone)
            check(time.monotonic() < deadline, "%s has not expired after "
                  "10 s (retain 1 s)" % gone)
            time.sleep(0.05)
        check_problem(status, headers, body, 404, "the expired record",
                      detail="no such job (it may have expired from the "
                             "registry)")
        deadline = time.monotonic() + 10.0
        while list_jobs(d, job="tick", limit=1)["jobs"]:
            check(time.monotonic() < deadline, "ticks not all expired")
            time.sleep(0.05)
        check_eq(d.request("GET", "/jobs/" + older[-1])[0], 404,
                 "an older tick after the expiry")
        v = list_jobs(d, limit=15, cursor=first["next"])
        check_eq(ids_of(v), longs[::-1], "the page after the expiry")
        check_eq(v["next"], None, "next of the last page")


def test_evicted_record_is_404_saying_it_may_have_expired():
    with Daemon(config(max_jobs=16)) as d:
        first = start_job(d, "/tick")
        wait_job_state(d, first, ("succeeded",))
        for _ in range(15):
            start_job(d, "/long")
        check_eq(ids_of(list_jobs(d, job="tick")), [first],
                 "listed before the eviction")
        start_job(d, "/long")	# the 17th: pushes the tick out
        status, headers, body, _ = d.request("GET", "/jobs/" + first)
        check_problem(status, headers, body, 404, "the evicted record",
                      detail="no such job (it may have expired from the "
                             "registry)")
        check_eq(list_jobs(d, job="tick")["jobs"], [],
                 "listed after the eviction")
        check_eq(len(list_jobs(d)["jobs"]), 16, "records listed")


def test_filters_by_state_and_job():
    with Daemon(config()) as d:
        ticks = make_ticks(d, 10)
        wait_until_none_live(d, "tick")
        longs = [start_job(d, "/long") for _ in range(3)]
        running = start_job(d, "/single")
        queued = start_job(d, "/single")	# max_concurrent = 1
        wait_job_state(d, running, ("running",))
        check_eq(d.get_json("/jobs/" + queued)["state"], "queued",
                 "the second single job")
        cancelled = cancel_job(d, longs[1])["id"]
        wait_job_state(d, cancelled, ("cancelled",))

        def listed(**params):
            v = list_jobs(d, **params)
            check_eq(v["next"], None, "next of %r" % params)
            return ids_of(v)

        check_eq(listed(state="running"), [running, longs[2], longs[0]],
                 "state=running")
        check_eq(listed(state="queued"), [queued], "state=queued")
        check_eq(listed(state="cancelled"), [cancelled], "state=cancelled")
        check_eq(listed(state="succeeded"), ticks[::-1], "state=succeeded")
        check_eq(listed(state="failed"), [], "state=failed")
        check_eq(listed(state="timed_out"), [], "state=timed_out")
        both = [queued, running, longs[2], longs[0]]
        check_eq(listed(state="queued,running"), both,
                 "state=queued,running")
        check_eq(listed(state=["running", "queued"]), both,
                 "state=running&state=queued")
        check_eq(listed(job="long"), longs[::-1], "job=long")
        check_eq(listed(job="long", state="running"),
                 [longs[2], longs[0]], "job=long&state=running")
        check_eq(listed(job="tick", state="running"), [],
                 "job=tick&state=running")
        check_eq(listed(job="nosuch"), [], "a job that is not configured")
        for rec in list_jobs(d, state="running")["jobs"]:
            check_eq(rec["state"], "running", "record of %s" % rec["id"])
        # Filtered pages follow the filter alone.
        pages = page_all(d, 4, state="succeeded")
        check_eq([len(p) for p in pages], [4, 4, 2], "filtered page sizes")
        check_eq([i for p in pages for i in p], ticks[::-1],
                 "filtered pages")


def test_a_page_looks_at_1000_records_at_most():
    # One long job, then 1010 ticks above it: with limit=1 a page looks
    # at max(10 x 1, 1000) records, so job=long finds nothing on the first
    # page, yet its `next` leads to the long job on the second.
    with Daemon(config()) as d:
        long_id = start_job(d, "/long")
        make_ticks(d, 1010)
        v = list_jobs(d, job="long", limit=1)
        check_eq(v["jobs"], [], "the first page")
        check(v["next"] is not None, "the first page has a next")
        v = list_jobs(d, job="long", limit=1, cursor=v["next"])
        check_eq(ids_of(v), [long_id], "the second page")
        check_eq(v["next"], None, "the second page's next")
        # With limit=200 a page looks at 2000: the first page finds it.
        v = list_jobs(d, job="long", limit=200)
        check_eq(ids_of(v), [long_id], "limit=200")


def test_bad_parameters_are_400():
    with Daemon(config()) as d:
        make_ticks(d, 10)
        limit = "parameter 'limit' must be a whole number from 1 to 1000"
        for q in ("limit=0", "limit=1001", "limit=abc", "limit=", "limit",
                  "limit=-1", "limit=+5", "limit=5x", "limit=%205",
                  "limit=99999999999999999999999", "limit=5%00"):
            check_bad(d, q, "bad limit", detail=limit)
        cursor = ("parameter 'cursor' is not a cursor of this listing "
                  "(pass `next` as it is)")
        for q in ("cursor=", "cursor", "cursor=xyz", "cursor=j", "cursor=j0",
                  "cursor=J10", "cursor=j01", "cursor=jA", "cursor=r10",
                  "cursor=j10000000000000000", "cursor=j1%00"):
            check_bad(d, q, "bad cursor", detail=cursor)
        for q in ("state=bogus", "state=Running", "state=", "state",
                  "state=running,", "state=,running", "state=running,,failed",
                  "state=done"):
            p = check_bad(d, q, "bad state")
            check(p["detail"].startswith("parameter 'state': '"),
                  "%s: detail %r" % (q, p["detail"]))
            check(p["detail"].endswith("is not a state (queued, running, "
                                       "succeeded, failed, cancelled, "
                                       "timed_out)"),
                  "%s: detail %r" % (q, p["detail"]))
        check_bad(d, "state=bogus", "bad state",
                  detail="parameter 'state': 'bogus' is not a state (queued, "
                  "running, succeeded, failed, cancelled, timed_out)")
        for q in ("job=", "job", "job=a%00b", "job=" + "x" * 65):
            check_bad(d, q, "bad job",
                      detail="parameter 'job' must be a job name")
        for q in ("limit=5&limit=5", "cursor=j5&cursor=j5", "job=a&job=b"):
            name = q.split("=")[0]
            check_bad(d, q, "repeated",
                      detail="parameter '%s' is given more than once" % name)
        known = "; known: limit, cursor, state, job"
        check_bad(d, "foo=1", "unknown",
                  detail="unknown parameter 'foo'" + known)
        check_bad(d, "limit=5&foo=1&Job=x&bar", "unknown",
                  detail="unknown parameters 'foo', 'Job', 'bar'" + known)
        p = check_bad(d, "%01%ff=1", "unknown, not printable")
        check_eq(p["detail"], "unknown parameter '??'" + known,
                 "the name, made printable")
        p = check_bad(d, "y" * 300 + "=1", "unknown, long")
        check(len(p["detail"]) < 200, "the detail is bounded: %r"
              % p["detail"])
        # A refused request lists nothing and the next one still works.
        check_eq(len(list_jobs(d, limit=1000)["jobs"]), 10, "limit=1000")


def test_head_gives_the_headers_of_get():
    with Daemon(config()) as d:
        make_ticks(d, 10)
        wait_until_none_live(d, "tick")
        status, headers, body, _ = d.request("GET", "/jobs?limit=5")
        check_eq(status, 200, "GET /jobs?limit=5")
        status, hheaders, hbody, _ = d.request("HEAD", "/jobs?limit=5")
        check_eq((status, hbody), (200, b""), "HEAD /jobs?limit=5")
        check_eq(header(hheaders, "Content-Type"), "application/json",
                 "HEAD: Content-Type")
        check_eq(header(hheaders, "Content-Length"), str(len(body)),
                 "HEAD: Content-Length")
        status, headers, body, _ = d.request("HEAD", "/jobs?limit=0")
        check_eq((status, body), (400, b""), "HEAD /jobs?limit=0")
        check_eq(header(headers, "Content-Type"), "application/problem+json",
                 "HEAD with a bad limit: Content-Type")


if __name__ == "__main__":
    run_tests(globals())
