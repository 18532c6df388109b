"""taskpoold system test: three instances on one PostgreSQL behind HAProxy
behave as one service.

A throwaway PostgreSQL cluster (pg_cluster.py) and a real haproxy process
on a free port in front of three daemons, each with its own instance name
and port, all with [store] backend = postgresql on the same database and a
lease of 2 s.  The tests:

  - 1,000 `wait = none` jobs submitted through HAProxy all run, each
    exactly once (an exec job appends its parameter to a file), and each
    is visible with GET /jobs/{id} from every instance;
  - GET /jobs and GET /runs/{id} agree across instances;
  - DELETE /jobs/{id} sent to one instance stops the job running on
    another, within a bound;
  - the database stopped and started while the instances run: requests
    during the outage get 503 within a bound, never hang, and every job
    accepted before the outage finishes after it;
  - an instance killed with SIGKILL mid-job: its jobs are claimed again by
    another after the lease (attempt 2) and finish; the failover time is
    printed.

Skipped (exit 77) only where PostgreSQL's server programs or haproxy are
not installed; with TASKPOOLD_PG_REQUIRED=1 (.ci/run) that is a hard error.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pg_cluster  # noqa: E402
from taskpoold_test import (EXIT_HARD_ERROR, EXIT_SKIP, HOST,  # noqa: E402
                            VALGRIND_SLOWDOWN, Daemon, check, check_eq,
                            check_problem, fail, forget, load_scale, log,
                            need_exec, run_tests, spawn)

LEASE = 2.0
# How long a test waits for what must come (a claim, a state, a cancel):
# generous, for a loaded machine; each wait ends as soon as it comes.
WAIT = 15.0
# The bounds on how soon something happens grow under valgrind.
SLOW = VALGRIND_SLOWDOWN
NJOBS = load_scale(1000, 50)
CLIENTS = 16
JSON = {"Content-Type": "application/json"}

CONFIG = """
[server]
instance = %(instance)s
threads = 4

[pool]
workers = 4

[registry]
max_jobs = 100000

[log]
level = info

[store]
backend = postgresql
url = %(url)s
lease = 2s
max_attempts = 3

[job mark]
kind = exec
command = /bin/sh -c "echo $1 >> %(runs)s" mark {n}
param.n = string max=20 pattern=[0-9a-z-]+

[job nap]
kind = sleep
duration = 2s
result = nap done

[job long]
kind = sleep
duration = 60s
result = long done

[route /later]
jobs = nap
wait = none
"""

CLAIM_RE = r"queue: job (\S+) \(id ([^,]+), attempt (\d+)\) claimed"

_pg = None


def pg():
    global _pg
    if _pg is None:
        _pg = pg_cluster.require()
    return _pg


def haproxy_path():
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK)
        else None)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


HAPROXY_CFG = """
global
	maxconn 4000

defaults
	mode http
	option http-keep-alive
	http-reuse safe
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout http-request 10s
	timeout http-keep-alive 10s

frontend taskpoold
	bind %(host)s:%(port)d
	default_backend taskpoold

backend taskpoold
	balance leastconn
	option httpchk
	http-check send meth GET uri /healthz
	http-check expect status 200
	# Slow checks under valgrind must not take an instance out.
	timeout check 5s
	default-server inter 300ms fall 3 rise 1
	retries 2
	option redispatch
	retry-on conn-failure
%(servers)s
"""


class Cluster:
    """Three daemons on the test's database, and haproxy in front."""

    def __init__(self, n=3):
        self.tmp = tempfile.TemporaryDirectory(prefix="taskpoold-cluster-")
        self.runs = os.path.join(self.tmp.name, "runs")
        open(self.runs, "w").close()
        self.daemons = []
        for i in range(n):
            d = Daemon(CONFIG % {"instance": "node%d" % (i + 1),
                                 "url": pg().url, "runs": self.runs})
            self.daemons.append(d)
        self.haproxy = None
        self.port = free_port()

    def __enter__(self):
        for d in self.daemons:
            d.start()
        servers = "\n".join("\tserver node%d %s:%d check"
                            % (i + 1, HOST, d.port)
                            for i, d in enumerate(self.daemons))
        cfg = os.path.join(self.tmp.name, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG % {"host": HOST, "port": self.port,
                                   "servers": servers})
        self.haproxy = spawn([haproxy_path(), "-db", "-f", cfg],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            check(time.monotonic() < deadline, "haproxy does not answer")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        if self.haproxy is not None:
            self.haproxy.kill()
            self.haproxy.wait()
            forget(self.haproxy)
        for d in self.daemons:
            d.__exit__(*exc)
        self.tmp.cleanup()

    def request(self, method, path, body=None, timeout=10.0, conn=None):
        """One request through haproxy: (status, headers, body)."""
        own = conn is None
        if own:
            conn = http.client.HTTPConnection(HOST, self.port,
                                              timeout=timeout)
        try:
            conn.request(method, path, body=body,
                         headers=JSON if body is not None else {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            if own:
                conn.close()


def post_none(target, jobs):
    """POST /jobs with wait = none to target (a Daemon or the Cluster);
    returns (status, headers, value, elapsed)."""
    body = json.dumps({"jobs": jobs, "wait": "none"}).encode()
    t0 = time.monotonic()
    if isinstance(target, Cluster):
        status, headers, data = target.request("POST", "/jobs", body)
    else:
        status, headers, data, _ = target.request("POST", "/jobs",
                                                  headers=JSON, body=body)
    try:
        value = json.loads(data) if data else None
    except ValueError:
        value = data	# not ours: haproxy's own answer
    return status, headers, value, time.monotonic() - t0


def get_record(d, job_id):
    status, _, body, _ = d.request("GET", "/jobs/" + job_id)
    check_eq(status, 200, "GET /jobs/%s on %s (body %r)"
             % (job_id, d.port, body))
    return json.loads(body)


def wait_state(d, job_id, states, timeout):
    """Polls d's GET /jobs/{id} until its state is in states: the record."""
    deadline = time.monotonic() + timeout
    while True:
        r = get_record(d, job_id)
        if r["state"] in states:
            return r
        check(time.monotonic() < deadline, "job %s still %s after %.1f s"
              % (job_id, r["state"], timeout))
        time.sleep(0.02)


def metric(d, name):
    """The value of an unlabelled series in d's GET /metrics."""
    status, _, body, _ = d.request("GET", "/metrics")
    check_eq(status, 200, "GET /metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    fail("no %s in GET /metrics" % name)


def claims(d, start=0):
    """{id: (arrival time, attempt)} of d's claim log lines."""
    out = {}
    for t, line in d.log_lines()[start:]:
        m = re.search(CLAIM_RE, line)
        if m:
            out[m.group(2)] = (t, int(m.group(3)))
    return out


def wait_claimed(c, job_id, timeout, attempt=1, exclude=()):
    """The daemon of c that logged a claim of job_id with attempt, and
    when."""
    deadline = time.monotonic() + timeout
    while True:
        for d in c.daemons:
            if d in exclude:
                continue
            hit = claims(d).get(job_id)
            if hit is not None and hit[1] == attempt:
                return d, hit[0]
        check(time.monotonic() < deadline, "job %s not claimed (attempt "
              "%d) within %.1f s" % (job_id, attempt, timeout))
        time.sleep(0.02)


# ---- (a) many jobs, each run once, visible everywhere -----------------------

def test_thousand_jobs_run_once_and_are_visible_everywhere():
    need_exec()
    with Cluster() as c:
        ids = {}
        errors = []
        lock = threading.Lock()

        def client(k):
            conn = http.client.HTTPConnection(HOST, c.port, timeout=30)
            try:
                for i in range(k, NJOBS, CLIENTS):
                    tag = "j%d" % i
                    body = json.dumps({"jobs": [{"job": "mark", "params":
                                                 {"n": tag}}],
                                       "wait": "none"}).encode()
                    status, _, data = c.request("POST", "/jobs", body,
                                                conn=conn)
                    if status != 202:
                        with lock:
                            errors.append((status, data))
                        continue
                    with lock:
                        ids[tag] = json.loads(data)["jobs"][0]["id"]
            finally:
                conn.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submitted = time.monotonic() - t0
        check(not errors, "refused submissions: %r" % errors[:3])
        check_eq(len(ids), NJOBS, "jobs accepted")
        # Every job runs: the file has a line per run.
        deadline = time.monotonic() + 30 * SLOW
        while True:
            with open(c.runs) as f:
                lines = f.read().split()
            if len(lines) >= NJOBS:
                break
            check(time.monotonic() < deadline, "%d of %d jobs ran in time"
                  % (len(lines), NJOBS))
            time.sleep(0.05)
        ran = time.monotonic() - t0
        # Exactly once each: no attempt 2 (nobody died), no double claim.
        check_eq(sorted(lines), sorted(ids), "the runs, one per job")
        spread = [len(claims(d)) for d in c.daemons]
        check_eq(sum(spread), NJOBS, "claims over the instances")
        attempts = set(a for d in c.daemons for _, a in claims(d).values())
        check_eq(attempts, {1}, "the attempts of the claims")
        check_eq([metric(d, "taskpoold_queue_claimed_total")
                  for d in c.daemons], spread,
                 "taskpoold_queue_claimed_total of each instance")
        log("%d jobs: submitted in %.2f s, all run in %.2f s, claims "
            "per instance %r" % (NJOBS, submitted, ran, spread))
        # Visible from every instance, finished, attempt 1.
        sample = sorted(ids.values())[::max(1, NJOBS // 20)]
        for job_id in sample:
            for d in c.daemons:
                r = wait_state(d, job_id, ("succeeded",), WAIT * SLOW)
                check_eq(r["id"], job_id, "the record's id")
                check_eq(r["job"], "mark", "the record's job")
                if "attempt" in r:
                    check_eq(r["attempt"], 1, "job %s's attempt" % job_id)


# ---- (e) listings agree ----------------------------------------------------

def test_runs_and_listings_agree_across_instances():
    with Cluster() as c:
        status, headers, body, _ = post_none(
            c.daemons[0], [{"job": "nap"}, {"job": "nap"}])
        check_eq(status, 202, "POST /jobs wait = none (body %r)" % body)
        run_href = headers.get("Location") or \
            headers.get("Link", "").split(">")[0].lstrip("<")
        ids = [j["id"] for j in body["jobs"]]
        for job_id in ids:
            for d in c.daemons:
                wait_state(d, job_id, ("succeeded",), WAIT * SLOW)
        records = []
        for d in c.daemons:
            status, _, data, _ = d.request("GET", run_href)
            check_eq(status, 200, "GET %s on %d (body %r)"
                     % (run_href, d.port, data))
            run = json.loads(data)
            records.append(([j["id"] for j in run["jobs"]],
                            [j["state"] for j in run["jobs"]]))
        for r in records[1:]:
            check_eq(r, records[0], "GET %s on each instance" % run_href)
        check_eq(records[0][0], ids, "the run's jobs")
        # A route that waits on no job queues too: claimed, run, seen.
        status, _, data = c.request("GET", "/later")
        check_eq(status, 202, "GET /later (body %r)" % data)
        later = json.loads(data)["jobs"][0]["id"]
        wait_claimed(c, later, WAIT * SLOW)
        for d in c.daemons:
            wait_state(d, later, ("succeeded",), WAIT * SLOW)
        listings = []
        for d in c.daemons:
            page = d.get_json("/jobs?job=nap&limit=100")
            listings.append({j["id"]: j["state"] for j in page["jobs"]
                             if j["id"] in ids})
        for l in listings:
            check_eq(l, {i: "succeeded" for i in ids},
                     "the run's jobs in GET /jobs on each instance")


# ---- (c) a cancel reaches the instance that runs the job ---------------------

def test_cancel_sent_to_one_instance_stops_the_job_on_another():
    with Cluster() as c:
        status, _, body, _ = post_none(c, [{"job": "long"}])
        check_eq(status, 202, "POST /jobs (body %r)" % body)
        job_id = body["jobs"][0]["id"]
        runner, _ = wait_claimed(c, job_id, WAIT * SLOW)
        wait_state(runner, job_id, ("running",), WAIT * SLOW)
        other = next(d for d in c.daemons if d is not runner)
        t0 = time.monotonic()
        status, _, data, _ = other.request("DELETE", "/jobs/" + job_id)
        check(status in (200, 202), "DELETE on another instance: %d %r"
              % (status, data))
        r = wait_state(runner, job_id, ("cancelled",), WAIT * SLOW)
        took = time.monotonic() - t0
        for d in c.daemons:
            wait_state(d, job_id, ("cancelled",), WAIT * SLOW)
        log("cancel through another instance: cancelled in %.3f s" % took)
        check(r["state"] == "cancelled", "the job is cancelled")


# ---- (d) the database goes away and comes back -------------------------------

def test_database_outage_gives_503_and_loses_nothing():
    with Cluster() as c:
        accepted = []
        for _ in range(6):
            status, _, body, _ = post_none(c, [{"job": "nap"}])
            check_eq(status, 202, "POST /jobs before the outage")
            accepted.append(body["jobs"][0]["id"])
        pg().stop()
        try:
            worst = 0.0
            for d in c.daemons:
                t0 = time.monotonic()
                status, headers, body, _ = d.request(
                    "POST", "/jobs", headers=JSON, body=json.dumps(
                        {"jobs": [{"job": "nap"}], "wait": "none"}))
                took = time.monotonic() - t0
                check_problem(status, headers, body, 503,
                              "POST /jobs during the outage")
                check(headers.get("Retry-After") is not None,
                      "503 without Retry-After")
                worst = max(worst, took)
                status, headers, body, took2 = d.request(
                    "GET", "/jobs/nosuch-00000000-1")
                check_eq(status, 503, "GET of an unknown id during the "
                         "outage (body %r)" % body)
                worst = max(worst, took2)
            check(worst < 3.5 * SLOW, "a request took %.2f s in the outage"
                  % worst)
            log("database outage: 503 within %.2f s at most" % worst)
        finally:
            pg().start()
        t0 = time.monotonic()
        for job_id in accepted:
            for d in c.daemons:
                wait_state(d, job_id, ("succeeded",), 30 * SLOW)
        log("after the outage: every accepted job finished %.2f s after "
            "the database came back" % (time.monotonic() - t0))
        status, _, body, _ = post_none(c, [{"job": "nap"}])
        check_eq(status, 202, "POST /jobs after the outage (body %r)" % body)


# ---- (b) an instance dies mid-job --------------------------------------------

def test_killed_instance_jobs_are_claimed_again_after_the_lease():
    with Cluster() as c:
        status, _, body, _ = post_none(c, [{"job": "nap"}])
        check_eq(status, 202, "POST /jobs (body %r)" % body)
        job_id = body["jobs"][0]["id"]
        victim, _ = wait_claimed(c, job_id, WAIT * SLOW)
        wait_state(victim, job_id, ("running",), WAIT * SLOW)
        t_kill = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait_exit(5)
        survivors = [d for d in c.daemons if d is not victim]
        heir, t_claim = wait_claimed(c, job_id, LEASE * 3 * SLOW, attempt=2,
                                     exclude=(victim,))
        r = wait_state(heir, job_id, ("succeeded",), WAIT * SLOW)
        t_done = time.monotonic()
        for d in survivors:
            rec = wait_state(d, job_id, ("succeeded",), WAIT * SLOW)
            if "attempt" in rec:
                check_eq(rec["attempt"], 2, "the attempt that finished")
        failover = t_claim - t_kill
        check(LEASE * 0.5 <= failover <= LEASE * 2 * SLOW,
              "claimed again %.2f s after the kill (lease %.1f s)"
              % (failover, LEASE))
        log("failover: claimed again %.2f s after kill -9 (lease %.1f s), "
            "finished %.2f s after it" % (failover, LEASE, t_done - t_kill))
        check_eq(r["result"], "nap done", "the job's result")


if __name__ == "__main__":
    if haproxy_path() is None:
        required = os.environ.get("TASKPOOLD_PG_REQUIRED") == "1"
        log("%s: haproxy is not installed: apt-get install haproxy "
            "(tools/install-deps)" % ("FAIL" if required else "SKIP"))
        sys.exit(EXIT_HARD_ERROR if required else EXIT_SKIP)
    pg()
    run_tests(globals())
